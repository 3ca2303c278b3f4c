#!/usr/bin/env python3
"""Render chat-template fixtures with Hugging Face transformers' own machinery.

Writes under tests/fixtures/templates/:

  cases.json     real chat templates (the published ones transcribed into
                 tests/fixtures/templates/*.jinja, and the chat_template strings
                 of the llama3_1 and qwen3 tokenizers in ../shared/assets, which are
                 referenced as "asset:<name>" and never copied into the repository)
                 over a set of conversations;
  snippets.json  small templates that pin down the interpreter's semantics
                 (expressions, filters, tests, loops, scoping, whitespace control,
                 undefined values), each rendered by the same jinja2 environment.

  cli/           one conversation and its expected prompts for
                 tests/test-cli-template.sh.

Every entry is {name, template | source, messages, add_generation_prompt,
bos_token, eos_token, extra, expected | expected_error + error_type}.
error_type "TemplateError" means the template called raise_exception(); the C
interpreter must fail with exactly that message. Other error types (UndefinedError,
TypeError, ...) are failures jinja2 reports; the C interpreter must fail too, with
a message of its own.

Rendering goes through transformers.utils.chat_template_utils.render_jinja_template,
which is what PreTrainedTokenizerBase.apply_chat_template calls: the same sandboxed
jinja2 environment (trim_blocks, lstrip_blocks, loopcontrols, the {% generation %}
tag), the same tojson/raise_exception/strftime_now globals and the same message
preprocessing. The asset templates are also rendered through
AutoTokenizer.from_pretrained(<asset dir>).apply_chat_template(tokenize=False) and
must agree.

strftime_now() reads the clock: the script freezes it at FIXED_NOW, and the C test
sets HEARTH_TEMPLATE_NOW to the same instant.

Usage: /root/refvenv/bin/python tests/reference/make_template_fixtures.py
"""
import datetime as _dt
import json
import os
import sys
from pathlib import Path

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

ROOT = Path(__file__).resolve().parents[2]
TPL_DIR = ROOT / "tests" / "fixtures" / "templates"
ASSETS = Path(os.environ.get("HEARTH_ASSETS", ROOT / ".." / "shared" / "assets"))
FIXED_NOW = _dt.datetime(2024, 9, 5, 14, 7, 3)   # HEARTH_TEMPLATE_NOW=2024-09-05T14:07:03


class FrozenDateTime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


# strftime_now() in transformers calls the module-level name `datetime.now()`.
ctu.datetime = FrozenDateTime


def read_published(name):
    text = (TPL_DIR / f"{name}.jinja").read_text(encoding="utf-8")
    # The .jinja files end with one newline that the published strings don't have.
    # (jinja2 drops a single trailing newline anyway: keep_trailing_newline=False.)
    return text[:-1] if text.endswith("\n") else text


def read_asset(name):
    cfg = json.loads((ASSETS / "tokenizers" / name / "tokenizer_config.json").read_text(encoding="utf-8"))
    return cfg["chat_template"], cfg


def render(source, messages, agp, bos, eos, extra):
    kwargs = dict(extra or {})
    if bos is not None:
        kwargs["bos_token"] = bos
    if eos is not None:
        kwargs["eos_token"] = eos
    out, _ = ctu.render_jinja_template(
        conversations=[json.loads(json.dumps(messages))],
        chat_template=source,
        add_generation_prompt=agp,
        **kwargs,
    )
    return out[0]


def make_case(name, key, source, messages, agp, bos, eos, extra=None):
    case = {"name": name}
    case.update(key)
    case.update({"messages": messages, "add_generation_prompt": agp, "bos_token": bos, "eos_token": eos})
    if extra:
        case["extra"] = extra
    try:
        case["expected"] = render(source, messages, agp, bos, eos, extra)
    except jinja2.exceptions.TemplateError as e:
        case["expected_error"] = str(e)
        case["error_type"] = type(e).__name__
    except Exception as e:  # TypeError and friends from Python operations
        case["expected_error"] = str(e)
        case["error_type"] = type(e).__name__
    return case


