#!/usr/bin/python3
"""A reasoning model's reply (Qwen3, DeepSeek-R1's distills): its <think>…</think> block is not shown as
text but folded into a "Reasoning" expander above the answer, which opens on a click; R1's form, where the
chat template opened the block and the reply holds only its end, folds the same way; the Copy button copies
the answer alone. A stored reply whose thinking never ended says "Reasoning (unfinished)" (one being written:
"Thinking…"). Screenshots: thinking-folded, thinking-open.

Usage: test_thinking.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import add_conversation, fail, finish, labels, shot, start, stop, wait_for  # noqa: E402

binary = sys.argv[1]
db = os.path.join(os.environ["XDG_DATA_HOME"], "conversations", "hearth-test.db")
os.makedirs(os.path.dirname(db))
os.environ["HEARTH_DB"] = db

CLIPBOARD = """
import gi
gi.require_version("Gdk", "4.0")
gi.require_version("Gtk", "4.0")
from gi.repository import Gdk, GLib, Gtk
Gtk.init()
loop = GLib.MainLoop()
def done(cb, res):
    print(cb.read_text_finish(res) or "", end="")
    loop.quit()
Gdk.Display.get_default().get_clipboard().read_text_async(None, done)
GLib.timeout_add(5000, loop.quit)
loop.run()
"""


def clipboard_text():
    """The clipboard's text, read by another GTK process on the same display."""
    import subprocess
    return subprocess.run([sys.executable, "-c", CLIPBOARD], capture_output=True, text=True, timeout=20).stdout


proc, app = start([binary])
try:
    wait_for(lambda: os.path.exists(db), 20, "the database")
    time.sleep(0.5)
finally:
    stop(proc)
THOUGHT = "The user asks for 17 times 3. 17 times 3 is 51."
add_conversation(db, "Arithmetic", None, [
    ("user", "What is 17 times 3?"),
    ("assistant", f"<think>\n{THOUGHT}\n</think>\n\n**51.**"),
    ("user", "And 6 times 7?"),
    ("assistant", "Six sevens make forty-two.\n</think>\n\nIt is **42**."),
    ("user", "And 9 times 9?"),
    ("assistant", "<think>\nNine nines"),
])

proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Arithmetic", roleName="label"), 30, "the conversation").click()
    wait_for(lambda: "51." in labels(main), 20, "the first answer")
    text = labels(main)
    if any("<think>" in t or "</think>" in t for t in text):
        fail(f"a think tag is shown as text: {text}")

    def shown(name):
        """Labels named so that have a size (a folded revealer's are still on the bus, sized 0)."""
        return [n for n in main.findChildren(lambda n: n.roleName == "label" and n.name == name) if n.size[1] > 0]

    if shown(THOUGHT):
        fail("the reasoning is shown before its toggle is pressed")
    # (a GtkToggleButton is a push button on the bus in GTK 4.8)
    toggles = wait_for(lambda: [n for n in main.findChildren(lambda n: n.roleName in ("push button", "toggle button")
                                                              and n.name.startswith(("Reasoning", "Thinking…")))], 10,
                       "the reasoning toggles")
    names = [n.name for n in toggles or []]
    if names != ["Reasoning", "Reasoning", "Reasoning (unfinished)"]:
        fail(f"the toggles are {names}, not two of Reasoning and one unfinished")
    if "It is " not in " ".join(text) or shown("Six sevens make forty-two."):
        fail(f"R1's form (the block's end alone) is not folded: {text}")
    shot("thinking-folded")
    toggles[0].click()
    wait_for(lambda: shown(THOUGHT), 10, "the reasoning once its toggle is pressed")
    if shown("Six sevens make forty-two."):
        fail("another reply's reasoning opened too")
    shot("thinking-open")

    # Copy copies the answer alone
    copy = main.findChildren(lambda n: n.roleName == "push button" and n.name == "Copy message")
    if len(copy) < 2:
        fail(f"{len(copy)} Copy buttons")
    else:
        copy[1].doActionNamed("click")
        time.sleep(0.5)
        got = clipboard_text()
        if got != "**51.**":
            fail(f"Copy gave {got!r}, not the answer alone")
finally:
    stop(proc)
finish("a reasoning model's thinking folded above its answer")
