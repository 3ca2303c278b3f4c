#!/usr/bin/python3
"""Models other apps already downloaded (app/hearth-found.c), in the real window.

A private home holds a Hugging Face hub cache with stories260K (blobs, and a snapshot of relative
links, as huggingface_hub writes it) and an Ollama store (manifests and blobs) with a small GGUF
Hearth runs and one it cannot. With no model installed, the first page lists the stories260K under
"On This Computer" with its app and format, and names the one it cannot run. "Use" adds it as links
(no byte copied) and opens it; a message gets a reply. The Models window shows it as linked, offers
the Ollama one, whose "Add" adds it; deleting the linked stories260K asks with words that say its
files stay, and leaves the hub cache whole. Before that, the hub cache is updated between two starts (a new
snapshot, the old one cleaned away): the second start links the model again to it and opens it by itself.
Screenshots of the first page and the Models window.

Usage: test_found_models.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import (db_messages, fail, finish, labels, open_menu_item, read_keyfile, shot, start, stop,  # noqa: E402
                       stories_model, toplevel, wait_for)
from dogtail import rawinput, tree  # noqa: E402

binary = sys.argv[1]
src = os.path.join(os.path.dirname(stories_model()), "hf_f16")
corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus-gguf")
home = tempfile.mkdtemp(prefix="hearth-found-home-")
os.environ["HOME"] = home
for var in ("OLLAMA_MODELS", "HF_HOME", "HF_HUB_CACHE", "LLAMA_CACHE", "HOST_XDG_CACHE_HOME", "HOST_XDG_DATA_HOME"):
    os.environ.pop(var, None)
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
db = os.path.join(os.environ["XDG_DATA_HOME"], "conversations", "hearth-test.db")
os.makedirs(os.path.dirname(db))
os.environ["HEARTH_DB"] = db

# The hub cache: blobs/<sha>, snapshots/<rev>/<file> -> ../../blobs/<sha>, refs/main.
repo = os.path.join(os.environ["XDG_CACHE_HOME"], "huggingface", "hub", "models--karpathy--stories260K")
rev = "0123456789abcdef0123456789abcdef01234567"
os.makedirs(os.path.join(repo, "blobs"))
os.makedirs(os.path.join(repo, "snapshots", rev))
os.makedirs(os.path.join(repo, "refs"))
with open(os.path.join(repo, "refs", "main"), "w") as f:
    f.write(rev)
for name in sorted(os.listdir(src)):
    data = open(os.path.join(src, name), "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    with open(os.path.join(repo, "blobs", sha), "wb") as f:
        f.write(data)
    os.symlink(os.path.join("..", "..", "blobs", sha), os.path.join(repo, "snapshots", rev, name))
blobs_before = {n: os.path.getsize(os.path.join(repo, "blobs", n)) for n in os.listdir(os.path.join(repo, "blobs"))}

# Ollama: a small llama GGUF it runs (tiny:spm) and a file it cannot (broken:q4).
ollama = os.path.join(home, ".ollama", "models")
for tag, seed in (("tiny/spm", "seed-llama-spm.gguf"), ("broken/q4", "seed-every-type.gguf")):
    data = open(os.path.join(corpus, seed), "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(ollama, "blobs"), exist_ok=True)
    with open(os.path.join(ollama, "blobs", "sha256-" + sha), "wb") as f:
        f.write(data)
    manifest = os.path.join(ollama, "manifests", "registry.ollama.ai", "library", *tag.split("/"))
    os.makedirs(os.path.dirname(manifest), exist_ok=True)
    with open(manifest, "w") as f:
        json.dump({"schemaVersion": 2, "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + sha, "size": len(data)},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "0" * 64, "size": 1}]}, f)


def find(node, pred):
    try:
        return node.findChild(pred, retry=False)
    except tree.SearchError:
        return None


proc, app = start([binary])
try:
    frame = app.child(roleName="frame")
    wait_for(lambda: "On This Computer" in labels(frame), 30, "the On This Computer group on the first page")
    text = " ".join(labels(frame))
    for want in ("karpathy/stories260K", "From Hugging Face · FP16", "tiny:spm", "From Ollama",
                 "Hearth cannot run them yet: broken:q4"):
        if want not in text:
            fail(f"{want!r} is not on the first page: {labels(frame)}")
    shot("found-first-page")
    use = wait_for(lambda: find(frame, lambda n: n.roleName == "push button" and n.name == "Use karpathy/stories260K"),
                   10, "the Use button of stories260K")
    use.click()
    linked = os.path.join(models, "stories260K")
    wait_for(lambda: os.path.isfile(os.path.join(linked, ".hearth-source.json")), 20, "the linked model folder")
    for name in os.listdir(src):
        p = os.path.join(linked, name)
        if not os.path.islink(p):
            fail(f"{name} was copied, not linked")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button")
    composer = wait_for(lambda: frame.child(name="Message", roleName="text"), 30, "the composer")
    wait_for(lambda: send.sensitive, 60, "the linked model to load")
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("Once upon a time")
    time.sleep(0.3)
    rawinput.pressKey("Return")
    wait_for(lambda: [r for r in db_messages(db) if r[0] == "assistant" and r[1] == "complete" and r[2].strip()], 120,
             "a reply from the linked model")
finally:
    stop(proc)

# The hub cache updated meanwhile (a new snapshot of other bytes, refs/main moved, the old snapshot and blobs
# cleaned): the next start finds the last model's links gone, links it again to the new snapshot and opens it.
rev2 = "89abcdef0123456789abcdef0123456789abcdef"
os.makedirs(os.path.join(repo, "snapshots", rev2))
for name in sorted(os.listdir(src)):
    data = open(os.path.join(src, name), "rb").read() + (b" " if name.endswith(".json") else b"")
    sha = hashlib.sha256(data).hexdigest()
    with open(os.path.join(repo, "blobs", sha), "wb") as f:
        f.write(data)
    os.symlink(os.path.join("..", "..", "blobs", sha), os.path.join(repo, "snapshots", rev2, name))
with open(os.path.join(repo, "refs", "main"), "w") as f:
    f.write(rev2)
old_snapshot = os.path.join(repo, "snapshots", rev)
for name in os.listdir(old_snapshot):
    target = os.path.realpath(os.path.join(old_snapshot, name))
    os.unlink(os.path.join(old_snapshot, name))
    if not name.endswith(".json"):
        continue
    os.unlink(target)   # the blobs only the old snapshot used (the weights are the same bytes in both)
os.rmdir(old_snapshot)
rev = rev2
blobs_before = {n: os.path.getsize(os.path.join(repo, "blobs", n)) for n in os.listdir(os.path.join(repo, "blobs"))}
# another model, first in the picker: the last one used, not the first, is the one to open again
shutil.copytree(src, os.path.join(models, "aaa-first"))

proc, app = start([binary])
try:
    frame = app.child(roleName="frame")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button after a restart")
    wait_for(lambda: send.sensitive, 60, "the linked model, linked again to the new snapshot, to load by itself")
    target = os.readlink(os.path.join(linked, "config.json"))
    if rev2 not in target:
        fail(f"the model was not linked again to the new snapshot: config.json -> {target}")
    # (the settings file is written a moment after the load)
    time.sleep(1.5)
    last = read_keyfile(os.environ["XDG_CONFIG_HOME"]).get("last-model", "")
    if not last.endswith("stories260K'"):
        fail(f"the model opened is not the last one used, linked again: last-model {last}")

    # The Models window: stories260K installed as linked; tiny:spm offered; Add adds it.
    open_menu_item(app, frame, "Models…")
    win = toplevel(app, "Models")
    if win is None:
        raise SystemExit(1)
    wait_for(lambda: [t for t in labels(win) if "Linked from Hugging Face" in t], 20, "the installed row as linked")
    add = wait_for(lambda: find(win, lambda n: n.roleName == "push button" and n.name == "Add tiny:spm"), 20,
                   "the Add button of tiny:spm")
    if find(win, lambda n: n.roleName == "push button" and n.name == "Add karpathy/stories260K"):
        fail("the model added already is offered again")
    shot("found-models-window")
    add.doActionNamed("click")
    wait_for(lambda: os.path.islink(os.path.join(models, "tiny-spm", "tiny-spm.gguf")), 20, "tiny:spm linked")
    wait_for(lambda: find(win, lambda n: n.name == "More actions for tiny-spm"), 20, "tiny-spm in the installed list")
    wait_for(lambda: not find(win, lambda n: n.roleName == "push button" and n.name == "Add tiny:spm"), 20,
             "tiny:spm no longer offered")

    # Delete the linked stories260K: the dialog says the files stay, and they do.
    find(win, lambda n: n.name == "More actions for stories260K").click()
    wait_for(lambda: app.child(name="Delete…", roleName="menu item"), 10, "Delete…").doActionNamed("click")
    wait_for(lambda: [t for t in labels(app) if "Its files stay where Hugging Face keeps them" in t], 10,
             "the delete dialog's words for a linked model")
    confirm = wait_for(lambda: app.findChild(lambda n: n.roleName == "push button"
                                             and n.name.replace("_", "").split()[:1] == ["Delete"], retry=False),
                       10, "the confirmation")
    confirm.click()
    wait_for(lambda: not os.path.exists(linked), 10, "the linked folder to go")
    after = {n: os.path.getsize(os.path.join(repo, "blobs", n)) for n in os.listdir(os.path.join(repo, "blobs"))}
    if after != blobs_before or len(os.listdir(os.path.join(repo, "snapshots", rev))) != len(os.listdir(src)):
        fail("deleting the linked model touched the Hugging Face cache")
    wait_for(lambda: find(win, lambda n: n.roleName == "push button" and n.name == "Add karpathy/stories260K"), 20,
             "stories260K offered again after the delete")
finally:
    stop(proc)
    shutil.rmtree(home, ignore_errors=True)
finish("models other apps downloaded: listed, used as links, added, deleted without touching their files")
