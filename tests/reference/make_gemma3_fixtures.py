#!/usr/bin/env python3
"""Reference data for tests/test-gemma3-270m.c: Gemma 3 270M run by transformers.

The model is Google's gemma-3-270m (base) as the Q4_K_M GGUF that
tests/reference/get-gemma3-270m fetches. transformers reads the GGUF (its GGUF loader
dequantizes every tensor with gguf-py, in FP32, and undoes llama.cpp's (1 + w) norms), so
it runs the same numbers Hearth keeps as blocks; the forward is FP32 with eager attention.

For each prompt, tests/fixtures/gemma3-270m/greedy.json holds:
  prompt_ids   the ids transformers' tokenizer gives (add_special_tokens; the chat case is
               rendered with tests/fixtures/templates/gemma-3-it.jinja, the template Hearth
               gives a Gemma GGUF without one, then tokenized without adding <bos> again)
  top_ids, top_logits   the 20 largest logits of the last prompt position
  output_ids   generate(): greedy, N_NEW new tokens (no eos stop: a base model)
  gaps         each greedy step's top-1 minus top-2 logit (the test requires equal ids up
               to the first step whose gap is within its tolerance: a tie either side may take)
The long prompt (more than the 512-token sliding window) checks the sliding layers.

Run from the repository root after tests/reference/get-gemma3-270m (about a minute):
    /root/refvenv/bin/python tests/reference/make_gemma3_fixtures.py
Needs torch, transformers >= 5 with gguf and accelerate (made with torch 2.15.0,
transformers 5.23.0, gguf 0.17.1).
"""

import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "gemma3-270m")
GGUF = "gemma-3-270m-q4_k_m.gguf"
N_NEW = 32
N_TOP = 20


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hearth-test-models")


def long_text():
    path = os.path.join(os.environ.get("HEARTH_ASSETS", os.path.join(ROOT, "..", "shared", "assets")),
                        "text", "wikitext2-test.txt")
    with open(path, encoding="utf-8") as f:
        return f.read()[:3000]


def main():
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(cache_dir(), gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(cache_dir(), gguf_file=GGUF, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    with open(os.path.join(ROOT, "tests", "fixtures", "templates", "gemma-3-it.jinja"), encoding="utf-8") as f:
        template = f.read()
    chat = tok.apply_chat_template([{"role": "user", "content": "Write a haiku about the sea."}],
                                   chat_template=template, tokenize=False, add_generation_prompt=True)
    prompts = [
        ("prose", "The capital of France is", True),
        ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", True),
        ("chat", chat, False),
        ("long", long_text(), True),
    ]
    cases = []
    for name, text, add_special in prompts:
        ids = tok(text, add_special_tokens=add_special)["input_ids"]
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(x, max_new_tokens=N_NEW, do_sample=False, output_scores=True,
                                 return_dict_in_generate=True, eos_token_id=None, pad_token_id=0)
            last = model(x).logits[0, -1]
        new = out.sequences[0, len(ids):].tolist()
        gaps = []
        for s in out.scores:
            top2 = torch.topk(s[0].float(), 2).values
            gaps.append(float(top2[0] - top2[1]))
        top = torch.topk(last, N_TOP)
        cases.append({
            "name": name,
            "text": text,
            "add_special_tokens": add_special,
            "prompt_ids": ids,
            "top_ids": top.indices.tolist(),
            "top_logits": [round(float(v), 5) for v in top.values],
            "output_ids": new,
            "gaps": [round(g, 5) for g in gaps],
        })
        print(f"{name}: {len(ids)} prompt ids, greedy {new[:8]}..., min gap {min(gaps):.4f}, "
              f"top logit {float(top.values[0]):.3f}")
    doc = {
        "model": f"google/gemma-3-270m as {GGUF} (tests/reference/get-gemma3-270m)",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "n_new": N_NEW,
        "cases": cases,
    }
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "greedy.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
