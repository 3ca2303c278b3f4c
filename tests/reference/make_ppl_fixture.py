#!/usr/bin/env python3
"""Perplexity of stories260K (hf_f32) on the first windows of WikiText-2,
computed the way the AWQ/GPTQ evaluation scripts do, with transformers:
tokenize the whole text (add_special_tokens=True), cut non-overlapping windows
of 512 tokens, mean NLL over each window's 511 predictions times 512, and
ppl = exp(sum / (n_windows * 512)). Writes tests/fixtures/perplexity/stories-260k.json.

Run: /root/refvenv/bin/python tests/reference/make_ppl_fixture.py [ASSETS_DIR]
"""
import json
import math
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

assets = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "assets")
model_dir = os.path.join(assets, "models", "stories260K", "hf_f32")
text = open(os.path.join(assets, "text", "wikitext2-test.txt"), encoding="utf-8").read()
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()
ids = tok(text, return_tensors="pt").input_ids
ctx, windows = 512, 4
nlls = []
with torch.no_grad():
    for w in range(windows):
        batch = ids[:, w * ctx:(w + 1) * ctx]
        logits = model(batch).logits[:, :-1, :].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        nlls.append(loss.item() * ctx)
ppl = math.exp(sum(nlls) / (windows * ctx))
out = {"model": "stories260K/hf_f32", "text": "wikitext2-test.txt", "ctx": ctx, "windows": windows,
       "n_tokens": int(ids.shape[1]), "ppl": ppl}
path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "perplexity", "stories-260k.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print(out)