# ---------------------------------------------------------------- conversations
U1 = {"role": "user", "content": "Hello! How are you?"}
A1 = {"role": "assistant", "content": "I'm well, thank you. How can I help?"}
U2 = {"role": "user", "content": "Write a haiku about autumn."}
SYS = {"role": "system", "content": "You are a helpful assistant."}
SPECIAL = {"role": "user", "content": (
    "Quotes ' and \" and `backticks`, braces {} and {{ not a tag }} and {% raw %} and {# hash #},\n"
    "a backslash \\ and \\n literally, a tab\there,\r\nCRLF, unicode: café, 日本語, Ελληνικά, emoji 🎉👩‍💻,\n"
    "  leading and trailing whitespace  \n\n")}
SPECIAL_A = {"role": "assistant", "content": "  <think>not really</think> Sure: {\"a\": [1, 2]} — done.  "}

CONVERSATIONS = {
    "single_user": [U1],
    "system_user": [SYS, U1],
    "multi_turn": [U1, A1, U2],
    "system_multi_turn": [SYS, U1, A1, U2],
    "assistant_last": [U1, A1],
    "special_chars": [SPECIAL, SPECIAL_A, {"role": "user", "content": "Thanks!\n"}],
    "empty_content": [{"role": "user", "content": ""}],
}
ERROR_CONVERSATIONS = {
    "user_user": [U1, U2],
    "assistant_first": [A1, U1],
    "system_user_user": [SYS, U1, U2],
    "system_in_middle": [U1, SYS, U2],
    "unknown_role": [U1, A1, {"role": "tool", "content": "42"}],
}

