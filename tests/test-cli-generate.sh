#!/bin/sh
# hearth-cli generate --ids on stories260K reproduces the published greedy ids;
# bad input gives a clear error and a non-zero exit, never a crash.
set -u
cli="$1"
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
exit $fail
