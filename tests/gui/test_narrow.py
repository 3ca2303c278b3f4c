#!/usr/bin/python3
"""The narrow layout (issue 21): GNOME's narrowest window is 360 px wide.
With the saved size 360×640 the window opens 360 px wide (it used to grow to
~440: the model picker's name and the header buttons did not fit), folded:
the conversation list first (but the chat when there is nothing to list, at a
first start: typing at once sends); opening a conversation (one with a code
block) shows it alone with a back button, and the window stays 360 px wide
(and the code block's Copy button is named "Copy code" once, not "Copy code
Copy"); with stories260K a message and its reply fit too. Screenshots:
narrow-first-start, narrow-list, narrow-code, narrow-chat.

Usage: test_narrow.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import add_conversation, bad_button_names, db_messages, fail, finish, labels, shot, start, stop, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402
import pyatspi  # noqa: E402

WIDTH = 360
binary = sys.argv[1]
model = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K", "hf_f32")
have_model = os.path.isfile(os.path.join(model, "config.json"))
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db
settings = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings")
os.makedirs(settings, exist_ok=True)
with open(os.path.join(settings, "keyfile"), "w", encoding="utf-8") as f:
    f.write(f"[io/github/hearthchat/Hearth]\nwindow-width={WIDTH}\nwindow-height=640\n")

# A first start, nothing to list yet: the window opens on the chat, not on an empty list, and typing at once
# (no click: the composer has the focus once the model is loaded) sends a message.
if have_model:
    first_db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-first.db")
    os.environ["HEARTH_DB"] = first_db
    proc, app = start([binary, "--model", model])
    try:
        main = app.child(roleName="frame")
        send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
        wait_for(lambda: send.sensitive, 60, "the model to load")
        time.sleep(0.5)
        shot("narrow-first-start")
        # AT-SPI's "showing" is not reliable in GTK 4.8; where the leaflet put the chat page is
        if send.position[0] + send.size[0] > WIDTH:
            fail(f"the chat page is not the one shown: its Send button is at x = {send.position[0]}")
        rawinput.typeText("Once upon a time")
        rawinput.pressKey("Return")
        wait_for(lambda: [r for r in db_messages(first_db) if r[0] == "user"], 20,
                 "the message typed at the first start, on the chat page")
    finally:
        stop(proc)
    os.environ["HEARTH_DB"] = db

proc, app = start([binary])
try:
    wait_for(lambda: os.path.exists(db), 20, "the database")
    time.sleep(0.5)
finally:
    stop(proc)
add_conversation(db, "Code at 360 px", None, [
    ("user", "Print the numbers from one to ten in Python, please, with a comment on each line"),
    ("assistant", "Here it is:\n\n```python\nfor number in range(1, 11):  # one to ten, inclusive of both ends\n"
                  "    print(number)\n```\n\nA **loop** does it.")])


def width(main):
    return main.size[0]


proc, app = start([binary] + (["--model", model] if have_model else []))
try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Code at 360 px", roleName="label"), 30, "the conversation list")
    if have_model:
        send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
        wait_for(lambda: send.sensitive, 60, "the model to load")
    time.sleep(1)
    if width(main) > WIDTH:
        fail(f"the window is {width(main)} px wide, not {WIDTH}")
    back = main.child(name="Back to chats", roleName="push button")
    shot("narrow-list")
    if have_model:  # keys typed on the list do not go into the composer out of sight
        rawinput.typeText("unseen")
        time.sleep(0.5)
        composer = main.child(name="Message", roleName="text")
        if composer.text:
            fail(f"keys typed on the list went into the composer out of sight: {composer.text!r}")

    main.child(name="Code at 360 px", roleName="label").click()
    wait_for(lambda: any("range(1, 11)" in t for t in labels(main)) or
             main.findChild(lambda n: "range(1, 11)" in (n.description or "") or "range(1, 11)" in (n.name or ""),
                            retry=False, requireResult=False), 10, "the conversation")
    if not back.getState().contains(pyatspi.STATE_VISIBLE):
        fail("there is no back button: the layout is not folded")
    you = wait_for(lambda: main.findChild(lambda n: n.name == "You" and n.roleName != "label", retry=False,
                                          requireResult=False), 10, "the message row")
    if you is not None and not (0 <= you.position[0] and you.position[0] + you.size[0] <= WIDTH):
        fail(f"the message row is at x {you.position[0]}, {you.size[0]} px wide: not in the {WIDTH} px window")
    time.sleep(1)
    if width(main) > WIDTH:
        fail(f"with a code block open the window is {width(main)} px wide, not {WIDTH}")
    # The code block's Copy button is named once ("Copy code", not "Copy code Copy").
    if not main.findChild(lambda n: n.roleName == "push button" and n.name == "Copy code", retry=False,
                          requireResult=False):
        fail("no button named 'Copy code' on the code block")
    for problem in bad_button_names(main):
        fail(problem)
    shot("narrow-code")

    if have_model:
        rawinput.keyCombo("<Control>n")
        time.sleep(0.5)
        rawinput.typeText("Once upon a time")
        rawinput.pressKey("Return")
        wait_for(lambda: main.child(name="Send", roleName="push button", retry=False).sensitive and
                 main.findChild(lambda n: n.name == "Assistant" and n.roleName != "label", retry=False,
                                requireResult=False), 60, "the reply")
        time.sleep(1)
        if width(main) > WIDTH:
            fail(f"with a reply the window is {width(main)} px wide, not {WIDTH}")
        shot("narrow-chat")
    else:
        print("note: stories260K is absent ($HEARTH_ASSETS); the chat part is skipped")
finally:
    stop(proc)
finish(f"the window fits {WIDTH} px")
