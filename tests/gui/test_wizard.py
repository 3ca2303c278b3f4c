#!/usr/bin/python3
"""The quantization wizard end to end in the real window: stories260K (FP32)
is installed in the models folder; Main menu → Quantize a Model… → pick it →
Next → Advanced: 8 samples × 128 tokens → Quantize → wait for the result page
→ Start Chatting → the main window loads the 4-bit model → chat with it.
Before that, a tiny Gemma 3 (the hf-tiny fixture) picked as the source gets
AWQ too (the search runs Gemma's block since the twenty-fourth session; it
got round to nearest before); back to stories260K.
Checks the checkpoint on disk (quantization_config, no leftovers in .partial or .work),
that the result page explains the size from what was written ("N× smaller",
and what stays in 16-bit when it is far from 4×), that Start Chatting opens a
new conversation with the new model (the conversation open before, written
by the FP32 model, is left as it was), and saves a screenshot of every page.

Usage: test_wizard.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import json
import os
import shutil
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import add_conversation, db_messages, fail, finish, labels, open_menu_item, shot, start, stop, \
    stories_model, toplevel, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
src = stories_model()
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")
os.makedirs(models, exist_ok=True)
shutil.copytree(src, os.path.join(models, "stories260K"))
# a Gemma 3 (its own tokenizer is not needed to be offered: any tokenizer.json)
gemma = os.path.join(models, "zz-gemma3-tiny")
shutil.copytree(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf-tiny", "gemma3", "bf16"),
                gemma, ignore=shutil.ignore_patterns("logits.safetensors"))
shutil.copy(os.path.join(src, "tokenizer.json"), gemma)
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db


def db_rows():
    return db_messages(db)


def conversations():
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT c.id, c.model, count(m.id) FROM conversations c"
                           " LEFT JOIN messages m ON m.conversation_id = c.id GROUP BY c.id ORDER BY c.id").fetchall()
    finally:
        con.close()


# A conversation the FP32 model wrote, open when the wizard starts.
proc, app = start([binary])
try:
    wait_for(lambda: os.path.exists(db), 20, "the database")
    time.sleep(0.5)
finally:
    stop(proc)
fp32 = os.path.join(models, "stories260K")
earlier = add_conversation(db, "Earlier chat", fp32, [("user", "Earlier question"), ("assistant", "Earlier answer")])

proc, app = start([binary])
try:
    main = app.child(roleName="frame")
    wait_for(lambda: main.child(name="Earlier chat", roleName="label"), 30, "the earlier conversation").click()
    wait_for(lambda: "Earlier question" in labels(main), 10, "the earlier conversation to open")
    open_menu_item(app, main, "Quantize a Model…")
    wiz = toplevel(app, "Quantize a Model")
    if wiz is None:
        print("toplevels:", [(w.roleName, w.name) for w in app.children])
        raise SystemExit(1)
    gradio = wait_for(lambda: wiz.findChild(lambda n: n.roleName in ("check box", "radio button")
                                            and "zz-gemma3-tiny" in n.name), 20, "the installed Gemma 3")
    gradio.click()
    nxt = wiz.child(name="Next", roleName="push button")
    wait_for(lambda: nxt.sensitive, 10, "Next to become enabled for the Gemma 3")
    nxt.click()
    time.sleep(1.0)
    note = wait_for(lambda: wiz.findChild(lambda n: n.roleName == "label" and "AWQ protects" in (n.name or ""),
                                          retry=False, requireResult=False), 10, "the Method row's subtitle")
    print("Gemma 3 source:", note.name if note else None)
    if not note:
        fail(f"the Method row does not offer AWQ for the Gemma 3: {labels(wiz)}")
    shot("wizard-gemma3-options")
    wiz.child(name="Back", roleName="push button").click()
    time.sleep(1.0)
    radio = wait_for(lambda: wiz.findChild(lambda n: n.roleName in ("check box", "radio button")
                                           and "stories260K" in n.name), 20, "the installed model")
    if radio is None:
        print([(n.roleName, n.name) for n in wiz.findChildren(lambda n: True)])
        raise SystemExit(1)
    radio.click()
    nxt = wiz.child(name="Next", roleName="push button")
    wait_for(lambda: nxt.sensitive, 10, "Next to become enabled")
    shot("wizard-1-source")
    nxt.click()
    time.sleep(1.0)  # the stack's slide transition
    if not wiz.findChild(lambda n: n.roleName == "label" and "AWQ protects" in (n.name or ""), retry=False,
                         requireResult=False):
        fail(f"the Method row's own subtitle did not come back: {labels(wiz)}")
    wiz.child(name="Advanced").click()
    # HEARTH_WIZARD_SAMPLES (e.g. 128) makes the run long enough to see its page
    samples = os.environ.get("HEARTH_WIZARD_SAMPLES", "8")
    # the default calibration follows the device the search runs on: 32 windows
    # without a GPU (this test machine), 128 with one, and the row says which
    sspin = wait_for(lambda: wiz.child(name="Samples", roleName="spin button"), 10, "the Samples field")
    no_gpu = wiz.findChild(lambda n: n.roleName == "label" and "default 32 without a GPU" in (n.name or ""),
                           retry=False, requireResult=False)
    want = 32 if no_gpu else 128
    print(f"Samples default {sspin.value} (no-GPU hint shown: {bool(no_gpu)})")
    if int(sspin.value) != want:
        fail(f"the Samples default is {sspin.value}, expected {want} (no-GPU hint shown: {bool(no_gpu)})")
    for name, value in (("Samples", samples), ("Sequence Length", "128")):
        spin = wait_for(lambda: wiz.child(name=name, roleName="spin button"), 10, f"the {name} field")
        spin.click()
        rawinput.keyCombo("<Control>a")
        rawinput.typeText(value)
        rawinput.pressKey("Tab")
    shot("wizard-2-options")
    wiz.child(name="Quantize", roleName="push button").click()
    # the run page (stories260K with 8 x 128 tokens may finish within a second)
    time.sleep(float(os.environ.get("HEARTH_WIZARD_RUN_WAIT", "0")))
    shot("wizard-3-run")
    # the result page's labels are filled in when the run and the check end
    wait_for(lambda: wiz.findChild(lambda n: n.roleName == "label" and n.name.startswith("Size:"),
                                   retry=False), 240, "the result page")
    names = [n.name for n in wiz.findChildren(lambda n: n.roleName == "label" and n.name)]
    size = next((n for n in names if n.startswith("Size:")), None)
    if size is None:
        fail(f"no size line on the result page: {names}")
    else:
        print("size line:", size)
        if "four times" in size or "× smaller" not in size:
            fail(f"the size line does not say how much smaller the model became: {size!r}")
        ratio = float(size.split("× smaller")[0].split()[-1])
        if ratio < 3.5 and "16-bit" not in size:
            fail(f"{ratio}× smaller, and the size line does not say what stayed in 16-bit: {size!r}")
    if not any(n.startswith("Perplexity") for n in names):
        fail(f"no perplexity line on the result page: {names}")
    shot("wizard-4-done")

    out = [d for d in os.listdir(models) if d not in ("stories260K", "zz-gemma3-tiny") and not d.startswith(".")]
    if len(out) != 1:
        fail(f"expected one new model folder, found {out}")
    else:
        with open(os.path.join(models, out[0], "config.json")) as f:
            q = json.load(f).get("quantization_config", {})
        # hidden width 64: the wizard proposes the largest group size dividing it
        if q.get("quant_method") != "awq" or q.get("bits") != 4 or q.get("group_size") != 64:
            fail(f"unexpected quantization_config {q}")
    for hidden in (".partial", ".work"):
        partial = os.path.join(models, hidden)
        if os.path.isdir(partial) and os.listdir(partial):
            fail(f"leftovers in {partial}: {os.listdir(partial)}")

    wiz.child(name="Start Chatting", roleName="push button").click()
    composer = wait_for(lambda: main.child(name="Message", roleName="text"), 30, "the composer")
    send = wait_for(lambda: main.child(name="Send", roleName="push button"), 30, "the Send button")
    wait_for(lambda: send.sensitive, 60, "the 4-bit model to load")
    composer.click()
    time.sleep(0.3)
    rawinput.typeText("Once upon a time")
    time.sleep(0.3)
    rawinput.pressKey("Return")
    rows = wait_for(lambda: [r for r in db_rows() if r[0] == "assistant" and r[1] == "complete"
                             and r[2] != "Earlier answer"], 120, "a complete reply from the 4-bit model")
    if rows and not rows[-1][2].strip():
        fail("the 4-bit model's reply is empty")
    convs = conversations()
    print("conversations:", convs)
    if len(convs) != 2 or convs[0] != (earlier, fp32, 2):
        fail(f"Start Chatting did not start a new conversation (the earlier one changed): {convs}")
    elif not convs[1][1] or not convs[1][1].startswith(os.path.join(models, out[0] if len(out) == 1 else "")):
        fail(f"the new conversation is not the new model's: {convs[1]}")
    if "Earlier question" in labels(main):
        fail("the earlier conversation is still shown after Start Chatting")
    shot("wizard-5-chat")
finally:
    stop(proc)

finish("quantization wizard end to end")
