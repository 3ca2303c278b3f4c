#!/usr/bin/python3
"""Accessibility of the real windows, over AT-SPI.

Walks the accessible tree of the main window (with its primary menu open),
the Preferences window (every page), the keyboard shortcuts window and the
About window, and fails listing every push button, toggle button, text,
entry, combo box, check box, spin button or menu item that has no name. GTK
4.8 reports a nameless widget under its type name ("GtkToggleButton"), which
counts as no name. A button named twice over ("_Undo Undo", "Copy code
Copy": a mnemonic label and a name of its own) fails too. Then, with stories260K loaded (SKIPped part when the
asset is absent), the keyboard alone starts a chat: Ctrl+N puts the focus in
the composer, the message is typed and Enter sends it; the message rows
expose who wrote them (their name) and what was written (their description).
Screenshots of each window go to $HEARTH_GUI_OUT.

Usage: test_a11y.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import re
import subprocess
import sys
import time

import dogtail.utils
dogtail.utils.isA11yEnabled = lambda: True
from dogtail import rawinput, tree  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import bad_button_names  # noqa: E402


INTERACTIVE = {
    "push button", "toggle button", "text", "entry", "password text", "combo box", "check box",
    "radio button", "spin button", "menu item", "check menu item", "radio menu item", "switch",
}
TYPE_NAME = re.compile(r"^(Gtk|Adw|Hearth)[A-Za-z]+$")

binary = sys.argv[1]
out_dir = os.environ.get("HEARTH_GUI_OUT", "/tmp")
model = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K", "hf_f32")
have_model = os.path.isfile(os.path.join(model, "config.json"))
failures = []


def fail(msg):
    print("FAIL:", msg)
    failures.append(msg)


def wait_for(pred, timeout, what, quiet=False):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.25)
    if not quiet:
        fail(f"timed out waiting for {what}")
    return None


def shot(name):
    time.sleep(0.8)
    path = os.path.join(out_dir, name)
    subprocess.run(["import", "-window", "root", path], check=False)
    print(f"screenshot: {path}")


def path_of(node):
    """The node's ancestors, nearest first, for a readable failure."""
    parts = []
    n = node
    for _ in range(8):
        try:
            n = n.parent
        except Exception:
            break
        if n is None or n.roleName == "application":
            break
        parts.append(f"{n.roleName} {n.name!r}" if n.name else n.roleName)
    return " < ".join(parts)


def unnamed(root, where):
    """Interactive nodes under root without a name, as printable strings."""
    bad = []
    seen = 0

    def walk(node, depth):
        nonlocal seen
        if depth > 60:
            return
        try:
            role, name = node.roleName, (node.name or "").strip()
            kids = node.children
        except Exception:
            return
        if role in INTERACTIVE:
            seen += 1
            if not name or TYPE_NAME.match(name):
                bad.append(f"{where}: unnamed {role} ({name or 'no name'}) in {path_of(node)}")
        for k in kids:
            walk(k, depth + 1)

    walk(root, 0)
    print(f"{where}: {seen} interactive widgets checked, {len(bad)} without a name")
    return bad


def check(root, where):
    for b in unnamed(root, where):
        fail(b)
    # Named once: no "_Undo Undo" or "Copy code Copy" (issue 21).
    for b in bad_button_names(root):
        fail(f"{where}: {b}")


def windows(app):
    return [w for w in app.children if w.roleName in ("frame", "dialog", "window")]


def activate(node):
    """Click through AT-SPI's action interface: GTK 4.8 reports popover
    positions relative to the popover, so mouse clicks there miss."""
    node.doActionNamed("click")


def button(root, name):
    """The (live) clickable push button called name under root."""
    def find():
        for n in root.findChildren(lambda n: n.roleName == "push button" and n.name == name):
            if "click" in n.actions:
                return n
        return None
    return wait_for(find, 10, f"the {name!r} button")


def open_main_menu(app, main, item_name):
    activate(button(main, "Main menu"))
    return wait_for(lambda: app.child(name=item_name, roleName="menu item", retry=False), 10,
                    f"the {item_name!r} menu item")


def find_window(app, pred, what):
    return wait_for(lambda: next((w for w in windows(app) if pred(w)), None), 15, what)


