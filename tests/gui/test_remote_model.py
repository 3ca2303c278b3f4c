#!/usr/bin/python3
"""`hearth --model DIR` while Hearth is running (issue 21): the running window
opens DIR (it used to be brought forward and ignore the folder), and the
second process exits at once.

Usage: test_remote_model.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import fail, finish, labels, shot, start, stop, wait_for  # noqa: E402

binary = sys.argv[1]
base = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K")
first, second = os.path.join(base, "hf_f32"), os.path.join(base, "hf_f16")
if not os.path.isfile(os.path.join(first, "config.json")) or not os.path.isfile(os.path.join(second, "config.json")):
    print(f"SKIP: stories260K (hf_f32 and hf_f16) is absent under {base}")
    sys.exit(77)
os.environ["HEARTH_DB"] = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")

proc, app = start([binary, "--model", first])
try:
    main = app.child(roleName="frame")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the first model to load")
    other = subprocess.run([binary, "--model", second], timeout=30)
    if other.returncode != 0:
        fail(f"the second `hearth --model` exited {other.returncode}")
    if wait_for(lambda: any("hf_f16" in name for name in labels(main)) and send.sensitive, 60,
                "the running window to load the second folder") is None:
        print(labels(main))
    shot("remote-model")
finally:
    stop(proc)
finish("hearth --model DIR reaches the running instance")
