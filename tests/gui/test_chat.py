#!/usr/bin/python3
"""Chat end to end in the real window: open a model with --model, type a
message, send it, wait for the streamed reply, check it is shown and stored,
then restart the app and check the conversation is still there.

Usage: test_chat.py HEARTH_BINARY [stories|smollm2]   (run through run-gui-test.sh)
stories: $HEARTH_ASSETS/models/stories260K/hf_f32, prompt "Once upon a time"; run
(in meson.build) with "auto" choosing lavapipe but no device memory allowed to it
(HEARTH_VULKAN_ALLOW_CPU=1, HEARTH_VULKAN_MAX_MEMORY_MIB=0): the model runs on the CPU and a
toast says so.
smollm2: the converted SmolLM2-135M-Instruct (tests/reference/get-smollm2),
asked a question through its chat template. SKIPs (77) when the model is absent."""
import os
import sqlite3
import subprocess
import sys
import time

import dogtail.utils
dogtail.utils.isA11yEnabled = lambda: True
from dogtail import rawinput, tree  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthgui  # noqa: E402,F401  (dogtail's settings, the same for every GUI test)

binary = sys.argv[1]
which = sys.argv[2] if len(sys.argv) > 2 else "stories"
assets = os.environ.get("HEARTH_ASSETS", "")
if which == "smollm2":
    model = os.environ.get("HEARTH_SMOLLM2_DIR") or os.path.join(
        os.environ.get("HEARTH_REAL_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "hearth-test-models", "smollm2-135m-instruct")
    prompt = "What is the capital of France?"
    fetch = "; fetch it with tests/reference/get-smollm2"
else:
    model = os.path.join(assets, "models", "stories260K", "hf_f32")
    prompt = "Once upon a time"
    fetch = ""
if not os.path.isfile(os.path.join(model, "config.json")):
    print(f"SKIP: {model} is absent{fetch}")
    sys.exit(77)
out_dir = os.environ.get("HEARTH_GUI_OUT", "/tmp")
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def start():
    proc = subprocess.Popen([binary, "--model", model])
    for _ in range(80):
        try:
            app = tree.root.application("hearth")
            return proc, app
        except Exception:
            time.sleep(0.25)
    proc.kill()
    print("FAIL: hearth never appeared on the accessibility bus")
    sys.exit(1)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


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


def db_rows():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT role, state, content FROM messages ORDER BY conversation_id, position").fetchall()
    finally:
        con.close()


def labels(frame):
    return [n.name for n in frame.findChildren(lambda n: n.roleName == "label" and n.name)]


proc, app = start()
try:
    frame = app.child(roleName="frame")
    composer = wait_for(lambda: frame.child(name="Message", roleName="text"), 30, "the composer")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button")
    # The model finishes loading when Send becomes enabled.
    wait_for(lambda: send.sensitive, 60, "the model to load")
    if os.environ.get("HEARTH_VULKAN_MAX_MEMORY_MIB") == "0":
        # "auto" chose a device (lavapipe, allowed) with no memory allowed: the model runs on the CPU,
        # and a toast says so
        notice = wait_for(lambda: [t for t in labels(frame) if "runs on the CPU" in t], 10,
                          "the toast saying the model runs on the CPU")
        print(f"notice: {notice}")
        subprocess.run(["import", "-window", "root", os.path.join(out_dir, "chat-cpu-notice.png")], check=False)
    # GTK 4.8 offers no AT-SPI focus or text editing on a GtkTextView: click
    # into it and type with synthesized key presses, then send with Enter.
    composer.click()
    time.sleep(0.3)
    rawinput.typeText(prompt)
    time.sleep(0.3)
    rawinput.pressKey("Return")
    rows = wait_for(lambda: [r for r in db_rows() if r[0] == "assistant" and r[1] == "complete"], 120,
                    "a complete reply in the database")
    if rows:
        reply = rows[-1][2]
        if not reply.strip():
            fail("the stored reply is empty")
        user = [r for r in db_rows() if r[0] == "user"]
        if not user or user[-1][2] != prompt:
            fail(f"user message not stored as typed: {user}")
        words = [w for w in reply.split() if len(w) > 3][:3]
        shown = "\n".join(labels(frame))
        for w in words:
            if w not in shown:
                fail(f"reply word {w!r} not shown in the window")
    time.sleep(1.0)
    shot = os.path.join(out_dir, f"chat-{which}.png")
    subprocess.run(["import", "-window", "root", shot], check=False)
    print(f"screenshot: {shot}")
finally:
    stop(proc)

# Restart: the conversation is listed and reopens with both messages.
time.sleep(1.0)
proc, app = start()
try:
    frame = app.child(roleName="frame")
    conv = wait_for(lambda: frame.child(name=prompt, roleName="label"), 30,
                    "the conversation in the sidebar after a restart")
    if conv:
        conv.click()
        wait_for(lambda: any(prompt == l for l in labels(frame)), 15, "the reopened conversation")
finally:
    stop(proc)

sys.exit(1 if failures else 0)
