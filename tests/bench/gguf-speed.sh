#!/bin/sh
# Hearth and llama.cpp decoding and prefilling the same GGUF files on the CPU,
# alternated (Hearth, llama.cpp, Hearth, llama.cpp, ...) so both see the same
# machine; per-round figures and the medians.
#   tests/bench/gguf-speed.sh LLAMA_BIN_DIR HEARTH_CLI ROUNDS FILE.gguf...
# Prefill: -p 256 tokens; decode: 64 tokens after a 32-token prompt (llama-bench
# -d 32 -n 64); THREADS (default 2).
set -eu
bin=$1; cli=$2; rounds=$3; shift 3
threads=${THREADS:-2}
export LD_LIBRARY_PATH="$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
med() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }
for f in "$@"; do
    hp=""; hd=""; lp=""; ld=""
    r=0
    while [ "$r" -lt "$rounds" ]; do
        j=$("$cli" bench -m "$f" -p 256 -n 64 --reps 2 -t "$threads" --json 2>/dev/null)
        hp="$hp $(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["prefill_tok_s"])')"
        hd="$hd $(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_tok_s"])')"
        o=$("$bin/llama-bench" -m "$f" -p 256 -n 64 -r 2 -t "$threads" -o csv 2>/dev/null)
        lp="$lp $(echo "$o" | awk -F, 'NR > 1 && $0 ~ /"256","0"/ { gsub(/"/, "", $(NF-1)); print $(NF-1) }' | head -1)"
        ld="$ld $(echo "$o" | awk -F, 'NR > 1 && $0 ~ /"0","64"/ { gsub(/"/, "", $(NF-1)); print $(NF-1) }' | head -1)"
        r=$((r + 1))
    done
    echo "$(basename "$f"): prefill Hearth [$hp ] median $(echo $hp | tr ' ' '\n' | med), llama.cpp [$lp ] median $(echo $lp | tr ' ' '\n' | med)"
    echo "$(basename "$f"): decode  Hearth [$hd ] median $(echo $hd | tr ' ' '\n' | med), llama.cpp [$ld ] median $(echo $ld | tr ' ' '\n' | med)"
done
