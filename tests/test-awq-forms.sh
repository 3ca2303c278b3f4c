#!/bin/sh
# The AWQ search's difference form (quantize/awq.c, loss_delta: the CPU with
# BF16 products, AMX tiles or AVX512-BF16, on W_q - W) against its direct form
# (HEARTH_AWQ_DIRECT=1: block outputs with W_q minus those with W, FP32
# split in two BF16 parts): on random models with real shapes (the tiny
# shape, 4 layers, no biases; one Qwen2.5-0.5B layer, q/k/v biases, GQA 14/2
# heads) every group of every layer chooses the same ratio, and each of the
# 20 losses per group agrees within 1e-3 relative (measured: within ~1e-4
# on SmolLM2). SKIPs where the difference form does not run (neither).
set -u
tool="$1"; cli="$2"
assets="${HEARTH_ASSETS:-}"
tokdir="$assets/models/stories260K/hf_f32"
[ -f "$tokdir/tokenizer.json" ] || { echo "SKIP: stories260K's tokenizer is absent (HEARTH_ASSETS=$assets)"; exit 77; }
# The difference form needs BF16 products, AMX tiles or AVX512-BF16 (engine/cpu/cpu-amx.c asks CPUID;
# the kernel's flags say the same): without them skip now rather than after quantizing twice.
if [ -r /proc/cpuinfo ] && ! grep -qw -e amx_bf16 -e avx512_bf16 /proc/cpuinfo; then
    echo "SKIP: neither AMX (amx_bf16) nor AVX512-BF16 on this CPU: the difference form does not run"; exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# args: label, model dir, samples; writes $tmp/$label-{direct,diff}.trace
run_forms() {
    label=$1; dir=$2; samples=$3
    for form in direct diff; do
        if [ $form = direct ]; then set -- HEARTH_AWQ_DIRECT=1; else set -- -u HEARTH_AWQ_DIRECT; fi
        env "$@" HEARTH_AWQ_TRACE=1 "$cli" quantize -i "$dir" -o "$tmp/$label-$form" --method awq \
            --samples "$samples" --seqlen 256 >"$tmp/$label-$form.log" 2>"$tmp/$label-$form.trace" ||
            { echo "FAIL: $label: quantize ($form form) exited $?"; cat "$tmp/$label-$form.trace"; fail=1; return 1; }
    done
    if ! grep -q "awq-trace: difference form" "$tmp/$label-diff.trace"; then
        echo "SKIP: the difference form did not run (no BF16 products on this CPU, or not enough memory)"
        exit 77
    fi
    grep -q "awq-trace: difference form" "$tmp/$label-direct.trace" &&
        { echo "FAIL: $label: HEARTH_AWQ_DIRECT=1 still ran the difference form"; fail=1; }
    # The chosen ratios (the log lines without their losses and times).
    sed -n 's/ loss [^ ]* (a=0 [^)]*)//g; s/ ([0-9.]* s)$//; /^awq: layer/p' "$tmp/$label-direct.trace" >"$tmp/a"
    sed -n 's/ loss [^ ]* (a=0 [^)]*)//g; s/ ([0-9.]* s)$//; /^awq: layer/p' "$tmp/$label-diff.trace" >"$tmp/b"
    [ -s "$tmp/a" ] || { echo "FAIL: $label: no layer lines"; fail=1; }
    if cmp -s "$tmp/a" "$tmp/b"; then
        echo "$label: the same ratios, $(wc -l <"$tmp/a") layers"
    else
        echo "FAIL: $label: the forms chose different ratios"; diff "$tmp/a" "$tmp/b"; fail=1
    fi
    # Every ratio's loss (awk-trace lines: group G ratio A loss L), in order.
    grep "awq-trace: group" "$tmp/$label-direct.trace" | awk '{print $NF}' >"$tmp/la"
    grep "awq-trace: group" "$tmp/$label-diff.trace" | awk '{print $NF}' >"$tmp/lb"
    n=$(wc -l <"$tmp/la")
    [ "$n" -gt 0 ] && [ "$n" -eq "$(wc -l <"$tmp/lb")" ] || { echo "FAIL: $label: $n vs $(wc -l <"$tmp/lb") losses"; fail=1; return 1; }
    paste "$tmp/la" "$tmp/lb" | awk -v label="$label" '
        { d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1; r = m > 0 ? d / m : d;
          if (!(r <= worst)) worst = r; if (!(r <= 1e-3)) bad++ }
        END { printf "%s: %d losses, worst relative difference %.2e\n", label, NR, worst;
              if (bad) { printf "FAIL: %s: %d losses differ by more than 1e-3\n", label, bad; exit 1 } }' || fail=1
}

"$tool" --shape tiny --out "$tmp/tiny" --seed 7 --tokenizer "$tokdir" >/dev/null || { echo "FAIL: writing the tiny model"; exit 1; }
# The Qwen layer on 4 windows (the test now runs wherever the CPU has AVX512-BF16, CI's included,
# under the sanitizers: 157 s with 8 there, 88 s with 4; worst loss difference 2.6e-4 either way;
# the tiny model's 16 stay: with 8 its worst was 9.7e-4, too near the 1e-3 asked). HEARTH_TEST_FULL=1: 8.
full=${HEARTH_TEST_FULL:-0}
run_forms tiny "$tmp/tiny" 16

qtok="$assets/tokenizers/qwen3"
if [ -f "$qtok/tokenizer.json" ]; then
    "$tool" --shape qwen2.5-0.5b --layers 1 --out "$tmp/qwen" --seed 3 --tokenizer "$qtok" >/dev/null ||
        { echo "FAIL: writing the Qwen2.5-0.5B layer"; exit 1; }
    run_forms qwen2.5-0.5b-layer "$tmp/qwen" $([ "$full" = 1 ] && echo 8 || echo 4)
else
    echo "qwen3 tokenizer absent: the Qwen2.5-0.5B layer skipped"
fi
[ $fail -eq 0 ] && echo "awq-forms: OK"
exit $fail
