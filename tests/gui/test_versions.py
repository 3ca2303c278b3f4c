#!/usr/bin/python3
"""Regenerate keeps the earlier replies as versions (issue 21): with
stories260K, a message and its reply; Regenerate writes a second version of
the reply, shown as "2/2" with ‹ and › beside it; ‹ goes back to version 1
with the first reply's text (in the window and in SQLite, where the shown
version is the one the conversation goes on from); after a restart the
conversation opens on the version last shown, with both kept, and › goes
forward to version 2. Screenshots: versions-2of2, versions-1of2,
versions-restarted.

Usage: test_versions.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import bad_button_names, fail, finish, shot, start, stop, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
model = stories_model()
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db


def query(sql, *args):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def reply():
    """(id, version, state, content) of the reply, or None."""
    rows = query("SELECT id, version, state, content FROM messages WHERE role = 'assistant'")
    return rows[0] if len(rows) == 1 else None


def kept_versions():
    return {v: c for v, c in query("SELECT version, content FROM message_versions")}


def reply_row(main):
    rows = main.findChildren(lambda n: n.name == "Assistant" and n.roleName != "label")
    return rows[-1] if rows else None


def shown_text(main):
    row = reply_row(main)
    return (row.description or "") if row else ""


def version_label(main):
    node = main.findChild(lambda n: n.roleName == "label" and (n.name or "").startswith("Version "),
                          retry=False, requireResult=False)
    return node.name if node else None


def version_button(main, name):
    return wait_for(lambda: main.child(name=name, roleName="push button", retry=False), 10, f"the {name} button")


proc, app = start([binary, "--model", model])
try:
    main = app.child(roleName="frame")
    composer = wait_for(lambda: main.child(name="Message", roleName="text"), 30, "the composer")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the model to load")
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("Once upon a time")
    rawinput.pressKey("Return")
    first = wait_for(lambda: reply() if reply() and reply()[2] == "complete" else None, 60, "the first reply")
    if first is None:
        sys.exit(1)
    if version_label(main):
        fail(f"a reply with one version shows {version_label(main)!r}")
    time.sleep(0.5)
    regenerate = wait_for(lambda: main.child(name="Regenerate", roleName="push button", retry=False), 10,
                          "the Regenerate button")
    regenerate.click()
    second = wait_for(lambda: reply() if reply() and reply()[1] == 2 and reply()[2] == "complete" else None, 60,
                      "the second version to finish")
    if second is not None:
        if second[0] != first[0]:
            fail("regenerate made a new message instead of a new version of the reply")
        if kept_versions() != {1: first[3]}:
            fail(f"version 1 is not kept as it was: {kept_versions()} (was {first[3]!r})")
        if wait_for(lambda: version_label(main) == "Version 2 of 2", 10, "“2/2” beside the reply") is None:
            print("labels:", version_label(main))
        if wait_for(lambda: shown_text(main) == second[3], 10, "the second version in the window") is None:
            print("shown:", shown_text(main)[:80], "stored:", second[3][:80])
        for problem in bad_button_names(main):
            fail(problem)
        following = version_button(main, "Next version")
        if following is not None and following.sensitive:
            fail("› is sensitive on the last version")
        shot("versions-2of2")

        # ‹ : back to version 1, the one the conversation now goes on from.
        previous = version_button(main, "Previous version")
        if previous is not None:
            previous.click()
            wait_for(lambda: version_label(main) == "Version 1 of 2", 10, "“1/2” after ‹")
            if wait_for(lambda: shown_text(main) == first[3], 10, "the first reply's text after ‹") is None:
                print("shown:", shown_text(main)[:80])
            now = reply()
            if not now or now[1] != 1 or now[3] != first[3]:
                fail(f"the store does not show version 1: {now}")
            if kept_versions() != {2: second[3]}:
                fail(f"version 2 is not kept: {kept_versions()}")
            if previous.sensitive:
                fail("‹ is still sensitive on version 1")
            shot("versions-1of2")
finally:
    stop(proc)

# A restart keeps both, and opens on the version last shown.
proc, app = start([binary, "--model", model])
try:
    main = app.child(roleName="frame")
    conv = wait_for(lambda: main.child(name="Once upon a time", roleName="label"), 30, "the conversation")
    if conv is not None:
        conv.click()
        if wait_for(lambda: version_label(main) == "Version 1 of 2", 15, "“1/2” after a restart") is None:
            print("label:", version_label(main))
        if second is not None and first is not None:
            wait_for(lambda: shown_text(main) == first[3], 10, "version 1's text after a restart")
            following = version_button(main, "Next version")
            if following is not None:
                following.click()
                wait_for(lambda: version_label(main) == "Version 2 of 2", 10, "“2/2” after ›")
                wait_for(lambda: shown_text(main) == second[3], 10, "version 2's text after ›")
        shot("versions-restarted")
finally:
    stop(proc)
finish("regenerate keeps versions 1/2 and 2/2, across a restart")
