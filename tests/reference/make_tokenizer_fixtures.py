#!/usr/bin/env python3
"""Generate golden tokenizer fixtures for Hearth's C tokenizer.

For each of the four real tokenizers in ../shared/assets (spm32k-llama2,
llama3_1, qwen3 and stories260K's), encode a few hundred varied texts with
Hugging Face `tokenizers` (Tokenizer.from_file on the folder's tokenizer.json,
i.e. exactly what tokenizer.json describes) and write, per tokenizer,
tests/fixtures/tokenizer/<name>.json:

    {
      "name": ..., "asset": "tokenizers/qwen3", "tokenizers_version": ...,
      "transformers_version": ..., "transformers_differs": <int>,
      "cases": [
        {"text": T,
         "ids":       encode(T, add_special_tokens=True).ids,
         "ids_nospecial": encode(T, add_special_tokens=False).ids,
         "ids_plain": encode(T, add_special_tokens=False) with
                      encode_special_tokens=True (special tokens in the text are
                      not matched; non-special added tokens still are),
         "decode":      decode(ids, skip_special_tokens=False),
         "decode_skip": decode(ids, skip_special_tokens=True),
         "decode_nospecial":      decode(ids_nospecial, False),
         "decode_nospecial_skip": decode(ids_nospecial, True)}, ...],
      "decode_cases": [   # random id sequences: invalid UTF-8, byte tokens, specials
        {"ids": [...], "decode": ..., "decode_skip": ...}, ...],
      "variants": [       # only for the SentencePiece-style tokenizers, see below
        {"name": "transformers5", "override": {"normalizer": ..., "pre_tokenizer": ...,
                                               "decoder": ..., "post_processor": ...},
         "cases": [{"ids": [...], "ids_nospecial": [...]} ...]   # parallel to "cases"
        }]
    }

A string that contains a NUL byte is written as {"hex": "<UTF-8 bytes in hex>"}
(json-glib hands strings to C as NUL-terminated), and a decode that HF itself
panics on is null.

tests/fixtures/tokenizer/synthetic.json holds six small BPE tokenizers built
here (a tiny deterministic BPE trainer over the same texts) with pipelines the
real files do not use (GPT-2 ByteLevel with add_prefix_space and legacy "a b"
merges, Roberta/Bert/Template post-processors, Metaspace first/always/never,
NFKC/NFD/Lowercase/StripAccents/Strip/Replace/Prepend, every Split behaviour,
Digits, Punctuation, Whitespace(Split), CharDelimiterSplit, byte fallback,
unk fusing, subword prefix/suffix, ignore_merges, lstrip/rstrip/single_word/
normalized added tokens, BPEDecoder, Strip/Replace decoders, no decoder):
{"tokenizers": [{"name", "tokenizer": <tokenizer.json>, "cases": [...],
"decode_cases": [...]}]}, the cases as above without the nospecial decodes.
tests/test-tokenizer.c (no assets needed) checks them.

Reference: `tokenizers` is the oracle (it is a pure function of tokenizer.json
and matches the original SentencePiece / tiktoken behaviour). transformers 5
agrees with it on every case for llama3_1 and qwen3. For the two Llama-2-style
tokenizers, transformers 5's LlamaTokenizer ignores the file's normalizer
(Prepend "▁" + Replace " " -> "▁") and rebuilds the pipeline as a Metaspace
pre-tokenizer (prepend_scheme "always", split false), which differs on leading
spaces, runs of spaces and text after special tokens. That pipeline is recorded
as the "transformers5" variant (the overriding JSON parts plus the ids
AutoTokenizer gives), so the C code is tested on the Metaspace path as well.
llama3_1 also gets an "o200k-split" variant: its vocabulary behind the split
regex of OpenAI's o200k (GPT-4o; llama.cpp's pre-tokenizer "gpt-4o", which
Phi-4-mini's GGUF names), ids from `tokenizers`, so the C regex engine is
checked on that pattern's letter classes (Lu/Lt/Lm/Lo/M, Ll) too.

Run from the repository root (takes ~30 s; output is deterministic):

    /root/refvenv/bin/python tests/reference/make_tokenizer_fixtures.py
    /root/refvenv/bin/python tests/reference/make_tokenizer_fixtures.py --only gemma3-270m
        (after tests/reference/get-gemma3-270m; needs transformers' GGUF reader: gguf, accelerate)

Needs tokenizers >= 0.22 and transformers >= 5 (generated with tokenizers
0.23.3, transformers 5.23.0, Python 3.11). Texts come from a fixed list plus a
seeded random.Random, so two runs give byte-identical files.
"""

