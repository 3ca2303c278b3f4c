#!/bin/sh
# hearth-cli tokenize / detokenize with the stories260K tokenizer: the ids must
# be those Hugging Face gives (tests/fixtures/tokenizer/stories-260k.json), and
# detokenize must print the decoded text exactly (no newline added).
# Usage: test-cli-tokenize.sh HEARTH_CLI FIXTURE_JSON   (SKIP 77 without assets)
set -u
cli="$1"; fixture="$2"
assets="${HEARTH_ASSETS:-$(dirname "$0")/../../shared/assets}"
dir="$assets/models/stories260K/hf_f32"
if [ -z "$assets" ] || [ ! -f "$dir/tokenizer.json" ]; then
    echo "SKIP: stories260K tokenizer not found under '${assets}'"
    exit 77
fi
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

# The expected ids are copied from the fixture; make sure they are still there.
check 'grep -qF "\"text\":\"Hello world\",\"ids\":[1,346,306,414,263,304,341],\"ids_nospecial\":[346,306,414,263,304,341]" "$fixture"' \
    "fixture no longer has the 'Hello world' ids used here"
check 'grep -qF "\"text\":\"<s>hello</s>\",\"ids\":[1,1,281,306,414,2],\"ids_nospecial\":[1,281,306,414,2],\"ids_plain\":[410,504,419,505,260,306,414,504,492,419,505]" "$fixture"' \
    "fixture no longer has the '<s>hello</s>' ids used here"

out=$("$cli" tokenize -m "$dir" --text "Hello world"); rc=$?
check '[ $rc -eq 0 ] && [ "$out" = "1 346 306 414 263 304 341" ]' "tokenize 'Hello world' printed '$out' (rc $rc)"
out=$("$cli" tokenize -m "$dir" --text "Hello world" --no-special)
check '[ "$out" = "346 306 414 263 304 341" ]' "tokenize --no-special printed '$out'"
out=$("$cli" tokenize -m "$dir" --text "<s>hello</s>" --no-special)
check '[ "$out" = "1 281 306 414 2" ]' "special tokens in text: '$out'"
out=$("$cli" tokenize -m "$dir" --text "<s>hello</s>" --no-special --split-special)
check '[ "$out" = "410 504 419 505 260 306 414 504 492 419 505" ]' "--split-special: '$out'"

# -f reads the file byte for byte; - reads stdin.
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
printf 'Hello world' > "$tmp"
out=$("$cli" tokenize -m "$dir" -f "$tmp")
check '[ "$out" = "1 346 306 414 263 304 341" ]' "tokenize -f printed '$out'"
out=$(printf 'Hello world' | "$cli" tokenize -m "$dir" -f -)
check '[ "$out" = "1 346 306 414 263 304 341" ]' "tokenize -f - printed '$out'"

# detokenize prints exactly the text: compare bytes, including the absence of a newline.
"$cli" detokenize -m "$dir" 1 346 306 414 263 304 341 > "$tmp"
check '[ "$(od -An -c "$tmp" | tr -s " ")" = "$(printf "<s> Hello world" | od -An -c | tr -s " ")" ]' \
    "detokenize printed '$(cat "$tmp")'"
out=$("$cli" detokenize -m "$dir" --skip-special 1 346 306 414 263 304 341)
check '[ "$out" = "Hello world" ]' "detokenize --skip-special printed '$out'"
out=$("$cli" detokenize -m "$dir" --stream 410 243 162 155 131)
check '[ "$out" = "😀" ]' "detokenize --stream of byte tokens printed '$out'"

# Usage errors exit 2, a missing model 1.
"$cli" tokenize -m "$dir" >/dev/null 2>&1; check '[ $? -eq 2 ]' "tokenize without text should exit 2"
"$cli" detokenize -m "$dir" 1 x >/dev/null 2>&1; check '[ $? -eq 2 ]' "bad id should exit 2"
"$cli" tokenize -m /nonexistent --text hi >/dev/null 2>&1; check '[ $? -eq 1 ]' "missing model should exit 1"
exit $fail
