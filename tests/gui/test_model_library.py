#!/usr/bin/python3
"""The model library in the real window (issue 21):
- the picker lists models by display name (case-insensitive);
- a model opened from a folder outside the models folder (--model) joins the
  library and is still in the picker after a restart (nothing is copied);
- the last model used is loaded again at start-up;
- a conversation reopens with the model that wrote it, and its replies say
  which model that was; one written by a model that is not installed says so
  in a toast and keeps the current model.

The models folder holds three links to stories260K (alpha, Beta, Zeta); the
first run opens stories260K itself with --model.
Usage: test_model_library.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import (add_conversation, fail, finish, labels, read_keyfile, shot, start,  # noqa: E402
                       stop, stories_model, wait_for)
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
src = stories_model()
src = os.path.abspath(src)
SRC_NAME = "stories260K (hf_f32)"
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
os.makedirs(models, exist_ok=True)
for name in ("Zeta", "alpha", "Beta"):
    os.symlink(src, os.path.join(models, name))
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db


def conversations():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, title, model FROM conversations ORDER BY id").fetchall()
    finally:
        con.close()


def complete_replies():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM messages WHERE role = 'assistant' AND state = 'complete'").fetchone()[0]
    finally:
        con.close()


def picker(main):
    return main.findChild(lambda n: n.roleName == "combo box" and n.name == "Model", retry=False)


def picker_shows(main, name):
    """The drop-down's button shows the selected model's name (GTK 4.8 exposes
    every page of its inner stack, so "(None)" is always there too)."""
    button = picker(main).findChild(lambda n: n.roleName == "push button", retry=False)
    return name in labels(button)


def open_picker(main):
    """Opens the picker; its list (AT-SPI's "showing" is not reliable in GTK 4.8)."""
    picker(main).click()
    return wait_for(lambda: picker(main).findChild(lambda n: n.roleName == "list", retry=False), 10,
                    "the picker's list")


def picker_names(lst):
    return [n.name for n in lst.findChildren(lambda n: n.roleName == "label" and n.name)]


def choose_model(main, name):
    """Picks a model with the keyboard: popover items report wrong screen
    positions under Xvfb, so a click lands on the wrong row."""
    lst = open_picker(main)
    names = picker_names(lst) if lst else []
    if name not in names:
        fail(f"{name} is not in the picker: {names}")
        return
    time.sleep(0.5)
    rawinput.pressKey("Home")
    for _ in range(names.index(name)):
        rawinput.pressKey("Down")
    rawinput.pressKey("Return")


def send(main, text, replies_before):
    send_button = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send_button.sensitive, 60, "the model to load")
    main.child(name="Message", roleName="text").click()
    time.sleep(0.3)
    rawinput.typeText(text)
    time.sleep(0.3)
    rawinput.pressKey("Return")
    wait_for(lambda: complete_replies() > replies_before, 120, f"the reply to {text!r}")


# --- first run: --model from outside the models folder ------------------------------
proc, app = start([binary, "--model", src])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: picker_shows(main, SRC_NAME), 30, f"the picker to show {SRC_NAME}")
    lst = open_picker(main)
    if lst:
        names = picker_names(lst)
        print(f"picker order: {names}")
        if names != ["alpha", "Beta", SRC_NAME, "Zeta"]:
            fail(f"the picker is not sorted by name: {names}")
        shot("library-picker")
        rawinput.pressKey("Escape")
        time.sleep(0.5)
    send(main, "Once upon a time", 0)
    # A new chat with another model
    main.child(name="New chat", roleName="push button").click()
    time.sleep(0.5)
    choose_model(main, "Beta")
    wait_for(lambda: picker_shows(main, "Beta"), 30, "the picker to show Beta")
    send(main, "The dog", 1)
    wait_for(lambda: [t for t in labels(main) if t.startswith("Beta · ")], 10, "the reply's note naming Beta")
    convs = conversations()
    print(f"conversations: {convs}")
    if [c[2] for c in convs] != [src, os.path.join(models, "Beta")]:
        fail(f"the conversations do not record their models: {convs}")
    rawinput.keyCombo("<Control>q")
    wait_for(lambda: proc.poll() is not None, 15, "the app to quit")
finally:
    stop(proc)

keys = read_keyfile(os.environ["XDG_CONFIG_HOME"])
print(f"settings: last-model={keys.get('last-model')} model-folders={keys.get('model-folders')}")
if keys.get("last-model") != repr(os.path.join(models, "Beta")):
    fail(f"last-model is {keys.get('last-model')!r}")
if src not in keys.get("model-folders", ""):
    fail(f"the folder opened with --model is not in model-folders: {keys.get('model-folders')!r}")
if os.path.join(models, "Beta") in keys.get("model-folders", ""):
    fail("a model of the models folder was added to model-folders")
if sorted(os.listdir(models)) != ["Beta", "Zeta", "alpha"]:
    fail(f"the models folder changed: {os.listdir(models)}")
add_conversation(db, "Hello from the past", "/nowhere/gone-model",
                 [("user", "Hello from the past"), ("assistant", "An old reply")])

# --- second run: no --model ------------------------------------------------------
time.sleep(0.5)
proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: picker_shows(main, "Beta"), 30, "the last model (Beta) at start-up")
    send_button = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send_button.sensitive, 60, "Beta to load")
    lst = open_picker(main)
    if lst and SRC_NAME not in picker_names(lst):
        fail(f"the folder opened with --model is not in the picker after a restart: {picker_names(lst)}")
    rawinput.pressKey("Escape")
    time.sleep(0.5)
    # The first conversation comes back with its own model.
    conv = wait_for(lambda: main.child(name="Once upon a time", roleName="label"), 30, "the first conversation")
    if conv:
        conv.click()
        wait_for(lambda: picker_shows(main, SRC_NAME), 30, f"the conversation to load {SRC_NAME}")
        wait_for(lambda: send_button.sensitive, 60, f"{SRC_NAME} to load")
        wait_for(lambda: [t for t in labels(main) if t.startswith(SRC_NAME + " · ")], 10,
                 "the stored reply's note naming its model")
        # The status line is this conversation's: its context use and its last reply's speed.
        status = wait_for(lambda: [t for t in labels(main) if t.startswith("Context ") and "last reply" in t], 10,
                          "the conversation's context use and speed in the status line")
        print(f"status: {status}")
        if status and status[0].startswith("Context 0 "):
            fail(f"the status line does not count the conversation's tokens: {status}")
        shot("library-reopened")
    # A conversation whose model is gone: a toast, and the model stays.
    conv = wait_for(lambda: main.child(name="Hello from the past", roleName="label"), 30, "the old conversation")
    if conv:
        conv.click()
        wait_for(lambda: [t for t in labels(main) if "gone-model" in t and "not installed" in t], 10,
                 "the toast naming the missing model")
        wait_for(lambda: "An old reply" in labels(main) or any("An old reply" in t for t in labels(main)), 10,
                 "the old conversation's messages")
        time.sleep(1.0)
        status = [t for t in labels(main) if t.startswith("Context ")]
        print(f"status: {status}")
        if any("last reply" in t for t in status):
            fail(f"the status line kept the previous conversation's speed: {status}")
        if not picker_shows(main, SRC_NAME):
            fail("the model changed when the conversation's model is not installed")
        shot("library-missing-model")
finally:
    stop(proc)

finish("model library")
