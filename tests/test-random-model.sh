#!/bin/sh
# hr-make-random-model: the tiny shape in FP16 and as an AWQ GEMM checkpoint
# (with stories260K's 512-token tokenizer) runs in hearth-cli: 8 generated
# ids within the vocabulary and a finite perplexity. The same seed writes
# the same bytes; a tokenizer of the wrong size and bad options are refused.
# One layer of qwen2.5-0.5b (Qwen2ForCausalLM) has its q/k/v biases and
# generates, with the qwen3 tokenizer (fewer tokens than vocab_size) when the
# shared assets have it.
set -u
tool="$1"; cli="$2"
assets="${HEARTH_ASSETS:-}"
tokdir="$assets/models/stories260K/hf_f32"; text="$assets/text/wikitext2-test.txt"
[ -f "$tokdir/tokenizer.json" ] && [ -f "$text" ] || { echo "SKIP: stories260K's tokenizer or wikitext2-test.txt is absent (HEARTH_ASSETS=$assets)"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
vocab=512

check_model() { # args: label, dir
    label=$1; dir=$2
    ids=$("$cli" generate -m "$dir" --prompt-ids 1 -n 8 --ids --ignore-eos) || { echo "FAIL: $label: generate exited $?"; fail=1; return; }
    echo "$label ids: $ids"
    n=0
    for id in $ids; do
        case "$id" in *[!0-9]*|'') echo "FAIL: $label: '$id' is not a token id"; fail=1; return ;; esac
        [ "$id" -lt $vocab ] || { echo "FAIL: $label: id $id is outside the vocabulary"; fail=1; }
        n=$((n + 1))
    done
    [ $n -eq 8 ] || { echo "FAIL: $label: $n ids, want 8"; fail=1; }
    ppl=$("$cli" perplexity -m "$dir" -f "$text" --ctx 128 --max-windows 2 2>/dev/null | sed -n 's/^ppl = //p')
    echo "$label ppl: $ppl"
    # Finite and near-uniform: random weights give a perplexity of the order of the vocabulary.
    awk -v p="$ppl" -v v=$vocab 'BEGIN { exit !(p != "" && p + 0 == p && p > 1 && p < 10 * v) }' ||
        { echo "FAIL: $label: perplexity '$ppl' is not a finite number in (1, $((10 * vocab)))"; fail=1; }
}

"$tool" --shape tiny --out "$tmp/fp16" --seed 7 --tokenizer "$tokdir" || { echo "FAIL: writing the FP16 model"; exit 1; }
"$tool" --shape tiny --out "$tmp/awq" --seed 7 --awq 64 --tokenizer "$tokdir" || { echo "FAIL: writing the AWQ model"; exit 1; }
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    [ -f "$tmp/fp16/$f" ] || { echo "FAIL: fp16/$f is missing"; fail=1; }
done
grep -q '"torch_dtype": "float16"' "$tmp/fp16/config.json" || { echo "FAIL: fp16 config lacks torch_dtype"; fail=1; }
grep -q '"quant_method": "awq"' "$tmp/awq/config.json" && grep -q '"group_size": 64' "$tmp/awq/config.json" &&
    grep -q '"version": "gemm"' "$tmp/awq/config.json" || { echo "FAIL: AWQ config lacks its quantization_config"; fail=1; }
grep -q 'q_proj.qweight' "$tmp/awq/model.safetensors" && ! grep -q 'q_proj.weight' "$tmp/awq/model.safetensors" ||
    { echo "FAIL: the AWQ model has no packed q_proj"; fail=1; }

check_model fp16 "$tmp/fp16"
check_model awq "$tmp/awq"

# Deterministic, whatever the thread count; another seed differs; bf16 and f32 load too.
"$tool" --shape tiny --out "$tmp/again" --seed 7 --threads 1 >/dev/null || fail=1
cmp -s "$tmp/fp16/model.safetensors" "$tmp/again/model.safetensors" || { echo "FAIL: same seed, different bytes"; fail=1; }
"$tool" --shape tiny --out "$tmp/other" --seed 8 >/dev/null || fail=1
cmp -s "$tmp/fp16/model.safetensors" "$tmp/other/model.safetensors" && { echo "FAIL: seeds 7 and 8 give the same bytes"; fail=1; }
for dt in bf16 f32; do
    "$tool" --shape tiny --out "$tmp/$dt" --seed 7 --dtype $dt --layers 2 >/dev/null || { echo "FAIL: --dtype $dt"; fail=1; continue; }
    ids=$("$cli" generate -m "$tmp/$dt" --prompt-ids 1 -n 4 --ids --ignore-eos) && [ -n "$ids" ] ||
        { echo "FAIL: generate on the $dt model"; fail=1; }
