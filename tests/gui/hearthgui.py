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

# dogtail's settings for every GUI test (those that need nothing else from here import it for them)
config.searchCutoffCount = 20
config.defaultDelay = 0.2
# dogtail waits 0.1 s after each key by default (15 s of the 41 s gui-attach took)
config.typingDelay = 0.02
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


def stories_model():
    """$HEARTH_ASSETS/models/stories260K/hf_f32, the tests' small real model; exits 77
    (meson's SKIP) when it is absent."""
    path = os.path.join(os.environ.get("HEARTH_ASSETS", ""), "models", "stories260K", "hf_f32")
    if not os.path.isfile(os.path.join(path, "config.json")):
        print(f"SKIP: {path} is absent")
        sys.exit(77)
    return path


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


def models_download(app, main, repo):
    """Main menu → Models…, type repo ("owner/name" or "owner/name/FILE.gguf")
    into the repository entry and press Download; returns the Models window
    (or exits when it does not open)."""
    from dogtail import rawinput
    open_menu_item(app, main, "Models…")
    win = toplevel(app, "Models")
    if win is None:
        raise SystemExit(1)
    entry = wait_for(lambda: win.findChild(lambda n: n.roleName == "text" and "Repository" in (n.name or ""),
                                           retry=False), 10, "the repository entry")
    entry.click()
    time.sleep(0.3)
    rawinput.typeText(repo)
    time.sleep(0.3)
    wait_for(lambda: win.findChild(lambda n: n.roleName == "push button" and n.name == "Download", retry=False),
             10, "the Download button").click()
    return win


def finish(ok_message):
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("OK:", ok_message)


def bad_button_names(root):
    """Buttons under root whose accessible name says a word twice over ("_Undo Undo",
    "Copy code Copy") or holds a mnemonic underscore, as failure messages."""
    import re
    bad = []
    for n in root.findChildren(lambda n: n.roleName in ("push button", "toggle button", "menu item")):
        name = n.name or ""
        words = [w.strip("_").lower() for w in name.split()]
        if re.search(r"(^|\s)_\w", name):
            bad.append(f"{n.roleName} {name!r} has a mnemonic underscore in its accessible name")
        elif len(words) >= 2 and (len(set(words)) < len(words)):
            bad.append(f"{n.roleName} {name!r} repeats a word in its accessible name")
    return bad


def labels(node):
    """The names of the labels under node, in tree order."""
    return [n.name for n in node.findChildren(lambda n: n.roleName == "label" and n.name)]


def add_conversation(db, title, model, messages):
    """Store a conversation straight into an existing database (one the app
    has created): title, model (NULL when None), [(role, content), ...]."""
    import sqlite3
    con = sqlite3.connect(db)
    try:
        now = int(time.time() * 1000000)
        cur = con.execute("INSERT INTO conversations (title, title_is_auto, created, updated, model) VALUES (?, 0, ?, ?, ?)",
                          (title, now, now, model))
        cid = cur.lastrowid
        for i, (role, content) in enumerate(messages):
            con.execute("INSERT INTO messages (conversation_id, position, role, content, created) VALUES (?, ?, ?, ?, ?)",
                        (cid, i, role, content, now + i))
        con.commit()
        return cid
    finally:
        con.close()


def read_keyfile(config_home):
    """The app's settings as the keyfile backend wrote them: {key: value text}."""
    path = os.path.join(config_home, "glib-2.0", "settings", "keyfile")
    keys = {}
    try:
        with open(path, encoding="utf-8") as f:
            section = None
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line.strip("[]")
                elif "=" in line and section == "io/github/hearthchat/Hearth":
                    k, v = line.split("=", 1)
                    keys[k.strip()] = v.strip()
    except FileNotFoundError:
        pass
    return keys


def db_messages(db):
    """The stored messages of the database at db, every conversation's in order: (role, state, content)."""
    import sqlite3
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT role, state, content FROM messages ORDER BY conversation_id, position").fetchall()
    finally:
        con.close()
