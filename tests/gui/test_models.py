#!/usr/bin/python3
"""The Models window in the real app: stories260K (FP32) is installed in the
models folder; Main menu → Models… lists it with its format, parameter count
and the memory verdict; "Rename…" renames the folder on disk; "Delete…"
asks for confirmation and removes it. Saves a screenshot of the window.

Usage: test_models.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import fail, finish, open_menu_item, shot, start, stop, toplevel, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
src = stories_model()
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
os.makedirs(models, exist_ok=True)
shutil.copytree(src, os.path.join(models, "stories260K"))
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")


def find(node, pred):
    return node.findChild(pred, retry=False)


def labels(node):
    return [n.name for n in node.findChildren(lambda n: n.roleName == "label" and n.name)]


proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    open_menu_item(app, main, "Models…")
    win = toplevel(app, "Models")
    if win is None:
        raise SystemExit(1)
    sub = wait_for(lambda: [t for t in labels(win) if "FP32" in t and "260 K parameters" in t], 10,
                   "the stories260K row with its format and size")
    if sub and "fits in this computer" not in " ".join(labels(win)):
        fail(f"no memory verdict: {labels(win)}")
    shot("models-window")

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
    stop(proc)

finish("models window")
