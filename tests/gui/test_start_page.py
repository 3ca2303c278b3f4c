#!/usr/bin/python3
"""The start page of a new chat: example messages a click puts into the composer (not sent: the user may
change it first), and, for a model as small as the starter one, a word that its answers are often wrong
with a button to the Models window and its recommended models. stories260K (260K parameters) is small:
the note names it. A suggestion's text goes into the composer, Enter sends it, and the stored message is
that text.

Usage: test_start_page.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import db_messages, fail, finish, labels, shot, start, stop, stories_model, toplevel, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
model = stories_model()
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db
SUGGESTIONS = ["Explain how a rainbow forms", "Write a palindrome check in Python", "Name a small bakery",
               "Summarize a text"]
RAINBOW = "Explain how a rainbow forms, in a few sentences."

proc, app = start([binary, "--model", model])
try:
    main = app.child(roleName="frame")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the model to load")
    buttons = {b.name: b for b in main.findChildren(lambda n: n.roleName == "push button" and n.name in SUGGESTIONS)}
    if sorted(buttons) != sorted(SUGGESTIONS):
        fail(f"the suggestions shown are {sorted(buttons)}, not {sorted(SUGGESTIONS)}")
    note = wait_for(lambda: [t for t in labels(main) if "small model" in t], 10, "the note on a small model")
    if note and "stories260K" not in note[0]:
        fail(f"the note does not name the model: {note}")
    shot("start-page")

    # A suggestion fills the composer; nothing is sent until Enter.
    buttons[SUGGESTIONS[0]].click()
    composer = main.child(name="Message", roleName="text")
    wait_for(lambda: composer.text == RAINBOW, 5, "the suggestion in the composer")
    time.sleep(0.5)
    if db_messages(db) if os.path.exists(db) else []:
        fail(f"a click on a suggestion sent it: {db_messages(db)}")
    shot("start-page-suggestion")
    rawinput.pressKey("Return")
    wait_for(lambda: [r for r in db_messages(db) if r[0] == "assistant" and r[1] == "complete"], 60, "the reply")
    users = [r[2] for r in db_messages(db) if r[0] == "user"]
    if users != [RAINBOW]:
        fail(f"the message sent was not the suggestion's: {users}")

    # A new chat shows the page again; its button opens the Models window.
    rawinput.keyCombo("<Control>n")
    larger = wait_for(lambda: main.child(name="Get a Larger Model…", roleName="push button"), 10,
                      "the button to a larger model")
    larger.click()
    toplevel(app, "Models")
    shot("start-page-models")
finally:
    stop(proc)

finish("start page")