done

# Qwen2: one layer of the real widths (0.3 GB, mostly the 151936 x 896 embedding).
qtok="$assets/tokenizers/qwen3"
set --
[ -f "$qtok/tokenizer.json" ] && set -- --tokenizer "$qtok"
if "$tool" --shape qwen2.5-0.5b --layers 1 --out "$tmp/qwen" "$@" >/dev/null; then
    grep -q '"architectures": \["Qwen2ForCausalLM"\]' "$tmp/qwen/config.json" ||
        { echo "FAIL: qwen2.5 config is not Qwen2ForCausalLM"; fail=1; }
    # The safetensors header (JSON) is at the start of the file.
    hdr=$(head -c 65536 "$tmp/qwen/model.safetensors" | tr -c '[:print:]' ' ')
    for b in q_proj k_proj v_proj; do
        case "$hdr" in *"model.layers.0.self_attn.$b.bias\":{\"dtype\":\"F16\""*) ;;
            *) echo "FAIL: qwen2.5 has no FP16 $b.bias"; fail=1 ;; esac
    done
    ids=$("$cli" generate -m "$tmp/qwen" --prompt-ids 151643 -n 4 --ids --ignore-eos) ||
        { echo "FAIL: generate on qwen2.5 exited $?"; fail=1; ids=""; }
    echo "qwen2.5 ids: $ids"
    n=0
    for id in $ids; do
        case "$id" in *[!0-9]*|'') echo "FAIL: qwen2.5: '$id' is not a token id"; fail=1; break ;; esac
        [ "$id" -lt 151936 ] || { echo "FAIL: qwen2.5: id $id is outside the vocabulary"; fail=1; }
        n=$((n + 1))
    done
    [ $n -eq 4 ] || { echo "FAIL: qwen2.5: $n ids, want 4"; fail=1; }
    if [ $# -gt 0 ]; then
        "$cli" generate -m "$tmp/qwen" -p "Hello" -n 4 --ignore-eos >/dev/null ||
            { echo "FAIL: text generate on qwen2.5 with the qwen3 tokenizer"; fail=1; }
    fi
    rm -rf "$tmp/qwen"
else
    echo "FAIL: writing qwen2.5-0.5b --layers 1"; fail=1
fi

expect_error() { # args: description, expected text, command...
    desc=$1; text=$2; shift 2
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 0 ] || [ $rc -gt 2 ]; then echo "FAIL: $desc: exit status $rc"; fail=1; fi
    case "$err" in *"$text"*) ;; *) echo "FAIL: $desc: message '$err' lacks '$text'"; fail=1 ;; esac
}
expect_error "vocab mismatch" "has 512 tokens" "$tool" --shape llama-2-7b --out "$tmp/bad" --tokenizer "$tokdir"
[ -e "$tmp/bad" ] && { echo "FAIL: a refused tokenizer still created the output directory"; fail=1; }
[ -f "$qtok/tokenizer.json" ] &&
    expect_error "tokenizer larger than the vocab" "has 151669 tokens" "$tool" --shape llama-3-8b --out "$tmp/bad" --tokenizer "$qtok"
expect_error "group size not dividing 576" "group size" "$tool" --shape smollm2-135m --out "$tmp/bad" --awq 128
expect_error "unknown shape" "unknown --shape" "$tool" --shape llama-9 --out "$tmp/bad"
expect_error "bad dtype" "--dtype" "$tool" --shape tiny --out "$tmp/bad" --dtype f8
expect_error "bad group" "group size" "$tool" --shape tiny --out "$tmp/bad" --awq 100
expect_error "no --out" "--out" "$tool" --shape tiny
exit $fail
