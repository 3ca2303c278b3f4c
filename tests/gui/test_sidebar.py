#!/usr/bin/python3
"""The sidebar (issue 21): each conversation row says when it was last
written to ("Today", "Yesterday", the weekday within a week, else the date);
a right-click, or the Menu key on the focused row, opens a context menu with
Rename…, Export as Markdown…, Export as JSON… and Delete for that row; and
Undo on the "Conversation deleted" toast brings the conversation back open,
selected, with its messages (in the window and in SQLite). Deleting from the
main menu (the open conversation) and from a row's menu (another one) are
both undone. No button's accessible name repeats itself ("_Undo Undo") or
holds a mnemonic underscore. Screenshots: sidebar-dates, sidebar-menu,
sidebar-undone.

Usage: test_sidebar.py HEARTH_BINARY   (run through run-gui-test.sh)"""
import datetime
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import (add_conversation, bad_button_names, fail, finish, labels, open_menu_item, shot,  # noqa: E402
                       start, stop, wait_for)
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db

proc, app = start([binary])
try:
    wait_for(lambda: os.path.exists(db), 20, "the database")
    time.sleep(0.5)
finally:
    stop(proc)

now = datetime.datetime.now()
midday = now.replace(hour=12, minute=0, second=0, microsecond=0)
days = {"Today": 0, "Yesterday": 1, "Week": 3, "Old": 40}
ids = {}
for title, ago in days.items():
    ids[title] = add_conversation(db, f"{title} chat", None,
                                  [("user", f"A question asked {title.lower()}"), ("assistant", f"The {title} answer.")])
con = sqlite3.connect(db)
for title, ago in days.items():
    when = now if ago == 0 else midday - datetime.timedelta(days=ago)
    con.execute("UPDATE conversations SET updated = ? WHERE id = ?", (int(when.timestamp() * 1e6), ids[title]))
con.commit()
con.close()
expect = {
    "Today": "Today",
    "Yesterday": "Yesterday",
    "Week": (midday - datetime.timedelta(days=3)).strftime("%A"),
    "Old": (midday - datetime.timedelta(days=40)).strftime("%-d %B") if (midday - datetime.timedelta(days=40)).year
    == now.year else (midday - datetime.timedelta(days=40)).strftime("%-d %B %Y"),
}


def deleted(cid):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT deleted_at IS NOT NULL FROM conversations WHERE id = ?", (cid,)).fetchone()[0]
    finally:
        con.close()


def message_count(cid):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (cid,)).fetchone()[0]
    finally:
        con.close()


def sidebar_rows(main):
    lst = main.child(name="Conversations", roleName="list")
    return lst.children


def row_selected(main, title):
    import pyatspi
    for item in sidebar_rows(main):
        if title in labels(item):
            return item.getState().contains(pyatspi.STATE_SELECTED)
    return False


def context_menu_items(app):
    """The items of the open context menu (the one with "Delete"; the main
    menu says "Delete Conversation")."""
    node = app.child(name="Delete", roleName="menu item", retry=False)
    for _ in range(6):
        node = node.parent
        names = [n.name for n in node.findChildren(lambda n: n.roleName == "menu item")]
        if "Rename…" in names:
            return names
    return None


def undo(app):
    button = wait_for(lambda: app.child(name="Undo", roleName="push button", retry=False), 10, "the Undo button")
    if button is None:
        names = [n.name for n in app.findChildren(lambda n: n.roleName == "push button")]
        fail(f"no push button named 'Undo'; buttons: {names}")
        return
    button.doActionNamed("click")


proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Today chat", roleName="label"), 30, "the conversations")
    time.sleep(0.5)
    # --- dates ---------------------------------------------------------------
    for title, want in expect.items():
        row = [item for item in sidebar_rows(main) if f"{title} chat" in labels(item)]
        got = labels(row[0]) if row else []
        if want not in got:
            fail(f"the row of {title!r} says {got}, not {want!r}")
    shot("sidebar-dates")

    # --- delete the open conversation from the main menu, then Undo ---------------
    main.child(name="Yesterday chat", roleName="label").click()
    wait_for(lambda: "A question asked yesterday" in labels(main), 10, "the conversation to open")
    open_menu_item(app, main, "Delete Conversation")
    wait_for(lambda: deleted(ids["Yesterday"]), 10, "the conversation to be trashed")
    if "A question asked yesterday" in labels(main):
        fail("the deleted conversation is still shown")
    for problem in bad_button_names(app):
        fail(problem)
    undo(app)
    if wait_for(lambda: "A question asked yesterday" in labels(main), 10, "Undo to reopen the conversation"):
        if deleted(ids["Yesterday"]) or message_count(ids["Yesterday"]) != 2:
            fail("after Undo the store does not have the conversation back with its 2 messages")
        if not wait_for(lambda: row_selected(main, "Yesterday chat"), 5, "the restored row to be selected"):
            pass
    shot("sidebar-undone")

    # --- the context menu of another row (right-click): Delete, then Undo ----------
    main.child(name="Week chat", roleName="label").click(button=3)
    items = wait_for(lambda: context_menu_items(app), 10, "the context menu")
    for want in ("Rename…", "Export as Markdown…", "Export as JSON…", "Delete"):
        if want not in (items or []):
            fail(f"the context menu has no {want!r}: {items}")
    shot("sidebar-menu")
    delete = wait_for(lambda: app.child(name="Delete", roleName="menu item", retry=False), 5, "Delete in the menu")
    if delete is not None:
        delete.doActionNamed("click")
        wait_for(lambda: deleted(ids["Week"]), 10, "the row's conversation to be trashed")
        if deleted(ids["Yesterday"]):
            fail("the row's Delete trashed the open conversation instead")
        undo(app)
        wait_for(lambda: "A question asked week" in labels(main), 10, "Undo to open the restored conversation")
        if deleted(ids["Week"]):
            fail("after Undo the row's conversation is still trashed")

    # --- the Menu key on the focused row: Rename… -------------------------------------
    main.child(name="Old chat", roleName="label").click()
    wait_for(lambda: "A question asked old" in labels(main), 10, "the old conversation to open")
    rawinput.pressKey("Menu")
    rename = wait_for(lambda: app.child(name="Rename…", roleName="menu item", retry=False), 10,
                      "the context menu from the Menu key")
    if rename is not None:
        rename.doActionNamed("click")
        dialog = wait_for(lambda: [w for w in app.children if w.name == "Rename Conversation"][0], 10,
                          "the rename dialog")
        if dialog is not None:
            for problem in bad_button_names(dialog):
                fail(problem)
            rawinput.keyCombo("<Control>a")
            rawinput.typeText("Renamed from the menu")
            rawinput.pressKey("Return")
            wait_for(lambda: main.child(name="Renamed from the menu", roleName="label", retry=False), 10,
                     "the new title in the sidebar")
    for problem in bad_button_names(app):
        fail(problem)
finally:
    stop(proc)
finish("the sidebar shows dates, has a context menu, and Undo reopens a deleted conversation")
