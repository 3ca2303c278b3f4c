#!/bin/sh
# hearth-cli template: renders a model directory's chat template exactly as
# transformers does (expected prompts from tests/reference/make_template_fixtures.py,
# tests/fixtures/templates/cli/), with no newline added; a model without a
# template gets ChatML and a warning; usage and file errors have exit codes.
# Usage: test-cli-template.sh HEARTH_CLI FIXTURE_DIR   (SKIP 77 without assets)
set -u
cli="$1"; fixtures="$2/cli"
assets="${HEARTH_ASSETS:-}"
tok="$assets/tokenizers"
if [ -z "$assets" ] || [ ! -f "$tok/qwen3/tokenizer_config.json" ] || [ ! -f "$tok/llama3_1/tokenizer_config.json" ]; then
    echo "SKIP: tokenizer assets not found under '${assets}'"
    exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

"$cli" template -m "$tok/qwen3" --messages "$fixtures/messages.json" --add-generation-prompt >"$tmp/qwen3" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "qwen3 exited $rc: $(cat "$tmp/err")"
check 'cmp "$tmp/qwen3" "$fixtures/qwen3-gen.txt"' "qwen3 rendering differs from transformers"
check '[ ! -s "$tmp/err" ]' "qwen3 printed on stderr: $(cat "$tmp/err")"

"$cli" template -m "$tok/llama3_1" --messages - <"$fixtures/messages.json" >"$tmp/llama" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "llama3_1 exited $rc: $(cat "$tmp/err")"
check 'cmp "$tmp/llama" "$fixtures/llama3_1-nogen.txt"' "llama3_1 rendering (messages on stdin) differs from transformers"

# No chat template: ChatML, with a warning.
if [ -f "$tok/spm32k-llama2/tokenizer_config.json" ]; then
    "$cli" template -m "$tok/spm32k-llama2" --messages "$fixtures/messages.json" --add-generation-prompt \
        >"$tmp/chatml" 2>"$tmp/err"
    rc=$?
    check '[ $rc -eq 0 ]' "ChatML fallback exited $rc"
    check 'cmp "$tmp/chatml" "$fixtures/chatml-gen.txt"' "ChatML fallback rendering differs"
    check 'grep -q "no chat template; using ChatML" "$tmp/err"' "no ChatML warning on stderr"
fi

# A chat_template.jinja beside tokenizer_config.json wins; a list of templates uses "default".
mkdir "$tmp/model"
printf '{"bos_token": {"content": "<B>", "lstrip": false}, "eos_token": "<E>", "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "{{ bos_token }}{%% for m in messages %%}{{ m.role }}{%% endfor %%}{{ eos_token }}"}]}' \
    >"$tmp/model/tokenizer_config.json"
printf '[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]' >"$tmp/m.json"
out=$("$cli" template -m "$tmp/model" --messages "$tmp/m.json")
check '[ "$out" = "<B>userassistant<E>" ]' "template list / AddedToken bos: '$out'"
printf '{{ "J:" ~ messages | length }}\n' >"$tmp/model/chat_template.jinja"
out=$("$cli" template -m "$tmp/model" --messages "$tmp/m.json")
check '[ "$out" = "J:2" ]' "chat_template.jinja not preferred: '$out'"

# Errors: the template's raise_exception message, a syntax error, bad input, usage.
printf '{{ raise_exception("Conversation roles must alternate") }}' >"$tmp/model/chat_template.jinja"
"$cli" template -m "$tmp/model" --messages "$tmp/m.json" >/dev/null 2>"$tmp/err"
rc=$?
check '[ $rc -eq 1 ] && grep -q "Conversation roles must alternate" "$tmp/err"' "raise_exception: rc $rc, $(cat "$tmp/err")"
printf '{%% if x %%}' >"$tmp/model/chat_template.jinja"
"$cli" template -m "$tmp/model" --messages "$tmp/m.json" >/dev/null 2>"$tmp/err"
rc=$?
check '[ $rc -eq 1 ] && grep -q "unclosed" "$tmp/err"' "syntax error: rc $rc, $(cat "$tmp/err")"
printf '{"role": "user"}' >"$tmp/bad.json"
"$cli" template -m "$tok/qwen3" --messages "$tmp/bad.json" >/dev/null 2>&1
check '[ $? -eq 1 ]' "messages that are not an array should exit 1"
"$cli" template -m "$tmp/no-such-dir" --messages "$tmp/m.json" >/dev/null 2>&1
check '[ $? -eq 1 ]' "a missing model dir should exit 1"
"$cli" template -m "$tok/qwen3" >/dev/null 2>&1
check '[ $? -eq 2 ]' "missing --messages should exit 2"
exit $fail
