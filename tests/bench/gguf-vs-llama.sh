#!/bin/sh
# Hearth and llama.cpp on the same GGUF files: perplexity (llama-perplexity's
# method, wikitext-2, N windows of 512) and CPU decode speed, side by side.
#   tests/bench/gguf-vs-llama.sh LLAMA_BIN_DIR HEARTH_CLI FILE.gguf...
# LLAMA_BIN_DIR holds llama-perplexity and llama-bench built outside the
# repository (tests/bench/README.md says how). WINDOWS (default 4), THREADS
# (default 2) and TEXT (default ../shared/assets/text/wikitext2-test.txt).
set -eu
bin=$1; cli=$2; shift 2
text=${TEXT:-$(dirname "$0")/../../../shared/assets/text/wikitext2-test.txt}
windows=${WINDOWS:-4}
threads=${THREADS:-2}
export LD_LIBRARY_PATH="$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
printf '%-28s %10s %10s %10s %8s\n' file hearth llama.cpp "llama -fa0" "diff %"
for f in "$@"; do
    h=$("$cli" perplexity -m "$f" -f "$text" --ctx 512 --max-windows "$windows" --method llama 2>/dev/null |
        sed -n 's/^ppl = //p')
    l=$("$bin/llama-perplexity" -m "$f" -f "$text" -c 512 --chunks "$windows" -t "$threads" 2>&1 |
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    l0=$("$bin/llama-perplexity" -m "$f" -f "$text" -c 512 --chunks "$windows" -t "$threads" -fa off 2>&1 |
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p')
    d=$(awk -v a="$h" -v b="$l" 'BEGIN { printf "%+.2f", (a / b - 1) * 100 }')
    printf '%-28s %10s %10s %10s %8s\n' "$(basename "$f")" "$h" "$l" "$l0" "$d"
done
