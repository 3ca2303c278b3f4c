#!/usr/bin/python3
"""A broken model costs nothing (issue 21): with stories260K loaded, opening
(through `hearth --model`, as from a file manager) a copy whose
model.safetensors is cut short, then a copy without tokenizer.json, then a
folder that is no model at all: each time the window says in plain words
what is wrong and what to do, keeps the engine's message under "Technical
Details", keeps the working model loaded (Send still works) and does not
add the broken folder to the picker.

Usage: test_bad_model.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import fail, finish, labels, shot, start, stop, stories_model, wait_for  # noqa: E402

binary = sys.argv[1]
good = stories_model()
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")

tmp = tempfile.mkdtemp(prefix="hearth-bad-")
cut = os.path.join(tmp, "cut-short")
shutil.copytree(good, cut)
with open(os.path.join(cut, "model.safetensors"), "r+b") as f:
    f.truncate(os.path.getsize(os.path.join(good, "model.safetensors")) // 2)
notok = os.path.join(tmp, "no-tokenizer")
shutil.copytree(good, notok)
os.remove(os.path.join(notok, "tokenizer.json"))
empty = os.path.join(tmp, "holiday-photos")
os.makedirs(empty)
with open(os.path.join(empty, "beach.jpg"), "wb") as f:
    f.write(b"\xff\xd8\xff")

cases = [
    (cut, "The model file is incomplete.", "run past the end"),
    (notok, "has no tokenizer.json", "tokenizer.json"),
    (empty, "is not a model", "config.json"),
]

def exists(node, pred):
    try:
        return node.findChild(pred, retry=False)
    except Exception:
        return None


proc, app = start([binary, "--model", good])
try:
    main = app.child(roleName="frame")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the good model to load")
    for path, plain, detail in cases:
        name = os.path.basename(path)
        r = subprocess.run([binary, "--model", path], timeout=30)
        if r.returncode != 0:
            fail(f"`hearth --model {name}` exited {r.returncode}")
        msg = wait_for(lambda: [t for t in labels(main) if t.startswith(f"Could not open “{name}”")], 60,
                       f"the plain message about {name}")
        if msg and plain not in msg[0]:
            fail(f"{name}: the message does not say {plain!r}: {msg[0]!r}")
        if msg and ("data_offsets" in msg[0] or "No such file" in msg[0]):
            fail(f"{name}: developer text in the message itself: {msg[0]!r}")
        details = wait_for(lambda: main.findChild(lambda n: n.name == "Technical Details", retry=False), 10,
                           f"Technical Details for {name}")
        if details:
            details.click()
            if not wait_for(lambda: [t for t in labels(main) if detail in t], 10, f"the engine's message for {name}"):
                print(labels(main))
        if name == "cut-short":
            shot("bad-model-incomplete")
        wait_for(lambda: send.sensitive, 30, f"the good model to stay loaded after {name}")
        if exists(main, lambda n: n.name == name and n.roleName in ("label", "menu item")):
            fail(f"{name} shows in the window (the picker) after failing")
        if not exists(main, lambda n: "hf_f32" in (n.name or "") and n.roleName == "label"):
            fail(f"the picker no longer shows hf_f32 after {name}")
        dismiss = exists(main, lambda n: n.name == "Dismiss" and n.roleName == "push button")
        if dismiss:
            dismiss.click()
finally:
    stop(proc)
    shutil.rmtree(tmp, ignore_errors=True)
finish("broken models leave the working one loaded, with a plain message")
