#!/usr/bin/python3
"""One file of a GGUF repository from the Models window (issue 23): typing
owner/name/FILE.gguf into the repository entry downloads just that file from
a local fake hub (tests/gui/fakehub.py) into a folder named after it, and the
installed list shows it with its format ("GGUF Q8_0"); closing the window,
the main window (which had no model) opens it. The file is a tiny
valid qwen2 GGUF from the fuzzing corpus. Saves a screenshot.

Usage: test_models_gguf.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakehub import FakeHub  # noqa: E402
from hearthgui import fail, finish, labels, models_download, shot, start, stop, wait_for  # noqa: E402

binary = sys.argv[1]
seed = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus-gguf", "seed-qwen2.gguf")
repo_dir = tempfile.mkdtemp(prefix="hearth-gguf-repo-")
shutil.copy(seed, os.path.join(repo_dir, "tiny-qwen2-Q8_0.gguf"))
with open(os.path.join(repo_dir, "README.md"), "w") as f:
    f.write("a GGUF repository\n")
hub = FakeHub({"test/tiny-GGUF": repo_dir})
os.environ["HF_ENDPOINT"] = hub.url
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")

proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    win = models_download(app, main, "test/tiny-GGUF/tiny-qwen2-Q8_0.gguf")
    target = os.path.join(models, "tiny-qwen2-Q8_0", "tiny-qwen2-Q8_0.gguf")
    wait_for(lambda: os.path.isfile(target), 30, "the GGUF file in its own folder")
    fetched = [r for r in hub.requests if "/resolve/" in r]
    if fetched and any(not r.endswith("tiny-qwen2-Q8_0.gguf") for r in fetched):
        fail(f"files other than the one asked for were fetched: {fetched}")
    wait_for(lambda: [t for t in labels(win) if "GGUF Q8_0" in t], 20, "the installed row with its GGUF format")
    shot("models-gguf")
    # Closing the Models window: the main window, which had nothing, opens the new model. The
    # corpus file has metadata and an embedding but no layers, so the open ends in the plain
    # message about it; what matters here is that the main window took it up.
    win.findChild(lambda n: n.roleName == "push button" and n.name == "Close", retry=False).click()
    wait_for(lambda: [t for t in labels(main) if t.startswith("Could not open “tiny-qwen2-Q8_0”")], 60,
             "the main window to open the downloaded model")
finally:
    stop(proc)
    hub.stop()
    shutil.rmtree(repo_dir, ignore_errors=True)
finish("a GGUF file downloaded by name from the Models window")
