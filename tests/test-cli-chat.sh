#!/bin/sh
# hearth-cli chat over stdin: on stories260K it answers each line, keeps the
# conversation in the KV cache (the second turn runs only its new tokens),
# /reset forgets it (the same question then gets the same prompt and reply),
# a full context drops the oldest turns, and EOF exits 0; bad input is a
# one-line error. With SmolLM2-135M-Instruct
# (skipped when absent): a greedy two-turn conversation whose second answer
# needs the first, and Ctrl-C stops a reply without ending the chat.
set -u
cli="$1"
assets="${HEARTH_ASSETS:-}"
model="$assets/models/stories260K/hf_f32"
[ -d "$model" ] || { echo "SKIP: $model is absent"; exit 77; }
fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

printf 'Hello there\nTell me a story\n/reset\nHello there\n' |
    "$cli" chat -m "$model" -n 24 --temp 0 --stats >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: chat exited $rc at EOF"; cat "$tmp/err"; fail=1; }
[ "$(grep -c '^turn [0-9]*: prompt' "$tmp/err")" -eq 3 ] || { echo "FAIL: not three replies:"; cat "$tmp/err"; fail=1; }
[ -s "$tmp/out" ] || { echo "FAIL: no reply on stdout"; fail=1; }
grep -q '^> ' "$tmp/out" && { echo "FAIL: a prompt marker with stdin not a terminal"; fail=1; }
field() { sed -n "s/^turn $1: prompt \([0-9]*\) tokens (\([0-9]*\) run).*/\\$2/p" "$tmp/err"; }
p1=$(field 1 1); p2=$(field 2 1); run2=$(field 2 2); p3=$(field 3 1)
[ -n "$p1" ] && [ -n "$p2" ] && [ "$p2" -gt "$p1" ] || { echo "FAIL: turn 2 prompt ($p2) does not hold turn 1 ($p1)"; fail=1; }
[ -n "$run2" ] && [ $((p2 - run2)) -ge "$p1" ] || { echo "FAIL: turn 2 ran $run2 of $p2 tokens: turn 1 was not reused from the cache"; fail=1; }
[ "$p3" = "$p1" ] || { echo "FAIL: after /reset the prompt has $p3 tokens, the first had $p1"; fail=1; }
# Greedy: the reply after /reset is the first one again (replies are one
# paragraph each here; compare the first line).
first=$(head -n 1 "$tmp/out")
grep -c -x -F "$first" "$tmp/out" | grep -q '^2$' || { echo "FAIL: the reply after /reset differs:"; cat "$tmp/out"; fail=1; }

# /exit quits at once with 0; an unknown command is reported, not sent.
printf '/bogus\n/exit\nHello\n' | "$cli" chat -m "$model" -n 8 --stats >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: /exit: exit status $rc"; fail=1; }
grep -q "unknown command '/bogus'" "$tmp/err" || { echo "FAIL: /bogus not reported"; cat "$tmp/err"; fail=1; }
grep -q '^turn ' "$tmp/err" && { echo "FAIL: a line after /exit was answered"; fail=1; }

# A small context: the oldest turns are dropped and the chat goes on; a
# message too long for the context alone is refused (exit 1 at EOF), and
# the next one is answered.
printf 'Hello there my friend\nTell me a story about a cat\nAnd a dog too\nWhat about a bird\n' |
    "$cli" chat -m "$model" --ctx 128 -n 24 --temp 0 --stats --system "You tell stories." >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: small context: exit status $rc"; cat "$tmp/err"; fail=1; }
[ "$(grep -c '^turn [0-9]*: prompt' "$tmp/err")" -eq 4 ] || { echo "FAIL: small context: not four replies"; cat "$tmp/err"; fail=1; }
grep -q 'oldest messages were dropped' "$tmp/err" || { echo "FAIL: small context: nothing dropped"; cat "$tmp/err"; fail=1; }
{ printf '%0300d' 0 | sed 's/0/word /g'; printf '\nHello\n'; } |
    "$cli" chat -m "$model" --ctx 128 -n 8 --stats >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] || { echo "FAIL: too long a message: exit status $rc"; fail=1; }
grep -q "too long for this model's context of 128 tokens" "$tmp/err" || { echo "FAIL: too long a message:"; cat "$tmp/err"; fail=1; }
grep -q '^turn 1:' "$tmp/err" || { echo "FAIL: no answer after the refused message"; cat "$tmp/err"; fail=1; }

# A reasoning model's template: --no-think reaches it as enable_thinking = false (this one adds a line for
# it, so the prompt is longer); a prompt it ends inside a thinking block gets a reply that starts with
# "<think>" and is not cut at -n (stories260K never writes "</think>": only the context stops it).
think="$tmp/think"
mkdir "$think"
for f in config.json tokenizer.json model.safetensors; do ln -s "$model/$f" "$think/$f"; done
printf '%s' '{"chat_template": "{% for m in messages %}{{ m.content }}\n{% endfor %}{% if enable_thinking is defined and enable_thinking is false %}Once upon a time there was no thinking.\n{% endif %}"}' \
    >"$think/tokenizer_config.json"
