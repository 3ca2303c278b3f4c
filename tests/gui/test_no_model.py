#!/usr/bin/python3
"""Conversations are readable with no model (issue 21): a profile with a
stored conversation and no models at all. The conversation opens and shows its
messages (not the "No Model Yet" page); only replying is off: Send is
insensitive, the composer is too and says why ("Choose a model to reply"),
and the conversation menu works on the open conversation (it is disabled with
none open). Saves a screenshot.

Usage: test_no_model.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import add_conversation, fail, finish, labels, shot, start, stop, wait_for  # noqa: E402

binary = sys.argv[1]
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db

# A first start creates the database; then a conversation is stored in it.
proc, app = start([binary])
try:
    wait_for(lambda: os.path.exists(db), 20, "the database")
    time.sleep(0.5)
finally:
    stop(proc)
add_conversation(db, "Tea notes", "/nowhere/tea-model",
                 [("user", "How long should green tea steep?"), ("assistant", "About two minutes, below boiling.")])

proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    composer = main.child(name="Message", roleName="text")
    if wait_for(lambda: "Choose a model to reply" in labels(main), 10, "the composer's reason") is None:
        print(labels(main))
    # No conversation open: its menu items are off.
    menu = main.child(name="Main menu")
    menu.click()
    item = wait_for(lambda: app.child(name="Rename…", roleName="menu item"), 10, "Rename… in the main menu")
    if item and item.sensitive:
        fail("Rename… is enabled with no conversation open")
    from dogtail import rawinput
    rawinput.pressKey("Escape")
    time.sleep(0.5)

    conv = wait_for(lambda: main.child(name="Tea notes", roleName="label"), 30, "the stored conversation")
    if conv:
        conv.click()
        shown = wait_for(lambda: "How long should green tea steep?" in labels(main)
                         and any("two minutes" in t for t in labels(main)), 15, "the conversation's messages")
        if not shown:
            print(labels(main))
        time.sleep(0.5)
        if send.sensitive:
            fail("Send is enabled with no model")
        if composer.sensitive:
            fail("the composer is editable with no model")
        shot("no-model-conversation")
        menu.click()
        item = wait_for(lambda: app.child(name="Rename…", roleName="menu item"), 10, "Rename… in the main menu")
        if item and not item.sensitive:
            fail("Rename… is disabled with a conversation open")
        rawinput.pressKey("Escape")
finally:
    stop(proc)

finish("a conversation is readable with no model")
