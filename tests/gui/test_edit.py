#!/usr/bin/python3
"""Edit is a mode (issue 21): the pencil on the last message puts its text in
the composer and leaves the exchange where it is, in the window and in the
database; Escape ends the mode and changes nothing (it used to delete the
exchange at once, so Escape lost it for good); Send replaces the exchange
with the edited message and a new reply.

Usage: test_edit.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import db_messages, fail, finish, labels, shot, start, stop, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
model = stories_model()
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db


def rows():
    return db_messages(db)


def complete_replies():
    return [r for r in rows() if r[0] == "assistant" and r[1] == "complete"]


def users():
    return [r[2] for r in rows() if r[0] == "user"]


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
    wait_for(complete_replies, 60, "the first reply")
    before = rows()
    time.sleep(0.5)

    # Edit, then Escape: nothing changes, in the window or in the store.
    edit = wait_for(lambda: main.child(name="Edit and resend", roleName="push button"), 10, "the edit button")
    if edit:
        edit.click()
        time.sleep(0.8)
        if rows() != before:
            fail(f"pressing edit changed the store: {rows()} (was {before})")
        if "Once upon a time" not in labels(main):
            fail("pressing edit removed the message from the window")
        composer.click()  # keyboard focus, as when the user is typing there
        time.sleep(0.3)
        rawinput.pressKey("Escape")
        time.sleep(0.8)
        shot("edit-escaped")
        if rows() != before:
            fail(f"Escape after edit changed the store: {rows()} (was {before})")
        if "Once upon a time" not in labels(main):
            fail("the message is not in the window after Escape")

        # Escape ended the mode: what is typed now is a new message, appended.
        composer.click()
        rawinput.typeText("The end")
        rawinput.pressKey("Return")
        wait_for(lambda: len(complete_replies()) == 2, 60, "the second reply")
        if users() != ["Once upon a time", "The end"]:
            fail(f"after Escape a new message should be appended: user messages {users()}")

        # Edit, change the text, Send: the last exchange is replaced.
        edit = wait_for(lambda: main.child(name="Edit and resend", roleName="push button"), 10, "the edit button")
        edit.click()
        time.sleep(0.5)
        composer.click()
        rawinput.pressKey("End")
        rawinput.typeText(" again")
        rawinput.pressKey("Return")
        wait_for(lambda: "The end again" in users() and len(complete_replies()) == 2, 60, "the edited exchange")
        if users() != ["Once upon a time", "The end again"]:
            fail(f"after Send the user messages are {users()}")
        if len(complete_replies()) != 2:
            fail(f"after Send there are {len(complete_replies())} replies")
        shot("edit-sent")
finally:
    stop(proc)
finish("edit is a mode: Escape keeps the exchange, Send replaces it")
