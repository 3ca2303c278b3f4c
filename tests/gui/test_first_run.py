#!/usr/bin/python3
"""A newcomer's first run (issue 21): an empty profile opens on the "Get a
Model" page with the recommended models, each with its download size and a
"fits this computer" badge; one click downloads a model from a local fake
Hugging Face Hub (tests/gui/fakehub.py serving stories260K as test/stories),
the window loads it and a first message gets a reply; after a restart the
same model loads by itself. Screenshots of the first page and the first chat.

Usage: test_first_run.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakehub import FakeHub  # noqa: E402
from hearthgui import db_messages, fail, finish, labels, shot, start, stop, stories_model, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
src = stories_model()
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db

# The curated list the app reads first: $XDG_DATA_DIRS/hearth/models/recommended.json.
data_dir = tempfile.mkdtemp(prefix="hearth-first-run-")
os.makedirs(os.path.join(data_dir, "hearth", "models"))
with open(os.path.join(data_dir, "hearth", "models", "recommended.json"), "w") as f:
    json.dump({"version": 1, "models": [
        {"repo_id": "test/stories", "name": "Tiny Stories", "description": "A 260K-parameter story teller.",
         "format": "FP32", "params": 260000, "size_bytes": 1100000, "min_memory_bytes": 2000000, "gated": False},
        {"repo_id": "test/huge", "name": "Huge Model", "description": "More than any computer here has.",
         "format": "BF16", "params": 10 ** 12, "size_bytes": 2 * 10 ** 12, "min_memory_bytes": 2 * 10 ** 15,
         "gated": False},
    ]}, f)
os.environ["XDG_DATA_DIRS"] = data_dir + ":" + (os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share")
hub = FakeHub({"test/stories": src})
os.environ["HF_ENDPOINT"] = hub.url


def db_rows():
    return db_messages(db)


proc, app = start([binary])
try:
    frame = app.child(roleName="frame")
    wait_for(lambda: "Get a Model" in labels(frame), 30, "the Get a Model page")
    text = labels(frame)
    for want in ("Recommended", "Tiny Stories", "Fits this computer", "Too large for this computer",
                 "Open a Model Folder…"):
        if want not in " ".join(text):
            fail(f"{want!r} is not on the first page: {text}")
    shot("first-run-page")
    get = wait_for(lambda: frame.child(name="Download Tiny Stories", roleName="push button"), 10,
                   "the Download button of Tiny Stories")
    get.click()
    path = os.path.join(models, "test--stories")
    wait_for(lambda: os.path.isfile(os.path.join(path, "model.safetensors")), 60, "the download into the models folder")
    if not any(r.startswith("/test/stories/resolve/") for r in hub.requests):
        fail(f"no file came from the fake hub: {hub.requests}")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button")
    composer = wait_for(lambda: frame.child(name="Message", roleName="text"), 30, "the composer")
    wait_for(lambda: send.sensitive, 60, "the downloaded model to load")
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("Once upon a time")
    time.sleep(0.3)
    rawinput.pressKey("Return")
    wait_for(lambda: [r for r in db_rows() if r[0] == "assistant" and r[1] == "complete" and r[2].strip()], 120,
             "a reply from the downloaded model")
    shot("first-run-chat")
finally:
    stop(proc)

# Restart: the model loads again by itself; the first page is not shown.
time.sleep(1.0)
proc, app = start([binary])
try:
    frame = app.child(roleName="frame")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button after a restart")
    composer = wait_for(lambda: frame.child(name="Message", roleName="text"), 30, "the composer after a restart")
    wait_for(lambda: send.sensitive, 60, "the model to load by itself after a restart")
    if not frame.findChild(lambda n: n.name == "test--stories", retry=False):
        fail("the model picker does not show test--stories after the restart")
finally:
    stop(proc)
    hub.stop()
finish("first run: Get a Model → download → chat → restart remembers the model")
