#!/bin/sh
# Decode speed with one core kept busy by another process, against the best
# single-thread figure and llama.cpp, all measured in the same run (issue 22).
#
#   tests/bench/busy-core.sh HEARTH_CLI MODEL_DIR [MODEL.gguf] [ROUNDS] [PROMPT] [GEN]
#
# Each round, with `sh -c 'while :; do :; done'` running at nice 0 the whole
# time (one core of two taken, as a browser or a build would):
#   hearth-cli bench -m MODEL_DIR -p PROMPT -n GEN            (default threads)
#   hearth-cli bench ... -t 1                                  (single thread)
#   llama-bench -m MODEL.gguf -p 0 -n GEN -d PROMPT -t NPROC   (its default)
#   llama-bench ... -t 1
# alternated, then the medians and the ratios the issue asks for. BASE_CLI
# (optional) adds an older hearth-cli's default-thread figure to each round.
# LLAMA_BENCH names llama-bench. Not a test: nothing here is run by meson.
set -eu
cli=$1 model=$2 gguf=${3:-} rounds=${4:-3} prompt=${5:-32} gen=${6:-64}
lb=${LLAMA_BENCH:-llama-bench}
base=${BASE_CLI:-}
n=$(nproc)
tmp=$(mktemp -d)
nice -n 0 sh -c 'while :; do :; done' &
hog=$!
trap 'kill $hog 2>/dev/null; rm -rf "$tmp"' EXIT

num() { sed -n "s/.*\"$1\" *: *\([0-9.eE+-]*\).*/\1/p" "$2" | head -n 1; }
median() { sort -g | awk '{v[NR]=$1} END{if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
hearth() { # cli, extra args -> decode tok/s
    c=$1; shift
    "$c" bench -m "$model" -p "$prompt" -n "$gen" --reps 3 --json "$@" >"$tmp/h.json" 2>/dev/null
    num decode_tok_s "$tmp/h.json"
}
llama() { # threads -> decode tok/s after PROMPT tokens
    "$lb" -m "$gguf" -p 0 -n "$gen" -d "$prompt" -t "$1" -r 3 -o csv >"$tmp/l.csv" 2>/dev/null
    awk -F'","' 'NR>1 {print $(NF-1)}' "$tmp/l.csv" | tail -n 1
}

echo "one core busy ($n cores); decode tok/s after $prompt tokens, $gen generated"
printf 'round  hearth default  hearth -t 1  %s llama.cpp -t %d  llama.cpp -t 1\n' "${base:+ old default }" "$n"
i=1
while [ "$i" -le "$rounds" ]; do
    hd=$(hearth "$cli")
    h1=$(hearth "$cli" -t 1)
    bd=-
    [ -n "$base" ] && bd=$(hearth "$base")
    ld=- l1=-
    if [ -n "$gguf" ]; then
        ld=$(llama "$n")
        l1=$(llama 1)
    fi
    printf '%5d  %14s  %11s  %s %15s  %14s\n' "$i" "$hd" "$h1" "${base:+$(printf '%11s ' "$bd")}" "$ld" "$l1"
    echo "$hd $h1 $bd $ld $l1" >>"$tmp/all"
    i=$((i + 1))
done
col() { awk -v c="$1" '$c != "-" {print $c}' "$tmp/all" | median; }
hd=$(col 1) h1=$(col 2)
echo "median: hearth default $hd, hearth -t 1 $h1${base:+, old default $(col 3)}${gguf:+, llama.cpp -t $n $(col 4), llama.cpp -t 1 $(col 5)}"
awk -v a="$hd" -v b="$h1" 'BEGIN{printf "hearth default / hearth single thread: %.2f\n", a/b}'
[ -n "$gguf" ] && awk -v a="$hd" -v b="$(col 4)" 'BEGIN{printf "hearth default / llama.cpp default: %.2f\n", a/b}'
exit 0