args = [binary] + (["--model", model] if have_model else [])
proc = subprocess.Popen(args)
try:
    app = wait_for(lambda: tree.root.application("hearth"), 30, "hearth on the accessibility bus")
    if app is None:
        sys.exit(1)
    main = find_window(app, lambda w: "Hearth" in w.name, "the main window")
    if main is None:
        sys.exit(1)
    send = None
    if have_model:
        send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
        wait_for(lambda: send.sensitive, 60, "the model to load")
    time.sleep(0.5)
    check(main, "main window")
    shot("a11y-main.png")

    # --- keyboard only: Ctrl+N focuses the composer, Enter sends ----------------
    if have_model:
        rawinput.keyCombo("<Control>n")
        composer = main.child(name="Message", roleName="text")
        if not wait_for(lambda: composer.focused, 10, "the composer to have the keyboard focus after Ctrl+N"):
            pass
        rawinput.typeText("Once upon a time")
        rawinput.pressKey("Return")
        you = wait_for(lambda: main.child(name="You", recursive=True, retry=False), 20, "the sent message row")
        wait_for(lambda: main.child(name="Assistant", recursive=True, retry=False), 30, "the reply row")
        wait_for(lambda: main.child(name="Send", roleName="push button", retry=False).showing is not None
                 and main.child(name="Send", roleName="push button", retry=False).sensitive, 60,
                 "the reply to finish")
        if you is not None:
            if "Once upon a time" not in (you.description or ""):
                fail(f"the message row does not expose its text: description {you.description!r}")
        time.sleep(0.5)
        check(main, "main window with messages")
        shot("a11y-chat.png")
    else:
        print("note: stories260K is absent ($HEARTH_ASSETS); the keyboard chat part is skipped")

    # --- the primary menu ----------------------------------------------------------
    open_main_menu(app, main, "About Hearth")
    items = app.findChildren(lambda n: n.roleName == "menu item")
    print("menu items:", [i.name for i in items])
    check(app, "primary menu")
    shot("a11y-menu.png")
    rawinput.pressKey("Escape")
    time.sleep(0.5)

    # --- Preferences (Ctrl+,), every page ---------------------------------------------
    rawinput.keyCombo("<Control>comma")
    prefs = find_window(app, lambda w: w.name == "Preferences", "the Preferences window")
    if prefs is not None:
        time.sleep(1.5)  # the device list fills in from a thread
        check(prefs, "Preferences")
        shot("a11y-preferences-general.png")
        for page in ("Models", "New Chats"):
            try:
                activate(prefs.child(name=page, roleName="page tab"))
            except Exception as e:  # noqa: BLE001
                fail(f"no page switcher button {page!r}: {e}")
                continue
            time.sleep(1.0)
            check(prefs, f"Preferences, {page} page")
            shot("a11y-preferences-" + page.lower().replace(" ", "-") + ".png")
        rawinput.keyCombo("<Control>w")
        wait_for(lambda: not any(w.name == "Preferences" for w in windows(app)), 10, "Preferences to close")

    # --- keyboard shortcuts (Ctrl+?) ---------------------------------------------------
    item = open_main_menu(app, main, "Keyboard Shortcuts")
    if item is not None:
        activate(item)
    shortcuts = find_window(app, lambda w: w.name == "Shortcuts" or w.name.endswith("Shortcuts"),
                            "the keyboard shortcuts window")
    if shortcuts is not None:
        time.sleep(0.5)
        check(shortcuts, "Keyboard shortcuts")
        labels = [n.name for n in shortcuts.findChildren(lambda n: n.roleName == "label")]
        for want in ("New chat", "Preferences", "Send the message"):
            if want not in labels:
                fail(f"the shortcuts window does not list {want!r}")
        shot("a11y-shortcuts.png")
        rawinput.pressKey("Escape")
        wait_for(lambda: not any(w == shortcuts for w in windows(app)), 10, "the shortcuts window to close",
                 quiet=True)
    # Ctrl+? opens it too.
    time.sleep(0.5)
    rawinput.keyCombo("<Control><Shift>slash")
    again = wait_for(lambda: next((w for w in windows(app) if w.name.endswith("Shortcuts")), None), 10,
                     "Ctrl+? to open the shortcuts window")
    if again is not None:
        rawinput.pressKey("Escape")
        time.sleep(0.5)

    # --- About ------------------------------------------------------------------------
    about_item = open_main_menu(app, main, "About Hearth")
    if about_item is not None:
        activate(about_item)
    about = find_window(app, lambda w: w.name.startswith("About"), "the About window")
    if about is not None:
        time.sleep(1.0)
        check(about, "About")
        labels = [n.name for n in about.findChildren(lambda n: n.roleName == "label")]
        if not any(l == "0.1.0" or "0.1.0" in l for l in labels):
            fail(f"the About window does not show the version; labels: {labels[:20]}")
        shot("a11y-about.png")
        # The subpages (credits, legal, acknowledgements, troubleshooting) are
        # in the tree already, hidden: the walk above covered them.
        rawinput.pressKey("Escape")
finally:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()

print(f"{len(failures)} problem(s)")
sys.exit(1 if failures else 0)
