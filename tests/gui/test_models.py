#!/usr/bin/python3
"""The Models window in the real app: stories260K (FP32) is installed in the
models folder; Main menu → Models… lists it with its format, parameter count
and the memory verdict; "Rename…" renames the folder on disk; "Delete…"
asks for confirmation and removes it. Saves a screenshot of the window.
When the window opens, the work a killed process left in the models folder's
.work/ is swept away, and what an older Hearth left in .partial/; work another
process still holds, and a paused download in .partial/, are kept.

Usage: test_models.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import shutil
import subprocess
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


# What a killed quantization left (marked as our work, held by nobody), an import another process is
# still doing (marked and held), and a paused download (resumes: never swept).
dead = os.path.join(models, ".work", "quantize-gone-AAAAAA")
os.makedirs(os.path.join(dead, "model"))
open(os.path.join(dead, ".hearth-work"), "w").close()
with open(os.path.join(dead, "model", "model.safetensors.tmp"), "wb") as f:
    f.write(b"\0" * 65536)
live = os.path.join(models, ".work", "import-busy-BBBBBB")
os.makedirs(live)
open(os.path.join(live, ".hearth-work"), "w").close()
holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                           "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
                           "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)", live],
                          stdout=subprocess.PIPE, text=True)
if holder.stdout.readline().strip() != "held":
    fail("the helper process could not hold the work folder")
# What an older Hearth left in .partial/ (no .work/ then): a killed import and quantization, swept too.
old_import = os.path.join(models, ".partial", "import-x-AB12CD")
old_quant = os.path.join(models, ".partial", "my-4bit-model")
for d in (old_import, old_quant):
    os.makedirs(d)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(b"\0" * 4096)
paused = os.path.join(models, ".partial", "owner--paused")
os.makedirs(paused)
with open(os.path.join(paused, "model.safetensors"), "wb") as f:
    f.write(b"\0" * 4096)

proc, app = start([binary])
try:
    wait_for(lambda: not os.path.exists(dead), 10, "the killed quantization's leftover to be swept")
    if not os.path.isfile(os.path.join(live, ".hearth-work")):
        fail("the sweep removed work another process holds")
    wait_for(lambda: not os.path.exists(old_import) and not os.path.exists(old_quant), 10,
             "an older Hearth's leftovers in .partial to be swept")
    if not os.path.isfile(os.path.join(paused, "model.safetensors")):
        fail("the sweep removed a paused download")
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
    left = sorted(os.listdir(os.path.join(models, ".work")))
    if left != ["import-busy-BBBBBB"]:
        fail(f"the delete left work behind in .work: {left}")
finally:
    stop(proc)
    holder.kill()
    holder.wait()

finish("models window")
