#!/usr/bin/python3
"""Search (issue 21): a result shows a short plain-text snippet (one or two
lines, no Markdown syntax: no "**", "##", "`", "[…](…)") with the match
highlighted (bold on a colour, read through the label's text attributes);
choosing it opens the conversation with the matching message at the top of
the view, not at the bottom, highlighted for a moment (the row is "selected"
over AT-SPI, then not); a query with no hits shows "No Results" instead of a
blank list. Screenshots: search-results, search-opened, search-none.

Usage: test_search.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import add_conversation, fail, finish, labels, shot, start, stop, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402
import pyatspi  # noqa: E402

binary = sys.argv[1]
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db

proc, app = start([binary])
try:
    wait_for(lambda: os.path.exists(db), 20, "the database")
    time.sleep(0.5)
finally:
    stop(proc)
# The match is the 4th of 20 messages: opened at the bottom, it would be far out of view.
messages = [("user", "What grows well in a small garden?"), ("assistant", "Herbs, lettuce and radishes.")]
messages += [("user", "And squash?"),
             ("assistant", "## Zucchini\n\n**Zucchini** need `six hours` of sun and [rich soil](https://example.org/soil)."
                           "\n\n- water often\n- pick them young")]
for i in range(8):
    messages += [("user", f"Question {i} about watering."), ("assistant", "Water in the morning. " * 30)]
add_conversation(db, "Garden notes", None, messages)
add_conversation(db, "Other chat", None, [("user", "hello"), ("assistant", "hi")])


def selected(node):
    return node.getState().contains(pyatspi.STATE_SELECTED)


def message_rows(main):
    """The message rows (named for their author, the text as description)."""
    lst = main.child(name="Messages", roleName="list")
    return lst, lst.findChildren(lambda n: n.name in ("You", "Assistant") and n.roleName != "label")


def inside(node, box):
    (x, y), (w, h) = node.position, node.size
    (bx, by), (bw, bh) = box.position, box.size
    return h > 0 and y >= by - 2 and y + h <= by + bh + 2 or (h > bh and y <= by and y + h >= by + bh)


proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Garden notes", roleName="label"), 30, "the conversations")
    rawinput.keyCombo("<Control>f")
    time.sleep(0.5)
    rawinput.typeText("zucchini")

    # --- the snippet: plain text, the match highlighted ---------------------------
    snippet = wait_for(lambda: main.findChild(lambda n: n.roleName == "label" and "ucchini" in (n.name or "")
                                              and n.name != "Garden notes", retry=False, requireResult=False),
                       10, "a result with a snippet")
    if snippet is not None:
        text = snippet.name
        print("snippet:", repr(text))
        for syntax in ("**", "##", "`", "](", "https://", "\n"):
            if syntax in text:
                fail(f"the snippet shows {syntax!r}: {text!r}")
        if "six hours" not in text or "rich soil" not in text:
            fail(f"the snippet lost the words around the syntax: {text!r}")
        at = text.lower().find("zucchini")
        attrs, start_off, end_off = snippet.queryText().getAttributeRun(at + 1, False)
        print("attributes of the match:", attrs, start_off, end_off)
        if not any(a.startswith("weight:") and int(a.split(":")[1]) >= 600 for a in attrs) or \
                not any(a.startswith("bg-color:") for a in attrs):
            fail(f"the match is not highlighted (bold on a colour): {attrs}")
        plain, _, _ = snippet.queryText().getAttributeRun(text.find("six hours"), False)
        if any(a.startswith("bg-color:") for a in plain):
            fail(f"text around the match is highlighted too: {plain}")
    shot("search-results")

    # --- the result opens at the match, highlighted for a moment -------------------
    result = wait_for(lambda: main.child(name="Garden notes", roleName="label"), 10, "the result")
    result.click()
    lst, rows = None, []

    # The highlight lasts 2.5 s: every look at the row notes whether it is
    # highlighted (a sanitized build under load can spend that long in one
    # walk of the rows, so a single look after the row appears may miss it).
    seen_selected = []

    def match_row():
        global lst, rows
        lst, rows = message_rows(main)
        for r in rows:
            if "Zucchini" in (r.description or ""):
                if selected(r):
                    seen_selected.append(True)
                return r
        return None
    row = wait_for(match_row, 15, "the matching message in the view")
    if row is not None:
        wait_for(lambda: seen_selected or (match_row() and seen_selected), 3,
                 "the matching message highlighted (selected) when opened")
        time.sleep(0.5)
        lst, rows = message_rows(main)
        row = match_row()
        if not inside(row, lst):
            fail(f"the matching message is not in view: {row.position}{row.size} in {lst.position}{lst.size}")
        elif row.position[1] > lst.position[1] + lst.size[1] / 3:
            # (Opened at its end, the 4th of 20 messages would be far above the view.)
            fail(f"the matching message is not near the top of the view: {row.position} in {lst.position}")
        shot("search-opened")
        wait_for(lambda: not selected(match_row()), 8, "the highlight to end")

    # --- no hits: "No Results", not a blank list ----------------------------------------
    rawinput.keyCombo("<Control>f")
    time.sleep(0.3)
    rawinput.keyCombo("<Control>a")
    rawinput.typeText("qwertyuiop")
    if wait_for(lambda: "No Results" in labels(main), 10, "“No Results”") is None:
        print(labels(main))
    elif not any("qwertyuiop" in t for t in labels(main)):
        fail("the No Results page does not say what was searched for")
    shot("search-none")
finally:
    stop(proc)
finish("search shows plain snippets with the match highlighted, opens at the match, and says No Results")
