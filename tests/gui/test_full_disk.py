#!/usr/bin/python3
"""A full disk under the conversation database, in the real window: the app built with
tests/full-disk.c (hearth-full-disk), whose writes to the database fail with ENOSPC while a file
exists. At the start the disk is full: the database cannot be made, and the banner says so; with space
again, Send opens it, and stories260K replies; then, with the disk full, a message is sent: the banner says the disk
is full and that the message is still in the box, and the database is unchanged. With space again,
Enter sends the same text (it was kept), and the reply is stored.

Then a reply whose end the disk refuses: replies are greedy (temperature 0), so a new window on a new
database, sent the same first message, writes the same first reply; the disk fills at the write that holds
that reply's end ($HEARTH_FULL_DISK_ARM; stories260K replies too fast to time it from here). The banner says
the reply is not saved yet, the database holds it unfinished; with space again, the window's retry (every
two seconds) writes it whole while the window stays open.
(AT-SPI's "showing" is not reliable in GTK 4.8, so a banner going away is seen in the screenshots
full-disk-after and full-disk-reply-saved, not asserted.)

Usage: test_full_disk.py HEARTH_FULL_DISK_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import db_messages, fail, finish, shot, start, stop, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

# run as "hearth" (the name the accessibility bus shows, from argv[0])
binary = os.path.join(os.environ["XDG_RUNTIME_DIR"], "hearth")
os.symlink(os.path.abspath(sys.argv[1]), binary)
model = stories_model()
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
full = os.path.join(os.environ["XDG_DATA_HOME"], "the-disk-is-full")
os.environ["HEARTH_DB"] = db
os.environ["HEARTH_FULL_DISK_WHEN"] = full
os.environ["HEARTH_FULL_DISK_PATH"] = db
keyfile = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings", "keyfile")
os.makedirs(os.path.dirname(keyfile), exist_ok=True)
with open(keyfile, "w") as f:
    f.write("[io/github/hearthchat/Hearth]\ntemperature=0.0\n")


def rows():
    return db_messages(db)


def labels(frame):
    return [n.name for n in frame.findChildren(lambda n: n.roleName == "label" and n.name)]


def banner(frame):
    found = frame.findChildren(lambda n: n.roleName == "label" and n.name and "disk is full" in n.name)
    return [n.name for n in found]


def complete_replies():
    return [r for r in rows() if r[0] == "assistant" and r[1] == "complete"]


def loaded_window(app):
    """The main window, its composer and Send button, once the model has loaded."""
    frame = app.child(roleName="frame")
    composer = wait_for(lambda: frame.child(name="Message", roleName="text"), 30, "the composer")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the model to load")
    return frame, composer, send


# The disk is full from the start: the database cannot be made. The banner says so; once there is space,
# Send opens it and sends.
os.makedirs(os.environ["XDG_DATA_HOME"], exist_ok=True)
open(full, "w").close()
proc, app = start([binary, "--model", model])
try:
    frame, composer, send = loaded_window(app)
    said = wait_for(lambda: banner(frame), 10, "the banner saying the conversations could not be opened")
    if said and not any("could not be opened" in t for t in said):
        fail(f"the banner does not say the conversations could not be opened: {said}")
    shot("full-disk-at-start")
    os.unlink(full)
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("Once upon a time")
    rawinput.pressKey("Return")
    wait_for(lambda: len(complete_replies()) == 1, 60, "the first reply in the database")
    wait_for(lambda: send.sensitive, 30, "the first reply to end")

    # The disk fills: the message is not sent, the banner says why, the database is unchanged.
    before = rows()
    open(full, "w").close()
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("The cat sat")
    rawinput.pressKey("Return")
    said = wait_for(lambda: banner(frame), 10, "the banner saying the disk is full")
    if said and not any("still in the box" in t for t in said):
        fail(f"the banner does not say the message was kept: {said}")
    shot("full-disk-banner")
    time.sleep(1.0)
    if rows() != before:
        fail(f"the database changed while the disk was full: {rows()[len(before):]}")

    # Space again: Enter sends the text still in the box, and the reply is stored; the banner goes.
    os.unlink(full)
    composer.click()
    time.sleep(0.3)
    rawinput.pressKey("Return")
    wait_for(lambda: len(complete_replies()) == 2, 60, "the second reply in the database")
    users = [r[2] for r in rows() if r[0] == "user"]
    if users != ["Once upon a time", "The cat sat"]:
        fail(f"the kept message was not the one sent: {users}")
    shot("full-disk-after")
    first_reply = complete_replies()[0][2]
finally:
    stop(proc)

# A reply whose end the disk refuses, on a new database: kept, and written by the retry once there is space.
tail = first_reply[-24:]
if len(tail.strip()) < 8 or tail in "Once upon a time":
    fail(f"the first reply is too short to recognise its end: {first_reply!r}")
    finish("full disk")
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test-2.db")
os.environ["HEARTH_DB"] = os.environ["HEARTH_FULL_DISK_PATH"] = db
os.environ["HEARTH_FULL_DISK_ARM"] = tail
proc, app = start([binary, "--model", model])
try:
    frame, composer, send = loaded_window(app)
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("Once upon a time")
    rawinput.pressKey("Return")
    wait_for(lambda: os.path.exists(full), 60, "the disk to fill at the reply's end")
    said = wait_for(lambda: [t for t in banner(frame) if "not saved yet" in t], 10,
                    "the banner saying the reply is not saved yet")
    shot("full-disk-reply-kept")
    time.sleep(2.5)  # a retry or more, on a disk still full
    replies = [r for r in rows() if r[0] == "assistant"]
    if len(replies) != 1 or replies[0][1] == "complete":
        fail(f"the database took the reply's end on a full disk: {replies}")
    if not any(tail in lab for lab in labels(frame)):
        fail("the reply is not on screen")
    os.unlink(full)
    wait_for(lambda: complete_replies(), 10, "the retry to write the reply whole")
    saved = complete_replies()
    if saved and saved[0][2] != first_reply:
        fail(f"the reply written is not the one shown: {saved[0][2]!r} against {first_reply!r}")
    shot("full-disk-reply-saved")
finally:
    stop(proc)

finish("full disk")
