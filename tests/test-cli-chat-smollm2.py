#!/usr/bin/env python3
"""hearth-cli generate --chat on SmolLM2-135M-Instruct: for each fixed question,
the greedy reply (text and ids) equals transformers' greedy generate on the
same converted folder (tests/fixtures/smollm2/greedy.json, made by
tests/reference/make_smollm2_fixtures.py). SKIPs (77) without the model."""
import json
import os
import subprocess
import sys

cli, fixture = sys.argv[1], sys.argv[2]
model = os.environ.get("HEARTH_SMOLLM2_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "hearth-test-models", "smollm2-135m-instruct")
if not os.path.isfile(os.path.join(model, ".complete")) and not os.path.isfile(os.path.join(model, "model.safetensors")):
    print(f"SKIP: {model} is absent; fetch it with tests/reference/get-smollm2")
    sys.exit(77)

cases = json.load(open(fixture))["cases"]
n_new = json.load(open(fixture))["max_new_tokens"]
failures = 0
for c in cases:
    q = c["question"]
    want_ids = [i for i in c["output_ids"] if not (c["stopped_at_eos"] and i == c["output_ids"][-1])]
    ids = subprocess.run([cli, "generate", "-m", model, "--chat", "-p", q, "-n", str(n_new), "--ids"],
                         capture_output=True, text=True)
    text = subprocess.run([cli, "generate", "-m", model, "--chat", "-p", q, "-n", str(n_new)],
                          capture_output=True, text=True)
    got_ids = [int(x) for x in ids.stdout.split()]
    got_text = text.stdout[:-1] if text.stdout.endswith("\n") else text.stdout
    ok = ids.returncode == 0 and text.returncode == 0 and got_ids == want_ids and got_text == c["text"]
    print(("ok   " if ok else "FAIL ") + repr(q) + " -> " + repr(got_text[:80]))
    if not ok:
        failures += 1
        print("  want ids:", want_ids, "\n  got ids: ", got_ids)
        print("  want text:", repr(c["text"]), "\n  got text: ", repr(got_text))
        print("  stderr:", ids.stderr[-500:], text.stderr[-500:])
print(f"{len(cases) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
