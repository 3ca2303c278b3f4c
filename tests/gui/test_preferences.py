#!/usr/bin/python3
"""Preferences are GSettings (io.github.hearthchat.Hearth, keyfile backend in
the test's private $XDG_CONFIG_HOME), driven through the real windows:

1. A default from the settings file (temperature 1.25) shows in the chat
   settings of a new chat, and the window opens at the saved size.
2. Changing the default temperature in Preferences writes the key and
   updates the new chat's settings at once.
3. "Delete All Conversations" asks first, then empties the store and the
   sidebar.
4. With "Keep Conversations" off, closing the window (Ctrl+W) deletes the
   conversations, and the window size is saved on close.
5. The saved size is restored, backend "cpu" with context length 256
   reach the engine (the status line says "/ 256 tokens"), and style "dark"
   darkens the window (AdwStyleManager).

Needs stories260K ($HEARTH_ASSETS) to chat; SKIPs (77) without it.
Usage: test_preferences.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import configparser
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
out_dir = os.environ.get("HEARTH_GUI_OUT", "/tmp")
model = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K", "hf_f32")
if not os.path.isfile(os.path.join(model, "config.json")):
    print(f"SKIP: {model} is absent")
    sys.exit(77)
if os.environ.get("GSETTINGS_BACKEND") != "keyfile":
    print("SKIP: needs GSETTINGS_BACKEND=keyfile (run through run-gui-test.sh)")
    sys.exit(77)
keyfile = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings", "keyfile")
GROUP = "io/github/hearthchat/Hearth"
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-prefs-test.db")
os.environ["HEARTH_DB"] = db
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


def read_keys():
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read(keyfile)
    return dict(cp[GROUP]) if cp.has_section(GROUP) else {}


def write_keys(keys):
    os.makedirs(os.path.dirname(keyfile), exist_ok=True)
    with open(keyfile, "w") as f:
        f.write(f"[{GROUP}]\n")
        for k, v in keys.items():
            f.write(f"{k}={v}\n")


def conversations():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM conversations").fetchone()[0]
    finally:
        con.close()


def replies():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM messages WHERE role = 'assistant' AND state != 'partial'").fetchone()[0]
    finally:
        con.close()


def activate(node):
    node.doActionNamed("click")


def button(root, name, contains=False):
    def find():
        for n in root.findChildren(lambda n: n.roleName == "push button" and
                                   (name in n.name if contains else n.name == name)):
            if "click" in n.actions:
                return n
        return None
    return wait_for(find, 10, f"the {name!r} button")


def windows(app):
    return [w for w in app.children if w.roleName in ("frame", "dialog", "window")]


def start():
    proc = subprocess.Popen([binary, "--model", model])
    app = wait_for(lambda: tree.root.application("hearth"), 30, "hearth on the accessibility bus")
    if app is None:
        proc.kill()
        sys.exit(1)
    main = wait_for(lambda: next(w for w in windows(app) if "Hearth" in w.name), 15, "the main window")
    send = wait_for(lambda: main.child(name="Send", roleName="push button", retry=False), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the model to load")
    return proc, app, main


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def popover_value(app, main, name):
    """The value of a spin button in the chat settings popover."""
    activate(button(main, "Chat settings"))
    spin = wait_for(lambda: app.child(name=name, roleName="spin button", retry=False), 10,
                    f"the {name!r} spin button in Chat Settings")
    v = spin.value if spin is not None else None
    rawinput.pressKey("Escape")
    time.sleep(0.3)
    return v


def chat(main, text):
    before = replies()
    rawinput.keyCombo("<Control>n")
    time.sleep(0.5)
    rawinput.typeText(text)
    rawinput.pressKey("Return")
    wait_for(lambda: replies() > before, 60, f"the reply to {text!r}")
    wait_for(lambda: main.child(name="Send", roleName="push button", retry=False).sensitive, 30,
             "Send to be enabled again")


def open_preferences(app):
    rawinput.keyCombo("<Control>comma")
    return wait_for(lambda: next(w for w in windows(app) if w.name == "Preferences"), 15, "Preferences")


# --- first run --------------------------------------------------------------------
write_keys({"temperature": "1.25"})
proc, app, main = start()
try:
    # AT-SPI reports the size without the client-side decorations' margin,
    # so sizes are compared between runs: 1000x700 now, 900x640 next time.
    w1, h1 = main.size
    print(f"window size {w1}x{h1} (default size 1000x700)")
    if not (900 < w1 <= 1000 and 600 < h1 <= 700):
        fail(f"the window opened at {w1}x{h1}, not about the default 1000x700")

    v = popover_value(app, main, "Temperature")
    if v is None or abs(v - 1.25) > 1e-6:
        fail(f"a new chat's temperature is {v}, not the default 1.25 from the settings")

    # Think Before Answering: on by default; off in the popover, off in the settings (every chat)
    activate(button(main, "Chat settings"))
    think = wait_for(lambda: app.findChild(lambda n: n.name == "Think before answering" and
                                           n.roleName in ("switch", "toggle button", "check box"), retry=False),
                     10, "the Think before answering switch in Chat Settings")
    if think is not None:
        think.doActionNamed("toggle" if "toggle" in think.actions else "click")   # (a check box with "toggle")
        wait_for(lambda: read_keys().get("thinking") == "false", 10, "thinking=false in the settings file")
    rawinput.pressKey("Escape")
    time.sleep(0.3)

    chat(main, "Once upon a time")
    if conversations() != 1:
        fail(f"{conversations()} conversations after one chat")

    prefs = open_preferences(app)
    if prefs is not None:
        # New Chats page: type a new default temperature.
        activate(prefs.child(name="New Chats", roleName="page tab"))
        time.sleep(0.8)
        spin = prefs.child(name="Temperature", roleName="spin button")
        spin.click()
        time.sleep(0.3)
        rawinput.keyCombo("<Control>a")
        rawinput.typeText("0.4")
        rawinput.pressKey("Tab")
        got = wait_for(lambda: read_keys().get("temperature") == "0.40000000000000002" or
                       abs(float(read_keys().get("temperature", "nan")) - 0.4) < 1e-9, 10,
                       "temperature=0.4 in the settings file")
        if not got:
            print("keyfile:", read_keys())
        subprocess.run(["import", "-window", "root", os.path.join(out_dir, "prefs-new-chats.png")], check=False)

        # General page: Delete All Conversations, confirmed.
        activate(prefs.child(name="General", roleName="page tab"))
        time.sleep(0.8)
        activate(button(prefs, "Delete all conversations", contains=True))
        dialog = wait_for(lambda: next(w for w in windows(app) if w.name not in ("Hearth", "Preferences")), 10,
                          "the confirmation dialog")
        if dialog is not None:
            labels = [n.name for n in dialog.findChildren(lambda n: n.roleName == "label")]
            if "Delete All Conversations?" not in labels:
                fail(f"the confirmation does not ask; labels: {labels}")
            subprocess.run(["import", "-window", "root", os.path.join(out_dir, "prefs-delete-all.png")], check=False)
            if conversations() != 1:
                fail("conversations were deleted before the confirmation")
            activate(button(dialog, "Delete All", contains=True))
            wait_for(lambda: conversations() == 0, 10, "the store to be empty after Delete All")
            wait_for(lambda: main.child(name="No Conversations Yet", roleName="label", retry=False), 10,
                     "the sidebar's empty state")

        # Keep Conversations off.
        keep = prefs.child(name="Keep Conversations", roleName="check box")
        activate(keep) if "click" in keep.actions else keep.click()
        wait_for(lambda: read_keys().get("keep-conversations") == "false", 10,
                 "keep-conversations=false in the settings file")
        rawinput.keyCombo("<Control>w")
        wait_for(lambda: not any(w.name == "Preferences" for w in windows(app)), 10, "Preferences to close")

    v = popover_value(app, main, "Temperature")
    if v is None or abs(v - 0.4) > 1e-6:
        fail(f"after changing the default, a new chat's temperature is {v}, not 0.4")

    chat(main, "The dragon")
    if conversations() != 1:
        fail(f"{conversations()} conversations after a chat with Keep Conversations off (want 1 until closing)")
    # Close the window with the keyboard: the app quits, saving its size.
    rawinput.keyCombo("<Control>w")
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        fail("Ctrl+W did not close the window and quit")
finally:
    stop(proc)

keys = read_keys()
print("settings after closing:", keys)
if keys.get("window-width") != "1000" or keys.get("window-height") != "700":
    fail(f"the window size was not saved on close: {keys}")
if keys.get("window-maximized") != "false":
    fail(f"window-maximized not saved: {keys}")
if conversations() != 0:
    fail(f"{conversations()} conversations kept after closing with Keep Conversations off")

# --- second run: the saved size is restored; engine settings reach the engine -----
keys.update({"window-width": "900", "window-height": "640", "keep-conversations": "true",
             "backend": "'cpu'", "context-length": "256", "color-scheme": "'dark'"})
write_keys(keys)
time.sleep(0.5)
proc, app, main = start()
try:
    w, h = main.size
    print(f"window size {w}x{h} (saved size 900x640)")
    if (w1 - w, h1 - h) != (100, 60):
        fail(f"the window opened at {w}x{h}; with the saved 900x640 it should be 100x60 smaller than {w1}x{h1}")
    status = wait_for(lambda: next(n.name for n in main.findChildren(lambda n: n.roleName == "label")
                                   if n.name.startswith("Context ")), 10, "the context status line")
    if status and "/ 256 tokens" not in status:
        fail(f"with context-length=256 the status says {status!r}")
    shot = os.path.join(out_dir, "prefs-restored-size-dark.png")
    time.sleep(1.0)
    subprocess.run(["import", "-window", "root", shot], check=False)
    # Style "dark" (AdwStyleManager): the chat area's background is dark.
    px = subprocess.run(["convert", shot, "-format", "%[fx:int(255*p{600,500}.luminance)]", "info:"],
                        capture_output=True, text=True)
    if px.returncode == 0 and px.stdout.strip().isdigit():
        print(f"background luminance at (600,500): {px.stdout.strip()}")
        if int(px.stdout.strip()) > 100:
            fail(f"color-scheme 'dark' did not make the window dark (luminance {px.stdout.strip()})")
    else:
        print(f"note: could not read a pixel of {shot}: {px.stderr.strip()}")
finally:
    stop(proc)

print(f"{len(failures)} problem(s)")
sys.exit(1 if failures else 0)
