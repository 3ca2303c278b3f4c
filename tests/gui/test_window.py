#!/usr/bin/python3
"""The window opens, is reachable over AT-SPI, and with nothing installed shows the "Get a Model"
page: the recommended models and the other ways in."""
import os
import subprocess
import sys
import time

import dogtail.utils
dogtail.utils.isA11yEnabled = lambda: True
from dogtail import tree  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthgui  # noqa: E402,F401  (dogtail's settings, the same for every GUI test)

binary = sys.argv[1]
out_dir = os.environ.get("HEARTH_GUI_OUT", "/tmp")
proc = subprocess.Popen([binary])
failures = []
try:
    app = None
    for _ in range(60):
        try:
            app = tree.root.application("hearth")
            break
        except Exception:
            time.sleep(0.5)
    if app is None:
        print("FAIL: the hearth application never appeared on the accessibility bus")
        sys.exit(1)
    frame = app.child(roleName="frame")
    if "Hearth" not in frame.name:
        failures.append(f"window title is {frame.name!r}")
    labels = [n.name for n in frame.findChildren(lambda n: n.roleName == "label")]
    for want in ("Get a Model", "Recommended", "Open a Model Folder…"):
        if want not in labels:
            failures.append(f"{want!r} missing from the first page; labels: {labels}")
    if not frame.findChildren(lambda n: n.roleName == "push button" and n.name.startswith("Download ")):
        failures.append("no Download button on the first page")
    time.sleep(0.5)
    shot = os.path.join(out_dir, "window.png")
    subprocess.run(["import", "-window", "root", shot], check=False)
    print(f"screenshot: {shot}")
finally:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
