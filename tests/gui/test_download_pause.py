#!/usr/bin/python3
"""Pause and resume a download in the Models window: a slow local fake hub
(tests/gui/fakehub.py) serves one GGUF file of 3 MiB at 256 KiB/s; the
test presses Pause once bytes have arrived, then Resume, and checks the file
arrives whole, byte for byte, with the second request resuming where the
first stopped (a Range from a non-zero offset). Resume once freed the
repository name it was about to store again (a use after free, caught by
ASan in the sanitize build). Saves a screenshot of the paused state.

Usage: test_download_pause.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import random
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakehub import FakeHub  # noqa: E402
from hearthgui import fail, finish, labels, models_download, shot, start, stop, wait_for  # noqa: E402

binary = sys.argv[1]
seed = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus-gguf", "seed-qwen2.gguf")
repo_dir = tempfile.mkdtemp(prefix="hearth-pause-repo-")
name = "slow-qwen2-Q8_0.gguf"
with open(seed, "rb") as f:
    payload = f.read() + random.Random(5).randbytes(3 * 1024 * 1024)   # bytes past the tensors: any file will do
with open(os.path.join(repo_dir, name), "wb") as f:
    f.write(payload)
hub = FakeHub({"test/slow-GGUF": repo_dir}, bytes_per_second=256 * 1024)
os.environ["HF_ENDPOINT"] = hub.url
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
target = os.path.join(models, "slow-qwen2-Q8_0", name)


def button(win, label):
    return win.findChild(lambda n: n.roleName == "push button" and n.name == label, retry=False)


proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    win = models_download(app, main, f"test/slow-GGUF/{name}")
    wait_for(lambda: [t for t in labels(win) if " of " in t and "file 1 of 1" in t and not t.startswith("0 bytes")],
             20, "bytes to arrive")
    wait_for(lambda: button(win, "Pause"), 10, "the Pause button").click()
    wait_for(lambda: [t for t in labels(win) if t.startswith("Paused")], 20, "the paused state")
    shot("download-paused")
    if os.path.isfile(target):
        fail("the whole file arrived before the pause; the hub is not slow enough to test a resume")
    wait_for(lambda: button(win, "Resume"), 10, "the Resume button").click()
    wait_for(lambda: [t for t in labels(win) if t == "Download complete"], 90, "the resumed download to complete")
    if proc.poll() is not None:
        fail(f"hearth exited with {proc.returncode} during the resume")
    if not os.path.isfile(target):
        fail(f"{target} is missing after the resume")
    else:
        with open(target, "rb") as f:
            if f.read() != payload:
                fail("the resumed file differs from the hub's")
    resumed = [r for r in hub.ranges if r.startswith("bytes=") and not r.startswith("bytes=0-")]
    print(f"file requests' Range headers: {hub.ranges}")
    if not resumed:
        fail(f"no request resumed from a non-zero offset: {hub.ranges}")
finally:
    stop(proc)
    hub.stop()
    shutil.rmtree(repo_dir, ignore_errors=True)
finish("a paused download resumes where it stopped and completes")
