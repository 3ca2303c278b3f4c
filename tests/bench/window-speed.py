#!/usr/bin/python3
"""The speed the window reports for a reply, to set beside `hearth-cli bench` (issue 22).

Run through the GUI runner (private D-Bus, Xvfb, AT-SPI):
    tests/gui/run-gui-test.sh tests/bench/window-speed.py BUILD/app/hearth OUT_DIR MODEL_DIR [PROMPT]

Starts the real window on MODEL_DIR with the default settings (the app's sampling defaults,
automatic CPU threads), sends PROMPT, waits for the reply to finish, and prints the reply's
generated tokens and tokens/s as the window stores them (the figure its status line and the
reply's note show) and the status line's text. A benchmark, not a test: it asserts nothing.
"""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gui"))
from hearthgui import start, stop, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary, model = sys.argv[1], sys.argv[2]
prompt = sys.argv[3] if len(sys.argv) > 3 else "Tell me a long story about a dragon who learns to bake bread."
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-speed.db")
os.environ["HEARTH_DB"] = db


def done_rows():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT gen_tokens, tokens_per_s FROM messages WHERE role = 'assistant' AND "
                           "state = 'complete' AND tokens_per_s IS NOT NULL").fetchall()
    finally:
        con.close()


proc, app = start([binary, "--model", model])
try:
    frame = app.child(roleName="frame")
    composer = wait_for(lambda: frame.child(name="Message", roleName="text"), 30, "the composer")
    send = wait_for(lambda: frame.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 120, "the model to load")
    composer.click()
    time.sleep(0.3)
    rawinput.typeText(prompt)
    time.sleep(0.3)
    rawinput.pressKey("Return")
    rows = wait_for(done_rows, 300, "the reply to finish")
    time.sleep(1.0)
    status = [n.name for n in frame.findChildren(lambda n: n.roleName == "label" and "tokens/s" in (n.name or ""))]
    if rows:
        print(f"window: {rows[-1][0]} tokens generated at {rows[-1][1]:.2f} tokens/s")
    else:
        print("window: no finished reply")
    for s in status:
        print(f"label: {s}")
    # CPU time per thread of the app since it started (the main loop's share
    # is what the window costs the engine on a 2-core machine).
    hz = os.sysconf("SC_CLK_TCK")
    for tid in sorted(os.listdir(f"/proc/{proc.pid}/task"), key=int):
        with open(f"/proc/{proc.pid}/task/{tid}/stat") as f:
            st = f.read()
        name = st[st.index("(") + 1:st.rindex(")")]
        fields = st[st.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / hz
        if cpu >= 0.1:
            print(f"thread {name}: {cpu:.1f} s CPU")
    # The X server renders too (Xvfb draws in software, on the same cores).
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            name = st[st.index("(") + 1:st.rindex(")")]
            if name in ("Xvfb", "at-spi2-registr", "at-spi-bus-laun", "dbus-daemon"):
                fields = st[st.rindex(")") + 2:].split()
                print(f"process {name}: {(int(fields[11]) + int(fields[12])) / hz:.1f} s CPU")
finally:
    stop(proc)
