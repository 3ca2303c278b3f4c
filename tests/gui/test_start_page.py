#!/usr/bin/python3
"""The start page of a new chat: example messages a click puts into the composer (not sent: the user may
change it first), and, for a model as small as the starter one, a word that its answers are often wrong
with a button to the Models window and its recommended models. stories260K (260K parameters) is small:
the note names it. A suggestion's text goes into the composer, Enter sends it, and the stored message is
that text. A larger model another app downloaded (here a 410 M-parameter one in the Hugging Face cache,
its weights a sparse file) is offered by name in the note; its button adds it as links and opens it. The
model's generation_config.json recommends temperature 0.3 and top-p 0.8: a new chat starts with them.

Usage: test_start_page.py HEARTH_BINARY   (run through run-gui-test.sh)
SKIPs (77) when $HEARTH_ASSETS/models/stories260K is absent."""
import json
import os
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hearthgui import db_messages, fail, finish, labels, shot, start, stop, stories_model, toplevel, wait_for  # noqa: E402
from dogtail import rawinput  # noqa: E402

binary = sys.argv[1]
# stories260K with a generation_config.json that recommends its sampling, as a model's makers do: a new chat
# starts with it, the user having set no default of their own
model = os.path.join(tempfile.mkdtemp(prefix="hearth-start-model-"), "stories260K")
os.makedirs(model)
for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
    os.symlink(os.path.join(stories_model(), f), os.path.join(model, f))
with open(os.path.join(model, "generation_config.json"), "w") as f:
    json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": True, "temperature": 0.3, "top_p": 0.8,
               "top_k": 20}, f)
db = os.path.join(os.environ["XDG_DATA_HOME"], "hearth-test.db")
os.environ["HEARTH_DB"] = db
SUGGESTIONS = ["Explain how a rainbow forms", "Write a palindrome check in Python", "Name a small bakery",
               "Summarize a text"]
RAINBOW = "Explain how a rainbow forms, in a few sentences."

# A larger model in the Hugging Face cache: a Llama config and one 410 M-value FP16 tensor in a sparse file
# (the offer goes by the files' headers; the weights are never read unless it is opened).
os.environ["HOME"] = tempfile.mkdtemp(prefix="hearth-start-home-")
snap = os.path.join(os.environ["XDG_CACHE_HOME"], "huggingface", "hub", "models--acme--Big-Llama", "snapshots",
                    "89abcdef0123456789abcdef0123456789abcdef")
os.makedirs(snap)
with open(os.path.join(snap, "config.json"), "w") as f:
    json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
               "intermediate_size": 5632, "num_hidden_layers": 16, "num_attention_heads": 32,
               "num_key_value_heads": 8, "vocab_size": 200000, "max_position_embeddings": 4096,
               "rms_norm_eps": 1e-5, "torch_dtype": "float16", "tie_word_embeddings": True}, f)
n = 200000 * 2048
header = json.dumps({"model.embed_tokens.weight": {"dtype": "F16", "shape": [200000, 2048],
                                                    "data_offsets": [0, 2 * n]}}).encode()
with open(os.path.join(snap, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header)
    f.truncate(8 + len(header) + 2 * n)
models = os.path.join(os.environ["XDG_DATA_HOME"], "io.github.hearthchat.Hearth", "models")

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
    wait_for(lambda: [t for t in labels(main) if "acme/Big-Llama (410 M parameters), which Hugging Face downloaded"
                      in t], 20, "the note's offer of the larger model in the Hugging Face cache")
    wait_for(lambda: main.child(name="Use acme/Big-Llama", roleName="push button"), 10, "its Use button")
    # the model's recommended sampling in the chat settings of a new chat
    settings = wait_for(lambda: [n for n in main.findChildren(lambda n: n.roleName in ("push button", "toggle button")
                                                               and n.name == "Chat settings")
                                 if "click" in n.actions][0], 10, "the Chat settings button")
    settings.doActionNamed("click")
    temp = wait_for(lambda: app.child(name="Temperature", roleName="spin button", retry=False), 10,
                    "the Temperature spin button")
    top_p = app.child(name="Top-p", roleName="spin button", retry=False)
    if temp is None or abs(temp.value - 0.3) > 1e-6 or abs(top_p.value - 0.8) > 1e-6:
        fail(f"a new chat's sampling is not the model's recommendation (0.3, 0.8): "
             f"{temp.value if temp else None}, {top_p.value if top_p else None}")
    rawinput.pressKey("Escape")
    time.sleep(0.3)
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
    win = toplevel(app, "Models")
    shot("start-page-models")
    win.findChild(lambda n: n.roleName == "push button" and n.name == "Close", retry=False).doActionNamed("click")

    # The offer: one click adds it as links and opens it (its fake weights cannot load: the window says so).
    main.child(name="Use acme/Big-Llama", roleName="push button").doActionNamed("click")
    wait_for(lambda: os.path.islink(os.path.join(models, "Big-Llama", "model.safetensors")), 10,
             "the larger model added as links")
    wait_for(lambda: [t for t in labels(main) if t.startswith("Could not open “Big-Llama”")], 60,
             "the window to open the larger model")
finally:
    stop(proc)

finish("start page")
