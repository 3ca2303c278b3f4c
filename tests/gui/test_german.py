#!/usr/bin/python3
"""The German translation reaches the real window: with a German locale and
the build tree's catalogue (HEARTH_LOCALEDIR=BUILD/po), the empty states, the
main menu and the Preferences window speak German. The locale is compiled
into a temporary folder with localedef (SKIP when the locale sources are
missing). Usage: test_german.py HEARTH_BINARY BUILD_PO_DIR   (via run-gui-test.sh)"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import dogtail.utils
dogtail.utils.isA11yEnabled = lambda: True
from dogtail import rawinput, tree  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hearthgui  # noqa: E402,F401  (dogtail's settings, the same for every GUI test)

binary, po_dir = sys.argv[1], sys.argv[2]
out_dir = os.environ.get("HEARTH_GUI_OUT", "/tmp")
if not os.path.isfile(os.path.join(po_dir, "de", "LC_MESSAGES", "hearth.mo")):
    print(f"FAIL: {po_dir}/de/LC_MESSAGES/hearth.mo was not built")
    sys.exit(1)
if not shutil.which("localedef") or not os.path.isdir("/usr/share/i18n/locales"):
    print("SKIP: localedef or the locale sources (/usr/share/i18n/locales) are missing")
    sys.exit(77)
locdir = tempfile.mkdtemp(prefix="hearth-locale-")
r = subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", os.path.join(locdir, "de_DE.UTF-8")],
                   capture_output=True, text=True)
if not os.path.isdir(os.path.join(locdir, "de_DE.UTF-8")):
    print(f"SKIP: cannot compile the de_DE.UTF-8 locale: {r.stderr.strip()}")
    sys.exit(77)

failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


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


env = dict(os.environ, LOCPATH=locdir, LANG="de_DE.UTF-8", LC_ALL="de_DE.UTF-8", LANGUAGE="de",
           HEARTH_LOCALEDIR=po_dir)
proc = subprocess.Popen([binary], env=env)
try:
    app = wait_for(lambda: tree.root.application("hearth"), 30, "hearth on the accessibility bus")
    if app is None:
        sys.exit(1)
    main = wait_for(lambda: next(w for w in app.children if w.roleName == "frame"), 15, "the main window")
    labels = wait_for(lambda: [n.name for n in main.findChildren(lambda n: n.roleName == "label")
                               if n.name == "Noch kein Modell"] and
                      [n.name for n in main.findChildren(lambda n: n.roleName == "label")], 15,
                      "the German empty state")
    for want in ("Noch kein Modell", "Noch keine Unterhaltungen"):
        if labels and want not in labels:
            fail(f"label {want!r} missing; labels: {labels}")
    if not any(n.name == "Hauptmenü" for n in main.findChildren(lambda n: n.roleName == "push button")):
        fail("the main menu button is not called „Hauptmenü“")
    rawinput.keyCombo("<Control>comma")
    prefs = wait_for(lambda: next(w for w in app.children if w.name == "Einstellungen"), 15,
                     "the Preferences window titled „Einstellungen“")
    if prefs is not None:
        tabs = [n.name for n in prefs.findChildren(lambda n: n.roleName == "page tab")]
        for want in ("Allgemein", "Modelle", "Neue Chats"):
            if want not in tabs:
                fail(f"Preferences page {want!r} missing; pages: {tabs}")
        time.sleep(0.8)
        subprocess.run(["import", "-window", "root", os.path.join(out_dir, "german-preferences.png")], check=False)
finally:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(locdir, ignore_errors=True)

print(f"{len(failures)} problem(s)")
sys.exit(1 if failures else 0)
