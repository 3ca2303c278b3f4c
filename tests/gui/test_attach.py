#!/usr/bin/python3
"""Attaching text files to a message: Ctrl+O (or the composer's Attach button) opens a file chooser; a text
file chosen there goes into the composer as its name and its text in a code fence, a Python file's fence
named "python"; the message sent and stored is that text with the question typed after it, shown with the
code highlighted, and the conversation takes the question as its title. A binary file is refused with a
toast that names it, and the composer keeps what it had. A text file longer than the model's context goes
in after what was typed, with a toast that it will not fit as it is. Dropped on the chat (dragged from
tests/gui/dragsource.py's window, as from a file manager), a text file is attached the same way, and a
model folder is opened instead. Copied in a file manager and pasted, a file is attached and a link pastes
as its address; copied text still pastes as text.

Usage: test_attach.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import db_messages, fail, finish, labels, shot, start, stop, stories_model, toplevel, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
model = stories_model()
# The database in a folder of its own, as the app keeps it: the file chooser, completing a path typed into it,
# reads the first bytes of the files it lists whose names say nothing (a database's -wal and -shm), which drops
# the app's POSIX locks on them; this test's own reads of the database then removed the write-ahead log under
# the app, and a reply's end was lost (app/README.md).
db = os.path.join(os.environ["XDG_DATA_HOME"], "conversations", "hearth-test.db")
os.makedirs(os.path.dirname(db))
os.environ["HEARTH_DB"] = db
os.environ["GTK_USE_PORTAL"] = "0"
# short replies: no "context is full" toast over the composer's buttons
keyfile = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings", "keyfile")
os.makedirs(os.path.dirname(keyfile), exist_ok=True)
with open(keyfile, "w") as f:
    f.write("[io/github/hearthchat/Hearth]\nmax-new-tokens=16\n")
files = os.path.join(os.environ["XDG_DATA_HOME"], "files")
os.makedirs(files)
code = os.path.join(files, "reverse.py")
with open(code, "w") as f:
    f.write("def reverse(s):\n    return s[::-1]\n")
binary_file = os.path.join(files, "photo.jpg")
with open(binary_file, "wb") as f:
    f.write(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01")
long_file = os.path.join(files, "long.txt")
with open(long_file, "w") as f:
    f.write("Once upon a time there was a long story. " * 100)
LINK = "https://example.com/page"
ATTACHED = "reverse.py:\n```python\ndef reverse(s):\n    return s[::-1]\n```\n"


def choose(app, main, path, keyboard=False):
    """The Attach button (or Ctrl+O), then the file typed into the chooser's location."""
    if keyboard:
        rawinput.keyCombo("<Control>o")
    else:  # the button's own action, not a click at its place: a toast may lie over it
        main.child(name="Attach Text Files", roleName="push button").doActionNamed("click")
    toplevel(app, "Attach Text Files")
    time.sleep(0.5)
    rawinput.keyCombo("<Control>l")
    time.sleep(0.3)
    rawinput.typeText(path)
    time.sleep(0.3)
    rawinput.pressKey("Return")


dropped_model = os.path.join(files, "dropped-stories")
shutil.copytree(model, dropped_model)


def drop(path):
    """Drag path from a small window of the test's (top left, over the window's corner) onto the chat."""
    source = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "dragsource.py"), path])
    try:
        time.sleep(1.5)
        rawinput.dragWithTrajectory((60, 20), (600, 300))
        time.sleep(0.5)
    finally:
        source.terminate()
        source.wait()


proc, app = start([binary, "--model", model])
try:
    main = app.child(roleName="frame")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the model to load")
    composer = main.child(name="Message", roleName="text")

    choose(app, main, code, keyboard=True)
    wait_for(lambda: composer.text == ATTACHED, 10, "the file in the composer")
    shot("attach-file")
    rawinput.typeText("What does this do?")
    rawinput.pressKey("Return")
    if not wait_for(lambda: [r for r in db_messages(db) if r[0] == "assistant" and r[1] == "complete"], 60,
                    "the reply"):
        print("stored:", db_messages(db))
    # the user's message shows the file as highlighted code, the language named in its header
    wait_for(lambda: [t for t in labels(main) if t == "Python"], 10, "the attached code shown as a Python block")
    shot("attach-sent")
    users = [r[2] for r in db_messages(db) if r[0] == "user"]
    if users != [ATTACHED + "What does this do?"]:
        fail(f"the message stored is not the file and the question: {users}")
    # the conversation is named by the question, not by the file's name line
    con = sqlite3.connect(db)
    titles = [r[0] for r in con.execute("SELECT title FROM conversations")]
    con.close()
    if titles != ["What does this do?"]:
        fail(f"the conversation's title is not the question: {titles}")

    # A binary file: refused with its name, nothing put in.
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("keep me")
    choose(app, main, binary_file)
    wait_for(lambda: [t for t in labels(main) if "photo.jpg" in t and "not a text file" in t], 10,
             "the toast refusing the binary file")
    shot("attach-binary")
    if composer.text != "keep me":
        fail(f"the composer changed: {composer.text!r}")

    # A text longer than the model's context (stories260K: 512 tokens) goes in, with a word that it will not fit.
    choose(app, main, long_file)
    wait_for(lambda: [t for t in labels(main) if "long.txt" in t and "longer than this model can read" in t], 10,
             "the toast saying the file is longer than the context")
    if not composer.text.startswith("keep me\n\nlong.txt:\n```"):
        fail(f"the long file is not in the composer after the text: {composer.text[:40]!r}")

    # Dropped on the chat (dragged from a window of the test's, as from a file manager): a text file is
    # attached; a model folder is opened.
    composer.click()
    time.sleep(0.3)
    rawinput.keyCombo("<Control>a")
    rawinput.pressKey("Delete")
    drop(code)
    wait_for(lambda: composer.text == ATTACHED, 10, "the dropped file in the composer")
    drop(dropped_model)
    wait_for(lambda: main.findChild(lambda n: (n.name or "").startswith("dropped-stories"), retry=False,
                                    requireResult=False), 20, "the dropped model in the picker")
    wait_for(lambda: send.sensitive, 60, "the dropped model to load")
    shot("attach-dropped-model")
    if composer.text != ATTACHED:
        fail(f"dropping a model changed the composer: {composer.text[:40]!r}")

    # Copied in a file manager (a file and a link), pasted into the composer: the file is attached, the link
    # pastes as its address. Text copied and pasted is still text.
    composer.click()
    time.sleep(0.3)
    rawinput.keyCombo("<Control>a")
    rawinput.pressKey("Delete")
    source = subprocess.Popen(["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               "dragsource.py"), "--copy", code, LINK])
    try:
        time.sleep(1.5)
        composer.click()
        time.sleep(0.3)
        rawinput.keyCombo("<Control>v")
        wait_for(lambda: composer.text == LINK + "\n\n" + ATTACHED, 10, "the pasted file and link in the composer")
    finally:
        source.terminate()
        source.wait()
    pasted = composer.text
    rawinput.keyCombo("<Control>a")
    rawinput.keyCombo("<Control>c")
    rawinput.pressKey("Delete")
    rawinput.keyCombo("<Control>v")
    wait_for(lambda: composer.text == pasted, 10, "text copied and pasted back as text")
finally:
    stop(proc)

finish("attach")