# ---------------------------------------------------------------- templates
# (name, bos, eos): the special tokens the real models use.
PUBLISHED = [
    ("llama-2-chat", "<s>", "</s>"),
    ("mistral-7b-instruct-v0.1", "<s>", "</s>"),
    ("mistral-7b-instruct-v0.2", "<s>", "</s>"),
    ("zephyr", "<s>", "</s>"),
    ("gemma-it", "<bos>", "<eos>"),
    ("gemma-3-it", "<bos>", "<eos>"),
    ("phi-3-mini-instruct", "<s>", "<|endoftext|>"),
    ("smollm2-instruct", "<|im_start|>", "<|im_end|>"),
    ("llama-3.1-instruct", "<|begin_of_text|>", "<|eot_id|>"),
    ("llama-3.2-instruct", "<|begin_of_text|>", "<|eot_id|>"),
    ("chatml", None, None),
]
ASSET_TEMPLATES = ["llama3_1", "qwen3"]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city (°C).",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                           "days": {"type": "integer", "minimum": 1, "maximum": 7.5}},
            "required": ["city"],
        },
    },
}
TOOL_CALL_CONV = [
    SYS,
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
    {"role": "tool", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
    {"role": "assistant", "content": "It is 21.5 °C and clear in Paris."},
    {"role": "user", "content": "And tomorrow?"},
]


def extra_cases(name, key, source, bos, eos):
    """Template-specific conversations beyond the common set."""
    out = []
    if name in ("llama-3.1-instruct", "llama-3.2-instruct"):
        out.append(make_case(f"{name}/date_string", key, source, [SYS, U1], True, bos, eos,
                             {"date_string": "01 Jan 2025"}))
        out.append(make_case(f"{name}/tools", key, source, TOOL_CALL_CONV, True, bos, eos,
                             {"tools": [WEATHER_TOOL]}))
        out.append(make_case(f"{name}/tools_in_system", key, source, TOOL_CALL_CONV, True, bos, eos,
                             {"tools": [WEATHER_TOOL], "tools_in_user_message": False}))
        out.append(make_case(f"{name}/tool_result_mapping", key, source,
                             [U1, {"role": "tool", "content": {"ok": True, "n": [1, 2.0, None]}}], True, bos, eos))
        out.append(make_case(f"{name}/two_tool_calls", key, source,
                             [U1, {"role": "assistant", "content": "", "tool_calls": [
                                 {"function": {"name": "a", "arguments": {}}},
                                 {"function": {"name": "b", "arguments": {}}}]}], False, bos, eos))
        out.append(make_case(f"{name}/tools_no_messages", key, source, [], False, bos, eos,
                             {"tools": [WEATHER_TOOL]}))
    if name == "llama-3.1-instruct":
        out.append(make_case(f"{name}/builtin_tools", key, source,
                             [SYS, {"role": "user", "content": "Search for the weather"},
                              {"role": "assistant", "content": "", "tool_calls": [
                                  {"function": {"name": "brave_search", "arguments": {"query": "weather"}}}]}],
                             False, bos, eos, {"builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"]}))
    if name == "gemma-3-it":
        out.append(make_case(f"{name}/content_parts", key, source,
                             [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                              {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " What is it? "}]}],
                             True, bos, eos))
    if name == "qwen3":
        out.append(make_case(f"{name}/no_thinking", key, source, [U1], True, bos, eos, {"enable_thinking": False}))
        out.append(make_case(f"{name}/thinking_in_content", key, source,
                             [U1, {"role": "assistant", "content": "<think>\nThe user greets me.\n</think>\n\nHi there!"}],
                             False, bos, eos))
        out.append(make_case(f"{name}/thinking_multi_turn", key, source,
                             [U1, {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHi there!"}, U2],
                             True, bos, eos))
        out.append(make_case(f"{name}/reasoning_content", key, source,
                             [U1, {"role": "assistant", "content": "Hi there!", "reasoning_content": "\nBe nice.\n"}],
                             False, bos, eos))
        out.append(make_case(f"{name}/tools", key, source, TOOL_CALL_CONV, True, bos, eos,
                             {"tools": [WEATHER_TOOL]}))
        out.append(make_case(f"{name}/tool_calls_string_args", key, source,
                             [U1, {"role": "assistant", "content": "Let me check.", "tool_calls": [
                                 {"id": "c1", "type": "function",
                                  "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
                                 {"name": "get_time", "arguments": {"tz": "CET"}}]},
                              {"role": "tool", "content": "cloudy"}, {"role": "tool", "content": "12:00"}],
                             True, bos, eos))
        out.append(make_case(f"{name}/multi_step_tool_response", key, source,
                             [U1, {"role": "assistant", "content": "<think>a</think>x"},
                              {"role": "user", "content": "<tool_response>\nok\n</tool_response>"},
                              {"role": "assistant", "content": "<think>\nb\n</think>\ny"}], False, bos, eos))
        out.append(make_case(f"{name}/system_later", key, source, [U1, SYS, U2], True, bos, eos))
    return out


def build_cases():
    cases = []
    sources = []
    for name, bos, eos in PUBLISHED:
        sources.append((name, {"template": name}, read_published(name), bos, eos))
    asset_cfgs = {}
    for name in ASSET_TEMPLATES:
        src, cfg = read_asset(name)
        asset_cfgs[name] = cfg

        def tok(v):
            return v["content"] if isinstance(v, dict) else v
        sources.append((name, {"template": f"asset:{name}"}, src, tok(cfg.get("bos_token")), tok(cfg.get("eos_token"))))

    for name, key, src, bos, eos in sources:
        for conv_name, conv in CONVERSATIONS.items():
            for agp in (False, True):
                cases.append(make_case(f"{name}/{conv_name}/{'gen' if agp else 'nogen'}", key, src, conv, agp, bos, eos))
        for conv_name, conv in ERROR_CONVERSATIONS.items():
            cases.append(make_case(f"{name}/{conv_name}", key, src, conv, True, bos, eos))
        cases.extend(extra_cases(name, key, src, bos, eos))
    return cases, sources


def cross_check_assets(cases, sources):
    """The asset templates through the tokenizer's own apply_chat_template."""
    from transformers import AutoTokenizer
    n = 0
    for name in ASSET_TEMPLATES:
        tok = AutoTokenizer.from_pretrained(str(ASSETS / "tokenizers" / name))
        for c in cases:
            if c.get("template") != f"asset:{name}" or "expected" not in c:
                continue
            kw = dict(c.get("extra", {}))
            got = tok.apply_chat_template(json.loads(json.dumps(c["messages"])), tokenize=False,
                                          add_generation_prompt=c["add_generation_prompt"], **kw)
            assert got == c["expected"], (c["name"], got, c["expected"])
            n += 1
    return n


# ---------------------------------------------------------------- snippets
MSGS = [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]
D = {"b": 2, "a": 1, "nested": {"x": [1, 2, {"y": "z"}]}, "items": "key named items"}
SNIPPETS = [
    # output of values
    ("{{ 1 }} {{ -3 }} {{ 1.0 }} {{ 2.5e-3 }} {{ 1e20 }} {{ 1e16 }} {{ 1e15 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.125 }}", {}),
    ("{{ none }} {{ true }} {{ false }} {{ True }} {{ None }} {{ undefined_thing }}|", {}),
    ("{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }} {{ {'a': 1, 'b': 'x'} }} {{ (1,) }} {{ ('a', \"b'\") }} {{ () }}", {}),
    ("{{ ['it\\'s', 'say \"hi\"', 'both \\' \"', 'tab\\tnl\\n\\\\'] }}", {}),
    ("{{ 'a' 'b' \"c\" }} {{ '\\u00e9\\x41\\101\\n' }}|{{ '\\d\\q' }}", {}),
    # arithmetic
    ("{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }}", {}),
    ("{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 + 2.0 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 10 / 5 }} {{ -2 ** 2 }} {{ 3 - -1 }} {{ +4 }}", {}),
    ("{{ 'ab' * 3 }} {{ 2 * 'xy' }} {{ [1, 2] * 2 }} {{ 'a' * 0 }}|{{ [1] + [2, 3] }} {{ 'a' + 'b' }} {{ true + 1 }} {{ 1 ~ 2 ~ 'x' ~ none }}", {}),
    ("{{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 2 * 3 % 4 }}", {}),
    # comparisons and logic
    ("{{ 1 == 1.0 }} {{ 1 == true }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' != 'a' }} {{ none == none }}", {}),
    ("{{ 'b' in 'abc' }} {{ 'z' not in 'abc' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 1 in [true] }} {{ not 1 in [2] }}", {}),
    ("{{ 0 or 'x' }} {{ 'y' and 0 }} {{ '' or [] }} {{ none or none }}|{{ not '' }} {{ not 'a' }} {{ 1 and 2 }}", {}),
    ("{{ 'yes' if x else 'no' }} {{ 'yes' if y else 'no' }} [{{ 'only' if y }}] {{ 'a' if false else 'b' if false else 'c' }}", {"x": [0], "y": []}),
    ("{% if [] %}1{% elif {} %}2{% elif '' %}3{% elif 0.0 %}4{% elif none %}5{% elif [0] %}6{% else %}7{% endif %}", {}),
    # subscripts and slices
    ("{{ s[0] }} {{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[::2] }} {{ s[-3:] }} {{ s[:-2] }} {{ s[10:] }}|{{ s[5:1:-1] }}", {"s": "héllo wörld"}),
    ("{{ l[0] }} {{ l[-1] }} {{ l[1:] }} {{ l[::-1] }} {{ l[-2:] }} {{ l[1:-1] }} {{ l[::-2] }} {{ l[100] }}|{{ l[-100:100] }}", {"l": [1, 2, 3, 4, 5]}),
    ("{{ d.a }} {{ d['b'] }} {{ d.nested.x[2].y }} {{ d['nested']['x'][0] }} {{ d['items'] }} {{ d.missing }}|{{ d.missing is defined }}", {"d": D}),
    ("{{ messages[0].content }} {{ messages[-1]['role'] }} {{ messages[1:] | length }} {{ messages[5] is defined }}", {"messages": MSGS}),
    # loops
    ("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {"messages": MSGS}),
    ("{% for m in messages if m.role != 'system' %}{{ loop.index }}:{{ m.content }}/{{ loop.length }} {% endfor %}", {"messages": MSGS}),
    ("{% for m in messages %}{{ loop.previtem.content if loop.previtem is defined else '-' }}>{{ loop.nextitem.role if not loop.last }} {% endfor %}", {"messages": MSGS}),
    ("{% for x in [] %}x{% else %}empty{% endfor %} {% for x in 'ab' %}{{ x }}{% else %}never{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k in d %}{{ k }},{% endfor %} {% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}", {"d": {"x": 1, "y": "z"}}),
    ("{% for i in range(3) %}{{ i }}{% endfor %} {% for i in range(2, 8, 2) %}{{ i }}{% endfor %} {% for i in range(5, 0, -2) %}{{ i }}{% endfor %}", {}),
    ("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}", {}),
    ("{% for row in [[1, 2], [3]] %}{% for c in row %}{{ loop.index }}{{ c }}{% endfor %}|{{ loop.index }}{% endfor %}", {}),
    ("{% for i in [1, 2] %}{{ loop.cycle('odd', 'even') }}{% endfor %}", {}),
    # scoping and namespace
    ("{% set x = 1 %}{% for i in [1, 2] %}[{{ x }}]{% set x = i * 10 %}({{ x }}){% endfor %}{{ x }}", {}),
    ("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", {}),
    ("{% set ns = namespace(total=0, names=[]) %}{% for m in messages %}{% set ns.total = ns.total + 1 %}{% set ns.names = ns.names + [m.role] %}{% endfor %}{{ ns.total }} {{ ns.names | join(',') }}", {"messages": MSGS}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = (3, 4) %}{% set c, d = t %}{{ c + d }}", {}),
    ("{% set block %}  inner {{ 1 + 1 }}  {% endset %}[{{ block }}] {% set up | upper %}shout{% endset %}{{ up }}", {}),
    ("{% set messages = messages[1:] %}{{ messages | length }} {{ messages[0].role }}", {"messages": MSGS}),
    ("{% with a = 5 %}{{ a }}{% endwith %}[{{ a }}]", {}),
    # macros and call blocks
    ("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', '?') }} {{ greet(punct='.', name='Cy') }}", {}),
    ("{% set x = 5 %}{% macro show() %}{{ x }}{% endmacro %}{% set x = 6 %}{{ show() }}", {}),
    ("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 }}{% endcall %}", {}),
    ("{% macro render(m) %}{{ m.role | upper }}: {{ m.content }}\n{% endmacro %}{% for m in messages %}{{ render(m) }}{% endfor %}", {"messages": MSGS}),
    # tests
    ("{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ none is none }} {{ x is none }} {{ 'a' is string }} {{ 1 is string }}", {"x": 1}),
    ("{{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }}", {}),
    ("{{ {} is mapping }} {{ [] is mapping }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ [] is sequence }} {{ 'x' is sequence }} {{ {} is iterable }} {{ u is iterable }}", {}),
    ("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }} {{ 'a' is equalto 'a' }} {{ 2 is eq 3 }} {{ 1 is in [1] }} {{ 'abc' is lower }} {{ 'ABC' is upper }}", {}),
    ("{{ x is not defined }} {{ x is not none }} {{ 1 is ge 1 }} {{ 1 is lt 0 }} {{ 1 is sameas 1 }} {{ none is sameas none }} {{ range is callable }}", {}),
    # string methods
    ("[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.strip(' x') }}][{{ '\\u3000a\\xa0'.strip() }}]", {"s": "  x hi x  "}),
    ("{{ s.startswith('ab') }} {{ s.endswith('yz') }} {{ s.startswith(('q', 'a')) }} {{ s.upper() }} {{ 'ÀÉ'.lower() }} {{ 'straße'.upper() }}", {"s": "abc xyz"}),
    ("{{ 'a,b,,c'.split(',') }} {{ '  a b\\n c  '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a-b-c'.rsplit('-', 1) }} {{ ''.split(',') }} {{ ''.split() }}", {}),
    ("{{ 'hello world'.title() }} {{ \"they're bill's\".title() }} {{ 'hELLO wORLD'.capitalize() }} {{ 'aaa'.replace('a', 'b', 2) }} {{ 'abc'.replace('', '-') }}", {}),
    ("{{ '{} and {}'.format(1, 'x') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '{name}!'.format(name='N') }} {{ '{{}}'.format() }}", {}),
    ("{{ ', '.join(['a', 'b']) }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abcabc'.count('bc') }} {{ '123'.isdigit() }} {{ 'a1'.isalnum() }} {{ 'a\\nb\\r\\nc'.splitlines() }}", {}),
    ("{{ 'xxabcxx'.removeprefix('xx') }} {{ 'xxabcxx'.removesuffix('xx') }} {{ ' '.isspace() }} {{ 'Ab'.islower() }}", {}),
    # dict methods
    ("{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }}", {"d": {"a": 1, "b": [2]}}),
    ("{{ d.items is callable }} {{ d['items'] }} {{ d.keys is callable }}", {"d": {"items": 3}}),
    # filters
    ("[{{ '  pad  ' | trim }}] [{{ 'xxpadxx' | trim('x') }}] {{ [1, 2, 3] | length }} {{ 'héllo' | length }} {{ {'a': 1} | count }} {{ u | length }}", {}),
    ("{{ u | default('dflt') }} {{ '' | default('dflt') }} {{ '' | default('dflt', true) }} {{ none | d('n') }} {{ x | default('no') }}", {"x": 0}),
    ("{{ ['a', 'b'] | join }} {{ [1, 2] | join(', ') }} {{ messages | map(attribute='role') | join('|') }} {{ messages | join(',', attribute='content') }}", {"messages": MSGS}),
    ("{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'abc' | first }} {{ 'abc' | last }} {{ [] | first is defined }}", {}),
    ("{{ 'ab' | upper }} {{ 'AB' | lower }} {{ 'hello wORLD-x' | title }} {{ 'hELLO' | capitalize }} {{ 'aXa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 1) }}", {}),
    ("{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ messages | rejectattr('role', 'eq', 'user') | list | length }}", {"messages": MSGS}),
    ("{{ ms | selectattr('tool_calls', 'defined') | list | length }} {{ ms | selectattr('tool_calls', 'undefined') | list | length }} {{ ms | selectattr('content') | list | length }}", {"ms": [{"content": "a", "tool_calls": []}, {"content": ""}]}),
    ("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('even') | list }} {{ ['a', '', 'b'] | select | list }} {{ [1, 5, 2] | select('gt', 1) | list }}", {}),
    ("{{ ['a', 'B', 'b', 'A', 'c'] | unique | list }} {{ ['a', 'A'] | unique(case_sensitive=true) | list }} {{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }}", {}),
    ("{{ 'abc' | list }} {{ {'a': 1, 'b': 2} | list }} {{ 'abc' | reverse }} {{ [1, 2, 3] | reverse | list }} {{ (1, 2) | list }}", {}),
    ("{{ '42' | int }} {{ '4.7' | int }} {{ 4.7 | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ '3.5' | float }} {{ 3 | float }} {{ 42 | string }} {{ [1] | string }} {{ -5 | abs }}", {}),
    ("{{ d | items | list }} {% for k, v in d | items %}{{ k }}{{ v }}{% endfor %} {{ u | items | list }}", {"d": {"x": 1, "y": 2}}),
    ("{{ [1, 2, 3] | sum }} {{ messages | map(attribute='content') | map('upper') | join }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ ['b', 'A'] | max }}", {"messages": MSGS}),
    ("{{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | safe }} {{ d | attr('a') }} {{ 'a\\nb\\n\\nc' | indent }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}", {"d": {"a": 1}}),
    ("{{ x | tojson }}", {"x": {"a": [1, 2.5, "é\n\"\\/\t\u0001", None, True, False], "b": {}, "c": [], "d": -0.0, "e": 1e100}}),
    ("{{ x | tojson(indent=2) }}|{{ x | tojson(indent=0) }}|{{ [] | tojson(indent=2) }}|{{ x | tojson(sort_keys=true) }}", {"x": {"z": [1, {"y": []}], "a": {"k": "v"}}}),
    ("{{ x | tojson(separators=(',', ':')) }} {{ x | tojson(ensure_ascii=true) }} {{ 'str' | tojson }} {{ 3 | tojson }} {{ none | tojson }} {{ (1, 'a') | tojson }}", {"x": {"é": "日本🎉", "k": [1, 2]}}),
    ("{{ messages | tojson }}", {"messages": MSGS}),
    # globals
    ("{{ raise_exception('custom failure: ' ~ 42) }}", {}),
    ("{% if messages | length > 2 %}{{ raise_exception('Too many messages') }}{% endif %}", {"messages": MSGS}),
    ("{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M:%S') }} {{ strftime_now('%A %B %-d %j %I%p %y %e %%') }}", {}),
    ("{{ dict(a=1, b='x') }} {{ namespace(a=1).a }} {{ date_string is defined }} {{ tools }} {{ documents }}", {}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    # whitespace control
    ("a  {{- ' b ' -}}  c\n  {{ 'd' }}  \n  {%- if true -%}  e  {%- endif -%}  \n f", {}),
    ("line1\n    {% if true %}\n    inside\n    {% endif %}\nline2\n  {# comment #}\nline3\n\t{%+ if true %}keep{% endif %}\n", {}),
    ("{% for i in [1, 2] %}\n  {{ i }}\n{% endfor %}\n{% raw %}  {{ not rendered }} {% if %}{% endraw %}\n{#- c -#}\n  end", {}),
    ("x {%- raw -%}  {{ raw }}  {%- endraw -%} y", {}),
    ("crlf\r\nline\rline\r\n{% if true %}\r\n  a\r\n{% endif %}\r\n", {}),
    ("a\n\n", {}),
    ("{{ 'x' }}\n{{ 'y' }}\n{% if true %}{% endif %}\nz", {}),
    ("  {%- if true %} a{% endif %}   \n   {{- 'b' }}", {}),
    # printf-style formatting, odd subscripts, filters unknown only in untaken branches
    ("{{ '%s-%d|%5s|%-4d|%05.1f|%x|%r|%+d|%%' % ('a', 3.9, 'b', 7, 2.345, 255, 'q', 5) }} {{ 'abc' % [1] }} {{ '%(a)s!' % {'a': 1} }} [{{ '%s' % u }}]", {}),
    ("{{ '%s %s' % ('a',) }}", {}),
    ("{{ 'x' % 5 }}", {}),
    ("[{{ l[] }}] [{{ d['a', 'b'] }}] {{ u is callable }} {{ l[1,] is defined }}", {"l": [1, 2], "d": {"a": 1}}),
    ("{% if false %}{{ x | no_such_filter }}{% elif x is no_such_test %}{% endif %}{{ 1 if true else 2 | no_such_filter }}ok", {}),
    ("{% if true %}{{ 1 | no_such_filter }}{% endif %}", {}),
    ("{% if false %}{% for i in [] %}{{ i | no_such_filter }}{% endfor %}{% endif %}", {}),
    ("{{ u | int }}", {}),
    # undefined semantics and errors
    ("[{{ u }}] [{{ u ~ 'x' }}] {{ u | length }} {{ u | default('d') }} {{ u is defined }} {% for x in u %}no{% endfor %}{% if u %}no{% else %}falsy{% endif %} {{ u == u }}", {}),
    ("{{ u.attr }}", {}),
    ("{{ u + 1 }}", {}),
    ("{{ d.missing.deeper }}", {"d": {}}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 5 % 0 }}", {}),
    ("{{ none.attr }}|{{ 'abc'.nope }}|{{ (5).x }}", {}),
    ("{{ [1] | last }} {{ 'x' | tojson }} {{ u | tojson }}", {}),
    ("{% for x in none %}{% endfor %}", {}),
    ("{{ ns.x }}{% set ns = namespace(x=1) %}{% set ns.y = 2 %}{{ ns.y }}", {}),
    ("{% set d = {'a': 1} %}{% set d.b = 2 %}", {}),
    ("{{ x.role }}", {"x": "string"}),
    ("{{ 'x' in none }}", {}),
    ("{{ [1, 2] + none }}", {}),
]


def build_snippets():
    out = []
    for i, (src, variables) in enumerate(SNIPPETS):
        variables = dict(variables)
        messages = variables.pop("messages", [])
        case = make_case(f"snippet-{i:03d}", {"source": src}, src, messages, False, None, None, variables)
        out.append(case)
    return out


def write_cli_fixtures(cases):
    """Files for tests/test-cli-template.sh (which has no JSON parser at hand):
    the messages of one conversation and the expected prompts, byte for byte."""
    out = TPL_DIR / "cli"
    out.mkdir(exist_ok=True)
    conv = "special_chars"
    wanted = {
        "qwen3-gen.txt": f"qwen3/{conv}/gen",
        "llama3_1-nogen.txt": f"llama3_1/{conv}/nogen",
        "chatml-gen.txt": f"chatml/{conv}/gen",
    }
    by_name = {c["name"]: c for c in cases}
    (out / "messages.json").write_bytes(
        (json.dumps(CONVERSATIONS[conv], ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    for file, name in wanted.items():
        (out / file).write_bytes(by_name[name]["expected"].encode("utf-8"))


def main():
    cases, sources = build_cases()
    write_cli_fixtures(cases)
    n_cross = cross_check_assets(cases, sources)
    snippets = build_snippets()
    for path, data in ((TPL_DIR / "cases.json", cases), (TPL_DIR / "snippets.json", snippets)):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
    n_err = sum("expected_error" in c for c in cases)
    print(f"cases.json: {len(cases)} cases ({n_err} errors), {n_cross} asset cases cross-checked via apply_chat_template")
    print(f"snippets.json: {len(snippets)} snippets ({sum('expected_error' in c for c in snippets)} errors)")
    print(f"transformers {transformers.__version__}, jinja2 {jinja2.__version__}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