import json
import os
import random
import sys
import warnings

import tokenizers
import transformers
from tokenizers import Tokenizer

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.environ.get("HEARTH_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

TOKENIZERS = [
    ("stories-260k", "models/stories260K/hf_f32"),
    ("spm32k-llama2", "tokenizers/spm32k-llama2"),
    ("llama3_1", "tokenizers/llama3_1"),
    ("qwen3", "tokenizers/qwen3"),
    # Gemma 3's 262k SentencePiece vocabulary as a GGUF holds it (tests/reference/get-gemma3-270m):
    # the reference is what transformers builds from that GGUF (its GGUF converter derives the
    # merges from the scores), saved as tokenizer.json and read by `tokenizers`; Hearth reads the
    # GGUF itself. Only with --only gemma3-270m (the GGUF is not an asset of ../shared).
    ("gemma3-270m", "cache:gemma-3-270m-q4_k_m.gguf"),
]
OPTIONAL = {"gemma3-270m"}


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hearth-test-models")


def tokenizer_dir(rel, tmp):
    """The folder holding tokenizer.json for an entry, and the transformers tokenizer to compare
    with (None: AutoTokenizer on that folder).

    A GGUF's ("cache:FILE"): transformers' conversion saved into tmp, with one change. Gemma's
    SentencePiece model holds USER_DEFINED pieces (token type 4: runs of 2 to 31 literal spaces,
    runs of newlines, HTML tags), which SentencePiece matches in the raw text atomically, longest
    first, before anything else (llama.cpp too); transformers' GGUF converter keeps the space runs
    as ordinary "▁▁..." pieces that BPE merges, so a run longer than 31 splits differently
    (33 spaces: SentencePiece 31 + 2, that conversion 16 + 17). The saved tokenizer.json gets
    every USER_DEFINED piece as a non-normalized added token, which is SentencePiece's rule;
    "transformers_differs" counts the texts where transformers' own conversion disagrees."""
    if not rel.startswith("cache:"):
        return os.path.join(ASSETS, rel), None
    from gguf import GGUFReader
    from transformers import AutoTokenizer
    name = rel[len("cache:"):]
    auto = AutoTokenizer.from_pretrained(cache_dir(), gguf_file=name)
    auto.save_pretrained(tmp)
    r = GGUFReader(os.path.join(cache_dir(), name))
    toks, types = r.fields["tokenizer.ggml.tokens"], r.fields["tokenizer.ggml.token_type"]
    path = os.path.join(tmp, "tokenizer.json")
    j = json.load(open(path, encoding="utf-8"))
    have = {a["id"] for a in j["added_tokens"]}
    by_id = {i: p for p, i in j["model"]["vocab"].items()}
    renamed = set()
    for i in range(len(toks.data)):
        if int(types.parts[types.data[i]][0]) == 4 and i not in have:
            text = bytes(toks.parts[toks.data[i]]).decode("utf-8")
            if by_id[i] != text:   # "▁▁▁▁" for four spaces: the piece becomes the literal text
                renamed.add(by_id[i])
                del j["model"]["vocab"][by_id[i]]
                j["model"]["vocab"][text] = i
            j["added_tokens"].append({"id": i, "content": text, "single_word": False, "lstrip": False,
                                      "rstrip": False, "normalized": False, "special": False})
    # merges that make or use a renamed piece go (BPE never sees those pieces: the added
    # tokens take every such run first)
    j["model"]["merges"] = [m for m in j["model"]["merges"]
                            if m[0] not in renamed and m[1] not in renamed and m[0] + m[1] not in renamed]
    j["added_tokens"].sort(key=lambda a: a["id"])
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    return tmp, auto


# ---------------------------------------------------------------------------
# Texts

PROSE = [
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.",
    "It's a dog's life, isn't it? I'm sure they'll say we've done what we'd planned.",
    "IT'S LOUD. THEY'LL SHOUT. WE'VE WON. I'M HERE. YOU'D KNOW. SHE'S OK. DON'T.",
    "He said \"hello\" and she said 'goodbye'.",
    "Mr. Smith went to Washington D.C. on Jan. 5th, 2021 at 3:30 p.m.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
    "A man, a plan, a canal: Panama!",
    "Well... that was unexpected -- wasn't it?",
    "e-mail: someone@example.com, web: https://example.org/path?q=1&r=two#frag",
    "The cat sat on the mat. The dog sat on the log. The bird sat on the word.",
    "Tom and Sue were best friends. One day, they found a big red ball in the park. \"Let's play!\" said Tom.",
    "You are a helpful assistant.",
    "What is the capital of France? The capital of France is Paris.",
    "Summarize the following article in three bullet points:\n\n- First point\n- Second point\n- Third point",
    "# Title\n\nSome *emphasis* and **strong** text, `inline code`, and a [link](http://x.y).\n\n> quoted\n",
    "snake_case_name camelCaseName PascalCaseName SCREAMING_CASE kebab-case-name",
    "(parentheses) [brackets] {braces} <angles> «guillemets» „quotes“ “curly” ‘single’",
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
]

WHITESPACE = [
    "", " ", "  ", "   ", "    ", "        ", " " * 17, "\t", "\t\t", "\n", "\n\n", "\n\n\n\n",
    "\r\n", "\r\n\r\n", "\r", " \n ", "\t \n", " \t\n\r\n ",
    "a b", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \r\n b",
    " hello", "  hello", "   hello", "hello ", "hello  ", "hello   ", " hello ", "\thello\t",
    "\nhello\n", "hello\n\n\nworld", "line one\r\nline two\r\nline three\r\n",
    "trailing spaces   \nnext line", "x" + " " * 40 + "y", "end with newline\n",
    "mixed \t \t whitespace", "word\u00a0nbsp", "ideographic\u3000space", "line\u2028separator",
    "next\u0085line", "mongolian\u180evowel", "zero\u200bwidth", "en\u2002space em\u2003space",
    "\u3000\u3000", "\u00a0", "a\u00a0 b", " \u00a0", "\u2029",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456789", "3.14159265358979", "1,000,000", "1 000 000",
    "-17.5e-3", "0x1F 0b1010 0o777", "2024-01-01T12:34:56Z", "+1 (555) 123-4567",
    "12345678901234567890123456789012345678901234567890", "v1.2.3-rc4", "99.9%", "$1,299.99",
    "abc123def456", "x2 y23 z234", "٠١٢٣٤٥٦٧٨٩", "１２３４５", "²³¹ ½ ⅓ ¼", "Ⅻ ⅻ", "H₂O CO₂",
    "९८७", "1st 2nd 3rd 4th", "10:30", "3/4", "1e100",
]

UNICODE = [
    "café", "cafe\u0301", "Café crème brûlée", "Cafe\u0301 cre\u0300me bru\u0302le\u0301e",
    "ñ n\u0303", "Å A\u030a \u212b", "ﬁ ﬂ ﬀ", "① ② ③", "ｶﾀｶﾅ", "Ｆｕｌｌｗｉｄｔｈ",
    "\u1100\u1161\u11a8 \uac01", "Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o\u0358",
    "Tiếng Việt có dấu", "Straße groß", "İstanbul ıi İI", "ΣΊΣΥΦΟΣ σίσυφος ς", "Ελληνικά",
    "Привет, мир! Как дела?", "Україна, Київ", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
    "வணக்கம் உலகம்", "สวัสดีชาวโลก", "ဂ မ ္ ာ", "བོད་ཡིག", "ქართული ენა", "Հայերեն",
    "你好，世界！", "我爱自然语言处理。", "日本語のテキスト、カタカナとひらがな。", "東京都渋谷区",
    "한국어 텍스트입니다.", "中文English混合text测试123", "『括弧』「かぎ」【隅付き】",
    "😀", "😀😃😄", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇫🇷🇯🇵", "1️⃣ #️⃣",
    "❤️ ❤", "I ❤️ NY 🗽", "emoji at end 🎉", "🎉 emoji at start", "a😀b😀c",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
    "ᚠᛇᚻ᛫ᛒᛦᚦ", "\U00013000\U00013001", "\ue000\uf8ff", "\U0010fffd", "\ufffd", "\ufeffBOM",
    "\x01\x02\x1f\x7f", "a\x00b", "\x00", "x\x00\u00e9 \x00\u0301", "日\x00本", "<s>\x00</s>", "tab\x0bvtab\x0cff", "€£¥₹₿", "©®™", "→←↑↓⇒", "∀x∈ℝ: x²≥0",
    "x'ſ 'ſ", "'s 'S 'ſ 'll 'LL 'Ll", "don’t can’t",  # long s case-folds to s
    "\u0301leading combining", "a\u0300\u0301\u0302\u0303\u0304", "\u200d", "\u200c\u200d",
    "Ω ω ℧ K K Å", "ǅ ǈ ǋ", "ʰʲʷ ˈˌ", "々〆〇", "\u0e01\u0e34\u0e4a",
]

SPECIAL = [
    "<s>", "</s>", "<unk>", "<s>hello</s>", "<s> hello </s>", "hello<s>world", "<s><s>", "</s></s>",
    "<s>\n", " <s>", "hello </s> there", "<<s>>", "<s", "s>", "< s >", "</s >", "<S>",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start", "im_start|>", "<|im_start|><|im_end|>", "x<|im_end|>y", " <|im_end|> ",
    "<think>\nreasoning\n</think>\n\nanswer", "<tool_call>{}</tool_call>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
    "<|begin_of_text|>", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", "<|end_of_text|>", "<|eom_id|>",
    "<|reserved_special_token_0|>", "<|reserved_special_token_250|>", "<|reserved_special_token_999|>",
    "<|python_tag|>print(1)", "<|begin_of_text|><|begin_of_text|>", "text<|eot_id|>text", "<|", "|>",
    "[INST] Hello [/INST]", "<s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nhi [/INST]", "<0x41>", "<0xE6><0x97>",
]

REPEATS = [
    "a" * 30, "aaaa bbbb cccc", "!" * 20, "." * 15, "-" * 40, "=" * 25, "_" * 12, "*" * 9,
    "ab" * 20, "🎉" * 5, "日" * 10, "\n" * 12, " " * 33 + "x", "ha" * 11 + "!", "0" * 25, "9" * 31,
    "hello hello hello hello hello", "the the the the", "ÿ" * 8,
]

LONG = [
    (
        "In the beginning the Universe was created. This has made a lot of people very angry "
        "and been widely regarded as a bad move. Many were increasingly of the opinion that "
        "they'd all made a big mistake in coming down from the trees in the first place. And "
        "some said that even the trees had been a bad move, and that no one should ever have "
        "left the oceans.\n\n"
    ) * 3,
    "\n".join(f"{i:4d}: item number {i} costs ${i * 1.25:.2f}" for i in range(40)),
    " ".join(["token"] * 150),
    "Mixed 混合 текст with عربي and emoji 😀 and numbers 12345 and code `x += 1;` and spaces   and\ttabs\r\n" * 4,
    "x" * 300,  # longer than the BPE word cache takes
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 7,
    " " * 300 + "end",
    "\u00e9\u0301\u0327" * 40,
    "https://example.com/" + "/".join(f"segment{i}?q={i * 7}&r=%2F{i}" for i in range(20)),
]

# Fragments for generated texts: a seeded random mix.
FRAGMENTS = [
    "the", "The", "of", "and", "to", "in", "is", "was", "that", "for", "it", "with", "as", "on",
    "hello", "world", "token", "izer", "Hearth", "offline", "model", "assistant", "user",
    "running", "jumped", "beautiful", "happiness", "uncharacteristically", "antidisestablishment",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "n't", "'S", "'LL",
    " ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n",
    ".", ",", "!", "?", ";", ":", "...", "--", "(", ")", "\"", "'", "/", "\\", "@", "#", "$", "%",
    "^", "&", "*", "+", "=", "<", ">", "|", "~", "`", "{", "}", "[", "]",
    "0", "1", "12", "123", "1234", "3.14", "2024", "99999",
    "日本", "中文", "한국어", "Ελλάδα", "Москва", "עברית", "عربى", "हिन्दी",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇩🇪", "❤️", "e\u0301", "n\u0303", "ﬁ", "\u00a0", "\u3000",
    "\U0001d518", "ᚠ", "\ue000", "€", "→",
    "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>",
    "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<", "|", ">",
]


def texts():
    out = []
    for group in (PROSE, CODE, WHITESPACE, NUMBERS, UNICODE, SPECIAL, REPEATS, LONG):
        out.extend(group)
    rng = random.Random(20240611)
    for _ in range(170):
        n = rng.randint(1, 24)
        out.append("".join(rng.choice(FRAGMENTS) for _ in range(n)))
    # Deduplicate, keeping the first occurrence (deterministic order).
    seen = set()
    uniq = []
    for t in out:
        if t not in seen:
            seen.add(t)
            uniq.append(t)
    return uniq


# ---------------------------------------------------------------------------

def nul_safe(v):
    """json-glib gives strings as C strings, so a string with a NUL in it is
    written as {"hex": "<its UTF-8 bytes in hex>"} instead."""
    if isinstance(v, str) and "\x00" in v:
        return {"hex": v.encode("utf-8").hex()}
    return v


def safe_decode(tok, ids, skip):
    """decode(), or None where `tokenizers` panics (its Strip decoder indexes
    out of bounds on a string shorter than `stop`, e.g. an empty decode)."""
    try:
        return tok.decode(ids, skip_special_tokens=skip)
    except BaseException:  # pyo3 PanicException derives from BaseException
        return None


def quiet_stderr(fn, *args):
    """Run fn with fd 2 sent to /dev/null (Rust prints every panic there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        return fn(*args)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def decode_cases(tok, rng, n=40):
    """Random id sequences, incl. byte tokens, specials and ids out of range."""
    vocab = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1
    special_ids = sorted(
        i for i, t in tok.get_added_tokens_decoder().items() if t.special)
    byte_ids = sorted(v for k, v in vocab.items() if len(k) == 6 and k.startswith("<0x") and k.endswith(">"))
    # Byte-level vocab pieces that are single bytes >= 0x80 (Ä, Ã, ...): mid-codepoint fragments.
    frag_ids = []
    for ch in "ÃÄÅÆÇÈÉÊËÌÍÎÏÐ¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿":
        if ch in vocab:
            frag_ids.append(vocab[ch])
    cases = []
    for k in range(n):
        length = rng.randint(1, 24)
        ids = []
        for _ in range(length):
            r = rng.random()
            if r < 0.45:
                ids.append(rng.randrange(size))
            elif r < 0.6 and special_ids:
                ids.append(rng.choice(special_ids))
            elif r < 0.85 and byte_ids:
                ids.append(rng.choice(byte_ids))
            elif r < 0.85 and frag_ids:
                ids.append(rng.choice(frag_ids))
            elif r < 0.97:
                ids.append(rng.randrange(min(size, 1000)))
            else:
                ids.append(size + rng.randrange(1000))  # out of range: dropped by decode
        cases.append({
            "ids": ids,
            "decode": nul_safe(safe_decode(tok, ids, False)),
            "decode_skip": nul_safe(safe_decode(tok, ids, True)),
        })
    return cases


# OpenAI's o200k split pattern (tiktoken's o200k_base), as llama.cpp's "gpt-4o" pre-tokenizer has it.
O200K_REGEX = (
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)


def main():
    import argparse
    import tempfile

    from transformers import AutoTokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="write only this tokenizer's fixture (gemma3-270m is written only so)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    all_texts = texts()
    print(f"{len(all_texts)} texts")
    tmp = tempfile.TemporaryDirectory()
    for name, rel in TOKENIZERS:
        if (args.only or name) != name or (name in OPTIONAL and args.only != name):
            continue
        d, auto = tokenizer_dir(rel, tmp.name)
        tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        plain = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        plain.encode_special_tokens = True
        auto = auto or AutoTokenizer.from_pretrained(d)
        cases = []
        tf_cases = []
        differs = 0
        for t in all_texts:
            ids = tok.encode(t, add_special_tokens=True).ids
            ids_ns = tok.encode(t, add_special_tokens=False).ids
            ids_plain = plain.encode(t, add_special_tokens=False).ids
            case = {
                "text": nul_safe(t),
                "ids": ids,
                "ids_nospecial": ids_ns,
                "ids_plain": ids_plain,
                "decode": nul_safe(tok.decode(ids, skip_special_tokens=False)),
                "decode_skip": nul_safe(tok.decode(ids, skip_special_tokens=True)),
                "decode_nospecial": nul_safe(tok.decode(ids_ns, skip_special_tokens=False)),
                "decode_nospecial_skip": nul_safe(tok.decode(ids_ns, skip_special_tokens=True)),
            }
            cases.append(case)
            a_ids = auto(t, add_special_tokens=True)["input_ids"]
            a_ns = auto(t, add_special_tokens=False)["input_ids"]
            tf_cases.append({"ids": a_ids, "ids_nospecial": a_ns})
            if a_ids != ids or a_ns != ids_ns:
                differs += 1
            # transformers must decode the reference ids identically (not checked for a GGUF:
            # transformers' conversion of Gemma's drops its "▁▁..." pieces from decodes).
            for sk in ((False, True) if not rel.startswith("cache:") else ()):
                assert auto.decode(ids, skip_special_tokens=sk) == tok.decode(ids, skip_special_tokens=sk), (name, t)
        rng = random.Random(hash_name(name))
        dcases = decode_cases(tok, rng)
        doc = {
            "name": name,
            "asset": rel,
            "tokenizers_version": tokenizers.__version__,
            "transformers_version": transformers.__version__,
            "transformers_differs": differs,
            "cases": cases,
            "decode_cases": dcases,
            "variants": [],
        }
        if name == "llama3_1":
            override = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": O200K_REGEX}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}}
            base = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
            base.update(override)
            vt = Tokenizer.from_str(json.dumps(base))
            vcases = [{"ids": vt.encode(t, add_special_tokens=True).ids,
                       "ids_nospecial": vt.encode(t, add_special_tokens=False).ids} for t in all_texts]
            assert sum(c["ids"] != x["ids"] for c, x in zip(vcases, cases)) > 0   # the regex matters here
            doc["variants"].append({"name": "o200k-split", "override": override, "cases": vcases})
        if differs and not rel.startswith("cache:"):
            backend = json.loads(auto.backend_tokenizer.to_str())
            override = {k: backend[k] for k in ("normalizer", "pre_tokenizer", "decoder", "post_processor")}
            # The variant must be exactly "the asset file with these four parts replaced":
            # check that by building it with `tokenizers` and comparing with AutoTokenizer.
            base = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
            base.update(override)
            vt = Tokenizer.from_str(json.dumps(base))
            for t, c in zip(all_texts, tf_cases):
                assert vt.encode(t, add_special_tokens=True).ids == c["ids"], (name, t)
                assert vt.encode(t, add_special_tokens=False).ids == c["ids_nospecial"], (name, t)
            doc["variants"].append({"name": "transformers5", "override": override, "cases": tf_cases})
        path = os.path.join(OUT, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        print(f"{name}: {len(cases)} texts, {len(dcases)} decode cases, "
              f"transformers differs on {differs}, {os.path.getsize(path)} bytes")

    if args.only:
        return 0
    path = os.path.join(OUT, "synthetic.json")
    doc = {"tokenizers_version": tokenizers.__version__, "tokenizers": quiet_stderr(synthetic, all_texts)}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"synthetic: {os.path.getsize(path)} bytes")


# ---------------------------------------------------------------------------
# Synthetic tokenizers: small BPE models trained here on the texts above, with
# pipelines that the four real files do not use, so the C unit test (which
# needs no assets) covers them against `tokenizers` too.

def synthetic_specs():
    from tokenizers import AddedToken, Regex, decoders as D, models, normalizers as N
    from tokenizers import pre_tokenizers as P, processors as PP

    specs = []

    # 1. GPT-2/RoBERTa style: ByteLevel pre-tokenizer with add_prefix_space and
    #    its own regex, Roberta post-processor, lstrip/rstrip added tokens;
    #    merges written in the legacy "a b" string form.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = P.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = D.ByteLevel()
    tr = dict(vocab_size=600, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=P.ByteLevel.alphabet())
    specs.append(("gpt2-style", tok, tr, "legacy-merges", [
        AddedToken("<mask>", special=True, lstrip=True, normalized=False),
        AddedToken("<|sep|>", special=True, rstrip=True, normalized=False),
        AddedToken("[WORD]", special=False, single_word=True, normalized=False),
    ], lambda t: PP.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))))

    # 2. SentencePiece-like with a Metaspace pre-tokenizer that splits
    #    (prepend_scheme "first"), NFKC + Lowercase, byte fallback, fused unk,
    #    normalized added tokens, Metaspace decoder.
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.normalizer = N.Sequence([N.NFKC(), N.Lowercase()])
    tok.pre_tokenizer = P.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tok.decoder = D.Sequence([D.ByteFallback(), D.Metaspace(replacement="\u2581", prepend_scheme="first")])
    tr = dict(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=120)
    specs.append(("metaspace-first", tok, tr, "byte-fallback", [
        AddedToken("day", special=False, normalized=True),
        AddedToken("<|user|>", special=True, rstrip=True, normalized=False),
        AddedToken("<|bot|>", special=True, lstrip=True, normalized=False),
    ], lambda t: PP.TemplateProcessing(single="<s> $A </s>", special_tokens=[
        ("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))])))

    # 3. BERT-ish normalization, Whitespace pre-tokenizer, continuing subword
    #    prefix and end-of-word suffix, BPEDecoder, Bert post-processor, unk
    #    without fusing.
    tok = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=False, continuing_subword_prefix="##",
                               end_of_word_suffix="</w>"))
    tok.normalizer = N.Sequence([N.NFD(), N.StripAccents(), N.Lowercase(), N.Strip()])
    tok.pre_tokenizer = P.Whitespace()
    tok.decoder = D.BPEDecoder(suffix="</w>")
    tr = dict(vocab_size=500, special_tokens=["[UNK]", "[CLS]", "[SEP]"], limit_alphabet=80,
              continuing_subword_prefix="##", end_of_word_suffix="</w>")
    specs.append(("bert-ish", tok, tr, None, [],
                  lambda t: PP.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]")))))

    # 4. Split behaviours, Digits, Punctuation, CharDelimiterSplit, Replace/Prepend
    #    normalizers, ignore_merges, a Strip decoder that strips at the end.
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = N.Sequence([N.Replace(Regex(r"\s+"), " "), N.Prepend("@"), N.NFC()])
    tok.pre_tokenizer = P.Sequence([
        P.Split("-", "merged_with_previous"),
        P.Split(Regex(r"[A-Z]"), "merged_with_next"),
        P.Split(Regex(r"\s"), "removed"),
        P.Split(Regex(r"[aeiou]+"), "contiguous", invert=True),
        P.Digits(individual_digits=True),
        P.Punctuation("isolated"),
        P.CharDelimiterSplit("x"),
        P.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = D.Sequence([D.ByteLevel(), D.Replace("@", "_"), D.Strip(content="_", left=1, right=2)])
    tr = dict(vocab_size=450, initial_alphabet=P.ByteLevel.alphabet())
    specs.append(("splits", tok, tr, None, [AddedToken("<eot>", special=True, normalized=False)], None))

    # 5. No decoder (tokens joined with spaces), WhitespaceSplit, Metaspace
    #    with prepend_scheme "always" and no split, a Replace regex decoder in a
    #    second tokenizer below.
    tok = Tokenizer(models.BPE(unk_token="?"))
    tok.pre_tokenizer = P.Sequence([P.WhitespaceSplit(),
                                    P.Metaspace(replacement="_", prepend_scheme="always", split=False)])
    tr = dict(vocab_size=300, special_tokens=["?", "<eos>"], limit_alphabet=60)
    specs.append(("no-decoder", tok, tr, None, [], None))

    # 6. Metaspace "never", Replace-regex and Strip decoders over ByteFallback + Fuse.
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = N.Replace(" ", "\u2581")
    tok.pre_tokenizer = P.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    tok.decoder = D.Sequence([D.Replace(Regex("\u2581+"), " "), D.ByteFallback(), D.Fuse(),
                              D.Strip(content=" ", left=2, right=1)])
    tr = dict(vocab_size=400, special_tokens=["<unk>"], limit_alphabet=90)
    specs.append(("metaspace-never", tok, tr, "byte-fallback", [], None))
    return specs


def train_bpe(tok, corpus, vocab_size, special_tokens=(), initial_alphabet=(), limit_alphabet=None,
              continuing_subword_prefix=None, end_of_word_suffix=None):
    """A small deterministic BPE trainer (HF's BpeTrainer breaks ties in hash
    order, so its output changes from run to run). Ties go to the
    lexicographically smallest pair."""
    from collections import Counter
    from tokenizers import models

    pre = continuing_subword_prefix or ""
    suf = end_of_word_suffix or ""
    words = Counter()
    for t in corpus:
        n = tok.normalizer.normalize_str(t) if tok.normalizer else t
        pieces = tok.pre_tokenizer.pre_tokenize_str(n) if tok.pre_tokenizer else [(n, None)]
        for w, _ in pieces:
            if w:
                words[w] += 1
    chars = Counter()
    for w, c in words.items():
        for ch in w:
            chars[ch] += c
    alphabet = sorted(chars, key=lambda ch: (-chars[ch], ch))
    if limit_alphabet is not None:
        alphabet = alphabet[:limit_alphabet]
    alphabet = sorted(set(alphabet) | set(initial_alphabet))
    keep = set(alphabet)
    vocab = {}
    for sp in special_tokens:
        vocab.setdefault(sp, len(vocab))

    def symbols(w):
        out = [(pre if i else "") + ch for i, ch in enumerate(w)]
        out[-1] += suf
        return out

    seqs = {}
    for w, c in words.items():
        if all(ch in keep for ch in w):
            seqs[w] = symbols(w)
    initial = set()
    for ch in alphabet:
        initial.add(ch)
    for sy in seqs.values():
        initial.update(sy)
    for sym in sorted(initial):
        vocab.setdefault(sym, len(vocab))
    merges = []
    while len(vocab) < vocab_size:
        pairs = Counter()
        for w, sy in seqs.items():
            for a, b in zip(sy, sy[1:]):
                pairs[(a, b)] += words[w]
        if not pairs:
            break
        (a, b), c = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if c < 2:
            break
        new = a + (b[len(pre):] if pre and b.startswith(pre) else b)
        merges.append((a, b))
        vocab.setdefault(new, len(vocab))
        for w, sy in seqs.items():
            i, out = 0, []
            while i < len(sy):
                if i + 1 < len(sy) and sy[i] == a and sy[i + 1] == b:
                    out.append(new)
                    i += 2
                else:
                    out.append(sy[i])
                    i += 1
            seqs[w] = out
    old = tok.model
    kw = dict(unk_token=old.unk_token, continuing_subword_prefix=continuing_subword_prefix,
              end_of_word_suffix=end_of_word_suffix)
    tok.model = models.BPE(vocab=vocab, merges=merges, fuse_unk=old.fuse_unk, ignore_merges=old.ignore_merges,
                           **{k: v for k, v in kw.items() if v is not None})
    if special_tokens:
        tok.add_special_tokens(list(special_tokens))


def synthetic(all_texts):
    out = []
    corpus = [t for t in all_texts if t and "\x00" not in t]  # no NUL in vocab keys
    texts_subset = all_texts[:260]
    for name, tok, tr, extra, added, post in synthetic_specs():
        train_bpe(tok, corpus, **tr)
        if added:
            tok.add_tokens(added)
        if post:
            tok.post_processor = post(tok)
        j = json.loads(tok.to_str())
        if extra == "legacy-merges":
            assert all(" " not in a and " " not in b for a, b in j["model"]["merges"])
            j["model"]["merges"] = [a + " " + b for a, b in j["model"]["merges"]]
        if extra == "byte-fallback":
            v = j["model"]["vocab"]
            nxt = max(max(v.values()), max(t["id"] for t in j["added_tokens"]) if j["added_tokens"] else 0) + 1
            for b in range(256):
                k = "<0x%02X>" % b
                if k not in v:
                    v[k] = nxt
                    nxt += 1
            j["model"]["byte_fallback"] = True
        tok = Tokenizer.from_str(json.dumps(j))
        plain = Tokenizer.from_str(json.dumps(j))
        plain.encode_special_tokens = True
        cases = []
        for t in texts_subset:
            ids = tok.encode(t, add_special_tokens=True).ids
            cases.append({
                "text": nul_safe(t),
                "ids": ids,
                "ids_nospecial": tok.encode(t, add_special_tokens=False).ids,
                "ids_plain": plain.encode(t, add_special_tokens=False).ids,
                "decode": nul_safe(safe_decode(tok, ids, False)),
                "decode_skip": nul_safe(safe_decode(tok, ids, True)),
            })
        rng = random.Random(hash_name(name))
        out.append({"name": name, "tokenizer": j, "cases": cases, "decode_cases": decode_cases(tok, rng, 30)})
        print(f"synthetic {name}: vocab {tok.get_vocab_size()}, {len(cases)} texts")
    return out


def hash_name(s):
    # Stable across runs (unlike hash()).
    h = 0
    for ch in s.encode():
        h = (h * 131 + ch) % (1 << 31)
    return h


if __name__ == "__main__":
    sys.exit(main())
