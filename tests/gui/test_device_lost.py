#!/usr/bin/python3
"""The graphics card lost during a reply, in the real window: the app built
with tests/vk-fault.c (hearth-vk-fault) runs stories260K on lavapipe ("auto",
HEARTH_VULKAN_ALLOW_CPU=1); once it has loaded, the file named by
HR_VK_FAULT_LOSE_WHEN is made, so the first reply's first submit loses the
device. That reply fails and says why (in the window and in SQLite); the
engine loads the model again by itself, a toast says so, and its
Regenerate button replies on the new device. Screenshot: device-lost. (One toast only: under
Xvfb the window is never active, so a toast's timeout never runs out and
the next toast would wait behind it.)

Usage: test_device_lost.py HEARTH_VK_FAULT_BINARY   (run through run-gui-test.sh)"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import fail, finish, labels, shot, start, stop, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

# run as "hearth" (the name the accessibility bus shows, from argv[0])
binary = os.path.join(os.environ["XDG_RUNTIME_DIR"], "hearth")
os.symlink(os.path.abspath(sys.argv[1]), binary)
model = stories_model()
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db
trigger = os.path.join(os.environ["XDG_RUNTIME_DIR"], "lose-the-device")
os.environ["HR_VK_FAULT_LOSE_WHEN"] = trigger


def replies():
    """[(id, version, state, content, error)] of the assistant's messages, in order."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, version, state, content, error FROM messages WHERE role = 'assistant' "
                           "ORDER BY position").fetchall()
    finally:
        con.close()


def send(main, text):
    composer = wait_for(lambda: main.child(name="Message", roleName="text"), 30, "the composer")
    composer.click()
    time.sleep(0.3)
    rawinput.typeText(text)
    rawinput.pressKey("Return")


proc, app = start([binary, "--model", model])
try:
    main = app.child(roleName="frame")
    send_button = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send_button.sensitive, 60, "the model to load")
    if [t for t in labels(main) if "runs on the CPU" in t]:
        fail("the model runs on the CPU: this test needs it on lavapipe")
    open(trigger, "w").close()   # the next submit (the reply's first) loses the device
    send(main, "Once upon a time")
    failed = wait_for(lambda: len(replies()) == 1 and replies()[0][2] == "error" and replies()[0], 60,
                      "the reply to fail")
    if failed is not None:
        print(f"stored: state {failed[2]}, error {failed[4]!r}")
        if "graphics card stopped working" not in (failed[4] or ""):
            fail(f"the stored error does not say the graphics card stopped working: {failed[4]!r}")
    if os.path.exists(trigger):
        fail("no submit took the trigger: the device was never lost")
    toast = wait_for(lambda: [t for t in labels(main) if t.startswith("The graphics card stopped working;") and
                              t.endswith("is loaded again")], 60,
                     "the toast saying the model is loaded again")
    print(f"toast: {toast}")
    if not [t for t in labels(main) if t.startswith("The reply failed: the graphics card stopped working")]:
        fail(f"the window does not show why the reply failed: {labels(main)}")
    shot("device-lost")
    wait_for(lambda: send_button.sensitive, 30, "Send to be enabled again")

    # the toast's button (after the reply's own Regenerate in the tree: the toast overlay's toasts come last)
    buttons = wait_for(lambda: main.findChildren(lambda n: n.roleName == "push button" and n.name == "Regenerate"),
                       10, "the Regenerate buttons")
    if buttons and len(buttons) < 2:
        fail(f"{len(buttons)} Regenerate button(s): the toast offers none")
    regenerate = buttons[-1] if buttons else None
    if regenerate is not None:
        regenerate.click()
        again = wait_for(lambda: len(replies()) == 1 and replies()[0][2] == "complete" and replies()[0], 60,
                         "the regenerated reply")
        if again is not None:
            if not again[3].strip():
                fail("the regenerated reply is empty")
            print(f"regenerated: {again[3][:60]!r}")
        if [t for t in labels(main) if "runs on the CPU" in t]:
            fail("the model went to the CPU although the new device works")
finally:
    stop(proc)

finish("the device lost during a reply: the reply says so, the model loads again, Regenerate replies")