printf 'Hello\n' | "$cli" chat -m "$think" -n 8 --temp 0 --stats >/dev/null 2>"$tmp/err"
with=$(sed -n 's/^turn 1: prompt \([0-9]*\) tokens.*/\1/p' "$tmp/err")
printf 'Hello\n' | "$cli" chat -m "$think" -n 8 --temp 0 --stats --no-think >/dev/null 2>"$tmp/err"
without=$(sed -n 's/^turn 1: prompt \([0-9]*\) tokens.*/\1/p' "$tmp/err")
[ -n "$with" ] && [ -n "$without" ] && [ "$without" -ge $((with + 5)) ] ||
    { echo "FAIL: --no-think did not reach the template: prompt $with, then $without tokens"; fail=1; }
printf '%s' '{"chat_template": "{% for m in messages %}{{ m.content }}\n{% endfor %}<think>\n"}' >"$think/tokenizer_config.json"
printf 'Hello\n' | "$cli" chat -m "$think" --ctx 128 -n 8 --temp 0 >"$tmp/out" 2>"$tmp/err"
head -c 8 "$tmp/out" | grep -q '^<think>' || { echo "FAIL: the reply does not open its thinking block:"; head -c 80 "$tmp/out"; fail=1; }
[ "$(wc -w <"$tmp/out")" -gt 12 ] || { echo "FAIL: the thinking was cut at -n 8:"; cat "$tmp/out"; fail=1; }

expect_error() { # args: description, expected text, command... (stdin empty)
    desc=$1; text=$2; shift 2
    err=$("$@" 2>&1 >/dev/null </dev/null); rc=$?
    if [ $rc -eq 0 ] || [ $rc -gt 2 ]; then echo "FAIL: $desc: exit status $rc"; fail=1; fi
    case "$err" in *"$text"*) ;; *) echo "FAIL: $desc: message '$err' lacks '$text'"; fail=1 ;; esac
    [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "FAIL: $desc: not one line: '$err'"; fail=1; }
}
expect_error "no -m" "-m NAME|DIR is required" "$cli" chat
expect_error "unknown name" "hearth-cli models list" env HEARTH_MODELS_DIR="$tmp" "$cli" chat -m no-such-model
expect_error "missing dir" "config.json" "$cli" chat -m /nonexistent
expect_error "bad top-p" "out of range" "$cli" chat -m "$model" --top-p 0

# SmolLM2-135M-Instruct, a real chat model with a ChatML template.
smol="${HEARTH_SMOLLM2_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth-test-models/smollm2-135m-instruct}"
if [ ! -f "$smol/model.safetensors" ]; then
    echo "SmolLM2-135M-Instruct is absent ($smol): its part is skipped"
    exit $fail
fi
printf 'What is the capital of France?\nWhat is a famous tower in that city?\n' |
    "$cli" chat -m "$smol" -n 48 --temp 0 --stats >"$tmp/out" 2>"$tmp/err"
rc=$?
echo "SmolLM2 replies:"; cat "$tmp/out"
[ $rc -eq 0 ] || { echo "FAIL: SmolLM2 chat exited $rc"; cat "$tmp/err"; fail=1; }
[ "$(grep -c '^turn [0-9]*: prompt' "$tmp/err")" -eq 2 ] || { echo "FAIL: not two SmolLM2 replies"; cat "$tmp/err"; fail=1; }
grep -q 'hearth-cli chat:' "$tmp/err" && { echo "FAIL: SmolLM2 chat wrote an error or warning"; cat "$tmp/err"; fail=1; }
# The second question says only "that city": Paris must come from turn 1.
[ "$(grep -c 'Paris' "$tmp/out")" -ge 2 ] || { echo "FAIL: the second answer does not build on the first"; fail=1; }

# Ctrl-C (SIGINT) during a long reply stops it; the next line is answered.
mkfifo "$tmp/in" || exit 1
"$cli" chat -m "$smol" -n 400 --temp 0 --stats <"$tmp/in" >"$tmp/out3" 2>"$tmp/err3" &
pid=$!
exec 3>"$tmp/in"
echo 'Write a long essay about the history of Rome.' >&3
i=0
while [ ! -s "$tmp/out3" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
i=0
while ! grep -q '^turn 1:' "$tmp/err3" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
echo 'What is the capital of France?' >&3
exec 3>&-
wait $pid
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: chat after Ctrl-C exited $rc"; cat "$tmp/err3"; fail=1; }
grep -q '^turn 1:.*stopped: cancelled' "$tmp/err3" || { echo "FAIL: Ctrl-C did not stop the reply"; cat "$tmp/err3"; fail=1; }
grep -q '^turn 2:.*stopped: eos' "$tmp/err3" || { echo "FAIL: no reply after Ctrl-C"; cat "$tmp/err3"; fail=1; }
grep -q 'Paris' "$tmp/out3" || { echo "FAIL: the reply after Ctrl-C lacks Paris"; cat "$tmp/out3"; fail=1; }
exit $fail
