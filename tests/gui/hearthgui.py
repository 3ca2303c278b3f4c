"""Shared pieces of the dogtail GUI tests (run through run-gui-test.sh):
start the app and find it on the accessibility bus, wait for a condition,
record failures, take screenshots, open a primary-menu item."""
import os
import subprocess
import sys
import time

import dogtail.utils
dogtail.utils.isA11yEnabled = lambda: True
from dogtail import tree  # noqa: E402
from dogtail.config import config  # noqa: E402

config.searchCutoffCount = 20
config.defaultDelay = 0.2
config.actionDelay = 0.2

OUT_DIR = os.environ.get("HEARTH_GUI_OUT", "/tmp")
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def wait_for(pred, timeout, what):
    """pred() until it is truthy (exceptions count as not yet); its value, or None after a failure."""
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


def shot(name):
    time.sleep(0.8)
    path = os.path.join(OUT_DIR, f"{name}.png")
    subprocess.run(["import", "-window", "root", path], check=False)
    print(f"screenshot: {path}")


def start(argv):
    """Start the app; returns (process, dogtail application) or exits with a failure."""
    proc = subprocess.Popen(argv)
    for _ in range(80):
        try:
            return proc, tree.root.application("hearth")
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


def open_menu_item(app, main, item):
    """Main menu → item (activated through its AT-SPI action: popover item
    coordinates are unreliable under Xvfb)."""
    wait_for(lambda: main.child(name="Main menu"), 30, "the main menu button").click()
    wait_for(lambda: app.child(name=item, roleName="menu item"), 10, item).doActionNamed("click")


def toplevel(app, name, timeout=20):
    return wait_for(lambda: [w for w in app.children if w.name == name][0], timeout, f"the {name} window")


def finish(ok_message):
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("OK:", ok_message)
