#!/bin/sh
# hearth-cli generate --ids on stories260K reproduces the published greedy ids;
# -m takes the names 'hearth-cli models list' prints (a path that exists
# wins); --stats go to stderr on a line of their own; bad input gives a clear
# error and a non-zero exit, never a crash.
set -u
cli="$1"
case "$cli" in /*) ;; *) cli="$(pwd)/$cli" ;; esac
assets="${HEARTH_ASSETS:-}"
model="$assets/models/stories260K/hf_f32"
[ -d "$model" ] || { echo "SKIP: $model is absent"; exit 77; }
fail=0

out=$("$cli" generate -m "$model" --prompt-ids 1 -n 256 --kv f32 --ids) || { echo "FAIL: generate exited $?"; exit 1; }
want=$(tr -s ' \n' '  ' < "$assets/models/stories260K/greedy_ref_ids.txt" | sed 's/ *$//')
if [ "$out" != "$want" ]; then
    echo "FAIL: greedy ids differ"; echo "got:  $out" | cut -c1-200; echo "want: $want" | cut -c1-200; fail=1
fi

# Same seed, same sample; sampling options accepted.
a=$("$cli" generate -m "$model" -n 40 --temp 0.9 --top-k 40 --top-p 0.95 --min-p 0.05 --seed 123 --ids)
b=$("$cli" generate -m "$model" -n 40 --temp 0.9 --top-k 40 --top-p 0.95 --min-p 0.05 --seed 123 --ids)
[ -n "$a" ] && [ "$a" = "$b" ] || { echo "FAIL: seeded sampling is not reproducible: '$a' vs '$b'"; fail=1; }

expect_error() { # args: description, expected text, command...
    desc=$1; text=$2; shift 2
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 0 ] || [ $rc -gt 2 ]; then echo "FAIL: $desc: exit status $rc"; fail=1; fi
    case "$err" in *"$text"*) ;; *) echo "FAIL: $desc: message '$err' lacks '$text'"; fail=1 ;; esac
}
expect_error "missing model dir" "config.json" "$cli" generate -m /nonexistent --ids
expect_error "token out of vocab" "outside the vocabulary" "$cli" generate -m "$model" --prompt-ids 1,99999 --ids
expect_error "bad id list" "not a token id" "$cli" generate -m "$model" --prompt-ids 1,x --ids
expect_error "no -m" "-m MODEL_DIR" "$cli" generate --ids
# NaN compares false: every sampling option is range-checked so that NaN fails.
expect_error "temperature NaN" "out of range" "$cli" generate -m "$model" --temp nan --ids
expect_error "top-p NaN" "out of range" "$cli" generate -m "$model" --top-p nan --ids
expect_error "repeat penalty inf" "out of range" "$cli" generate -m "$model" --repeat-penalty inf --ids

# Model names: import into the default models folder (under XDG_DATA_HOME),
# then -m NAME works for generate and the other commands taking a model.
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
export XDG_DATA_HOME="$tmp/data"
unset HEARTH_MODELS_DIR
"$cli" models import "$model" --name tiny-stories >/dev/null 2>&1 || { echo "FAIL: models import"; exit 1; }
"$cli" models list 2>/dev/null | grep -q '^tiny-stories ' || { echo "FAIL: 'models list' lacks tiny-stories"; fail=1; }
by_name=$("$cli" generate -m tiny-stories --prompt-ids 1 -n 40 --kv f32 --ids) || { echo "FAIL: generate -m NAME exited $?"; fail=1; }
by_path=$("$cli" generate -m "$model" --prompt-ids 1 -n 40 --kv f32 --ids)
[ -n "$by_name" ] && [ "$by_name" = "$by_path" ] || { echo "FAIL: -m NAME gave '$by_name', the path '$by_path'"; fail=1; }
"$cli" tokenize -m tiny-stories --text "Once upon a time" >/dev/null || { echo "FAIL: tokenize -m NAME"; fail=1; }
"$cli" perplexity -m tiny-stories -f "$0" --ctx 32 >/dev/null 2>&1 || { echo "FAIL: perplexity -m NAME"; fail=1; }
expect_error "unknown model name" "hearth-cli models list" "$cli" generate -m no-such-model --ids
expect_error "unknown name (bench)" "hearth-cli models list" "$cli" bench -m no-such-model
expect_error "unknown name (quantize -i)" "hearth-cli models list" "$cli" quantize -i no-such-model -o "$tmp/q"
# A path that exists wins over a name: here an empty folder of that name.
mkdir "$tmp/cwd" "$tmp/cwd/tiny-stories"
start=$(pwd)
cd "$tmp/cwd" && expect_error "path before name" "config.json" "$cli" generate -m tiny-stories --ids
cd "$start" || exit 1

# --stats: the reply ends its line; the stats are the next line, on stderr.
out=$("$cli" generate -m tiny-stories -p "Once upon a time" -n 12 --stats 2>"$tmp/err")
errs=$(cat "$tmp/err")
case "$errs" in "prompt "*" tokens"*"stopped: length") ;; *) echo "FAIL: --stats line: '$errs'"; fail=1 ;; esac
[ -n "$out" ] || { echo "FAIL: --stats: no reply on stdout"; fail=1; }
both=$("$cli" generate -m tiny-stories -p "Once upon a time" -n 12 --stats 2>&1)
last=$(printf '%s\n' "$both" | tail -n 1)
case "$last" in "prompt "*) ;; *) echo "FAIL: --stats is not on a line of its own: '$both'"; fail=1 ;; esac
exit $fail
