#!/bin/sh
# Decode and prefill speed of Hearth against llama.cpp on the same machine,
# alternated (Hearth, llama.cpp, Hearth, ...) so both see the same load.
#
#   tests/bench/vs-llamacpp.sh HEARTH_CLI AWQ_MODEL_DIR MODEL.gguf [ROUNDS] [PROMPT] [GEN]
#
# LLAMA_BENCH names llama.cpp's llama-bench (default: llama-bench on PATH);
# THREADS (default: the number of cores) goes to both. Each round runs
#   hearth-cli bench -m AWQ_MODEL_DIR -p PROMPT -n GEN --reps 3 --json
#   llama-bench -m MODEL.gguf -p PROMPT -n GEN -d PROMPT -t THREADS -r 3 -o csv
# so both decode GEN tokens after PROMPT tokens of context (llama-bench's
# -d) and prefill PROMPT tokens from an empty cache. Prints every round and
# the medians over rounds, with Hearth / llama.cpp. Not a test: nothing here
# is built or run by meson (see tests/bench/README.md for making the models).
set -eu
cli=$1 awq=$2 gguf=$3 rounds=${4:-3} prompt=${5:-128} gen=${6:-64}
lb=${LLAMA_BENCH:-llama-bench}
threads=${THREADS:-$(nproc)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

num() { # json member value
    sed -n "s/.*\"$1\" *: *\([0-9.eE+-]*\).*/\1/p" "$2" | head -n 1
}
median() {
    sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}

echo "round  hearth prefill  hearth decode  llama.cpp prefill  llama.cpp decode  (tok/s)"
i=1
while [ "$i" -le "$rounds" ]; do
    "$cli" bench -m "$awq" -p "$prompt" -n "$gen" --reps 3 --threads "$threads" --json >"$tmp/h.json"
    "$lb" -m "$gguf" -p "$prompt" -n "$gen" -d "$prompt" -t "$threads" -r 3 -o csv >"$tmp/l.csv" 2>/dev/null
    hp=$(num prefill_tok_s "$tmp/h.json")
    hd=$(num decode_tok_s "$tmp/h.json")
    # csv columns end with n_prompt, n_gen, n_depth, test_time, avg_ns,
    # stddev_ns, avg_ts, stddev_ts; the prefill row has n_gen 0, decode n_prompt 0
    lp=$(awk -F'","' 'NR>1 && $(NF-6)=="0" {print $(NF-1)}' "$tmp/l.csv")
    ld=$(awk -F'","' 'NR>1 && $(NF-7)=="0" {print $(NF-1)}' "$tmp/l.csv")
    printf '%5d  %14.1f  %13.2f  %17.1f  %16.2f\n' "$i" "$hp" "$hd" "$lp" "$ld"
    echo "$hp $hd $lp $ld" >>"$tmp/all"
    i=$((i + 1))
done
hp=$(awk '{print $1}' "$tmp/all" | median)
hd=$(awk '{print $2}' "$tmp/all" | median)
lp=$(awk '{print $3}' "$tmp/all" | median)
ld=$(awk '{print $4}' "$tmp/all" | median)
printf 'median %14.1f  %13.2f  %17.1f  %16.2f\n' "$hp" "$hd" "$lp" "$ld"
awk -v a="$hp" -v b="$lp" -v c="$hd" -v d="$ld" \
    'BEGIN{printf "Hearth / llama.cpp: prefill %.2f, decode %.2f\n", a/b, c/d}'
