#!/usr/bin/python3
"""The Models window in the real app: stories260K (FP32) is installed in the
models folder; Main menu → Models… lists it with its format, parameter count
and the memory verdict; "Rename…" renames the folder on disk; "Delete…"
asks for confirmation and removes it. Saves a screenshot of the window.

Usage: test_models.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import shutil
import subprocess
import sys
import time

import dogtail.utils
dogtail.utils.isA11yEnabled = lambda: True
from dogtail import rawinput, tree  # noqa: E402
from dogtail.config import config  # noqa: E402

config.searchCutoffCount = 20
config.defaultDelay = 0.2
config.actionDelay = 0.2

binary = sys.argv[1]
src = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K", "hf_f32")
if not os.path.isfile(os.path.join(src, "config.json")):
    print(f"SKIP: {src} is absent")
    sys.exit(77)
out_dir = os.environ.get("HEARTH_GUI_OUT", "/tmp")
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
os.makedirs(models, exist_ok=True)
shutil.copytree(src, os.path.join(models, "stories260K"))
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.25)
    fail(f"timed out waiting for {what}")
    return None


def find(node, pred):
    return node.findChild(pred, retry=False)


def labels(node):
    return [n.name for n in node.findChildren(lambda n: n.roleName == "label" and n.name)]


proc = subprocess.Popen([binary])
app = None
for _ in range(80):
    try:
        app = tree.root.application("hearth")
        break
    except Exception:
        time.sleep(0.25)
if app is None:
    proc.kill()
    print("FAIL: hearth never appeared on the accessibility bus")
    sys.exit(1)

try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Main menu"), 30, "the main menu button").click()
    wait_for(lambda: app.child(name="Models…", roleName="menu item"), 10, "the Models… item").doActionNamed("click")
    win = wait_for(lambda: [w for w in app.children if w.name == "Models"][0], 20, "the Models window")
    if win is None:
        raise SystemExit(1)
    sub = wait_for(lambda: [t for t in labels(win) if "FP32" in t and "260 K parameters" in t], 10,
                   "the stories260K row with its format and size")
    if sub and "fits in this computer" not in " ".join(labels(win)):
        fail(f"no memory verdict: {labels(win)}")
    time.sleep(0.5)
    path = os.path.join(out_dir, "models-window.png")
    subprocess.run(["import", "-window", "root", path], check=False)
    print(f"screenshot: {path}")

    # Rename through the row's menu
    wait_for(lambda: find(win, lambda n: n.name == "More actions for stories260K"), 10, "the row menu").click()
    wait_for(lambda: app.child(name="Rename…", roleName="menu item"), 10, "Rename…").doActionNamed("click")
    entry = wait_for(lambda: app.findChild(lambda n: n.roleName == "text" and n.name == "New name", retry=False),
                     10, "the rename entry")
    entry.click()
    rawinput.keyCombo("<Control>a")
    rawinput.typeText("tiny-stories")
    rawinput.pressKey("Return")
    wait_for(lambda: os.path.isdir(os.path.join(models, "tiny-stories")), 10, "the folder to be renamed on disk")
    if os.path.exists(os.path.join(models, "stories260K")):
        fail("the old folder is still there after the rename")
    wait_for(lambda: find(win, lambda n: n.name == "More actions for tiny-stories"), 10, "the renamed row")

    # Delete, with confirmation
    find(win, lambda n: n.name == "More actions for tiny-stories").click()
    wait_for(lambda: app.child(name="Delete…", roleName="menu item"), 10, "Delete…").doActionNamed("click")
    # AdwMessageDialog's response buttons are named from their mnemonic label
    confirm = wait_for(lambda: app.findChild(lambda n: n.roleName == "push button"
                                             and n.name.replace("_", "").split()[:1] == ["Delete"], retry=False),
                       10, "the confirmation")
    if confirm is None:
        print([(n.roleName, n.name) for n in app.findChildren(lambda n: n.roleName == "push button")])
        raise SystemExit(1)
    confirm.click()
    wait_for(lambda: not os.path.exists(os.path.join(models, "tiny-stories")), 10, "the folder to be deleted")
finally:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("OK: models window")
