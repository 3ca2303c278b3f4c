#!/bin/sh
# hearth-cli bench.
# --gemv (no model needed): the text report has the GEMV's GB/s and the read
# bandwidth, the JSON report has every figure, finite and positive, F16
# weights work, and bad shapes / groups / implementations fail with a clear
# message and a non-zero exit. Short runs: --min-time 0.01, small footprints.
# -m on stories260K (skipped when absent): the JSON report has every figure,
# finite and positive, and the roofline is consistent with them; sampling
# options make decode sample.
# --gemm (CPU): TFLOP/s figures, --tokens checked.
# --backend vulkan (lavapipe here, with the validation layer; skipped when
# no Vulkan device or a build without Vulkan): --gemv has the read
# bandwidth and GB/s, --gemm the FP32 peak and TFLOP/s, every figure finite
# and positive, no validation message, Vulkan-only limits refused; -m prints
# the roofline with the Vulkan read bandwidth.
set -u
cli="$1"
fail=0

# ---- --gemv -------------------------------------------------------------------
text=$("$cli" bench --gemv 256x512 --reps 2 --min-time 0.01 --footprint 16) || { echo "FAIL: bench --gemv exited $?"; fail=1; }
echo "$text"
echo "$text" | grep -Eq '^gemv .*256x512 q4 g128.* [0-9.]+ us/call.* [0-9.]+ GB/s' ||
    { echo "FAIL: --gemv text lacks the us/call and GB/s figures"; fail=1; }
echo "$text" | grep -Eq '^bandwidth +[0-9.]+ GB/s read' || { echo "FAIL: --gemv text lacks the read bandwidth"; fail=1; }
echo "$text" | grep -Eq '[0-9.]+ % of the read bandwidth' || { echo "FAIL: --gemv text lacks the fraction"; fail=1; }

positive() { # $1 = JSON text, $2.. = keys whose every value must be > 0
    j="$1"
    shift
    for k in "$@"; do
        vs=$(echo "$j" | sed -n "s/^ *\"$k\" : \([0-9.e+-]*\).*/\1/p")
        [ -n "$vs" ] || { echo "FAIL: $k is missing"; fail=1; continue; }
        for v in $vs; do
            awk -v v="$v" 'BEGIN{exit !(v+0 > 0)}' || { echo "FAIL: $k = '$v' is not a positive number"; fail=1; }
        done
    done
}
gkeys="read_bandwidth_gb_s us_per_call us_per_call_min us_per_call_max gb_s gb_s_min gb_s_max fraction_of_bandwidth weight_bytes copies"
# two shapes, a comma list and a repeated --gemv; f16 weights
json=$("$cli" bench --gemv 64x256,32x128 --gemv 16x64 --weights f16 --reps 1 --min-time 0.01 --footprint 0 --json) ||
    { echo "FAIL: bench --gemv --json exited $?"; fail=1; }
echo "$json"
case "$json" in "{"*"}") ;; *) echo "FAIL: --json output is not one object"; fail=1 ;; esac
echo "$json" | grep -q '"weights" : "f16"' || { echo "FAIL: --json lacks weights f16"; fail=1; }
[ "$(echo "$json" | grep -c '"rows" :')" = 3 ] || { echo "FAIL: --json does not have 3 shapes"; fail=1; }
positive "$json" $gkeys
# f16 bytes = rows * cols * 2
echo "$json" | grep -q '"weight_bytes" : 32768,' || { echo "FAIL: 64x256 f16 weight_bytes is not 32768"; fail=1; }
# q4 with a group, and an explicit implementation
json=$("$cli" bench --gemv 128x256 --group 64 --impl scalar --reps 1 --min-time 0.01 --footprint 0 --json) ||
    { echo "FAIL: bench --gemv --group 64 --impl scalar exited $?"; fail=1; }
echo "$json" | grep -q '"impl" : "scalar"' || { echo "FAIL: --impl scalar is not reported"; fail=1; }
echo "$json" | grep -q '"group" : 64,' || { echo "FAIL: --group 64 is not reported"; fail=1; }
positive "$json" $gkeys

# bad input: exit status 2 (usage) and a message naming the problem
bad() { # $1 = expected message part, rest = arguments
    want="$1"
    shift
    err=$("$cli" bench "$@" --reps 1 --min-time 0.01 --footprint 0 2>&1 >/dev/null)
    st=$?
    [ $st -eq 2 ] || { echo "FAIL: bench $* exited $st, not 2"; fail=1; }
    case "$err" in *"$want"*) ;; *) echo "FAIL: bench $*: '$err' lacks '$want'"; fail=1 ;; esac
}
bad "'0x5' is not ROWSxCOLS" --gemv 0x5
bad "'abc' is not ROWSxCOLS" --gemv abc
bad "'4x-4' is not ROWSxCOLS" --gemv 4x-4
bad "'4x4x4' is not ROWSxCOLS" --gemv 4x4x4
bad "'' is not ROWSxCOLS" --gemv 64x128,
bad "even number of columns" --gemv 16x255
bad "group size 128 does not divide the 192 columns" --gemv 16x192
bad "group size 48 does not divide the 128 columns" --gemv 16x128 --group 48
bad "--group must be even" --gemv 16x128 --group 3
bad "--weights must be q4 or f16" --gemv 16x128 --weights q8
bad "unknown --impl 'bogus'" --gemv 16x128 --impl bogus
bad "exclude each other" --gemv 16x128 -m /nonexistent
bad "unexpected argument '16x256'" --gemv 16x128 16x256

bad "exclude each other" --gemv 16x128 --gemm 16x128
bad "--tokens goes with --gemm" --gemv 16x128 --tokens 8
bad "--tokens must be within" --gemm 16x128 --tokens 0
bad "'16x' is not ROWSxCOLS" --gemm 16x
bad "take --backend cpu, vulkan or cuda" --gemv 16x128 --backend metal
# --backend cuda: a build without CUDA says so (usage error, 2); with CUDA
# but no device (CI) the run fails (1) naming CUDA; with a device it runs.
err=$("$cli" bench --gemv 64x128 --backend cuda --reps 1 --min-time 0.01 --footprint 0 2>&1 >/dev/null)
st=$?
case "$st:$err" in
    "2:"*"this build has no CUDA backend"*|"1:"*"--backend cuda:"*|"0:"*) echo "--backend cuda: exit $st ($err)" ;;
    *) echo "FAIL: bench --gemv --backend cuda exited $st: '$err'"; fail=1 ;;
esac
bad "--impl goes with --backend cpu" --gemv 16x128 --backend vulkan --impl scalar
bad "rows a multiple of 8" --gemv 12x128 --backend vulkan
bad "multiple of 8 or the column count" --gemv 16x128 --group 4 --backend vulkan

# ---- --gemm (CPU) -------------------------------------------------------------------
tkeys="us_per_call us_per_call_min us_per_call_max tflop_s tflop_s_min tflop_s_max weight_bytes copies tokens"
json=$("$cli" bench --gemm 64x256,32x128 --tokens 16 --reps 2 --min-time 0.01 --footprint 0 --json) ||
    { echo "FAIL: bench --gemm --json exited $?"; fail=1; }
echo "$json"
echo "$json" | grep -q '"mode" : "gemm"' || { echo "FAIL: --gemm JSON lacks mode gemm"; fail=1; }
[ "$(echo "$json" | grep -c '"rows" :')" = 2 ] || { echo "FAIL: --gemm JSON does not have 2 shapes"; fail=1; }
positive "$json" $tkeys
text=$("$cli" bench --gemm 64x256 --tokens 8 --weights f16 --reps 1 --min-time 0.01 --footprint 0) ||
    { echo "FAIL: bench --gemm exited $?"; fail=1; }
echo "$text" | grep -Eq '^gemm .*64x256 f16, 8 tokens.* [0-9.]+ us/call.* [0-9.]+ TFLOP/s' ||
    { echo "FAIL: --gemm text lacks us/call and TFLOP/s: $text"; fail=1; }

# ---- --backend vulkan -----------------------------------------------------------------
lvp=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
[ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$lvp" ] && export VK_ICD_FILENAMES="$lvp"
# lavapipe leaks from inside a library the loader dlclose()s (tests/meson.build):
# no leak detection for the processes that load it; the CPU runs above keep it
vkrun() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 HEARTH_VULKAN_ALLOW_CPU=1 HEARTH_VULKAN_VALIDATION=1 \
              "$cli" bench "$@" 2>"$tmpd/err"; }
tmpd=$(mktemp -d) || exit 1
trap 'rm -rf "$tmpd"' EXIT
vk=1
text=$(vkrun --gemv 256x512 --backend vulkan --reps 2 --min-time 0.01 --footprint 4)
st=$?
if [ $st -ne 0 ] && grep -q "no devices\|VK_ERROR_INCOMPATIBLE_DRIVER\|no usable device\|no Vulkan backend" "$tmpd/err"; then
    echo "SKIP (Vulkan part): $(head -n 1 "$tmpd/err")"
    vk=0
elif [ $st -ne 0 ]; then
    echo "FAIL: bench --gemv --backend vulkan exited $st:"; cat "$tmpd/err"; fail=1
fi
vkcheck() { # $1 = what; fails on validation messages
    if grep -q "Vulkan validation" "$tmpd/err"; then echo "FAIL: $1: validation messages:"; cat "$tmpd/err"; fail=1; fi
}
if [ $vk = 1 ]; then
    echo "$text"
    vkcheck "vulkan --gemv"
    echo "$text" | grep -Eq '^device .*Vulkan' || { echo "FAIL: vulkan --gemv text lacks the device"; fail=1; }
    echo "$text" | grep -Eq '^bandwidth +[0-9.]+ GB/s read \(Vulkan' || { echo "FAIL: vulkan --gemv lacks the bandwidth"; fail=1; }
    echo "$text" | grep -Eq '^gemv .*256x512 q4 g128, kernel gemv: [0-9.]+ us/call.* [0-9.]+ GB/s.*% of the read bandwidth' ||
        { echo "FAIL: vulkan --gemv text lacks us/call, GB/s and the fraction"; fail=1; }
    json=$(vkrun --gemv 64x256,32x128 --weights f16 --backend vulkan --reps 2 --min-time 0.01 --footprint 0 --json) ||
        { echo "FAIL: vulkan --gemv --json exited $?"; cat "$tmpd/err"; fail=1; }
    echo "$json"
    vkcheck "vulkan --gemv --json"
    echo "$json" | grep -q '"backend" : "vulkan"' || { echo "FAIL: vulkan JSON lacks backend vulkan"; fail=1; }
    echo "$json" | grep -q '"timer" : "\(gpu\|host\)"' || { echo "FAIL: vulkan JSON lacks the timer"; fail=1; }
    [ "$(echo "$json" | grep -c '"rows" :')" = 2 ] || { echo "FAIL: vulkan --gemv JSON does not have 2 shapes"; fail=1; }
    positive "$json" $gkeys
    json=$(vkrun --gemm 64x256 --tokens 40 --group 64 --backend vulkan --reps 2 --min-time 0.01 --footprint 1 --json) ||
        { echo "FAIL: vulkan --gemm --json exited $?"; cat "$tmpd/err"; fail=1; }
    echo "$json"
    vkcheck "vulkan --gemm"
    positive "$json" $tkeys fp32_peak_tflop_s fraction_of_peak
    echo "$json" | grep -q '"kernel" : "gemm [0-9]*x[0-9]*"\|"kernel" : "gemv-nt"' || { echo "FAIL: vulkan --gemm kernel"; fail=1; }
    text=$(vkrun --gemm 64x256 --tokens 8 --backend vulkan --reps 1 --min-time 0.01 --footprint 0) ||
        { echo "FAIL: vulkan --gemm text exited $?"; fail=1; }
    vkcheck "vulkan --gemm text"
    echo "$text" | grep -Eq '^peak +[0-9.]+ TFLOP/s FP32' || { echo "FAIL: vulkan --gemm lacks the peak: $text"; fail=1; }
    echo "$text" | grep -Eq '^gemm .*8 tokens, kernel .* [0-9.]+ TFLOP/s.*% of the FP32 peak' ||
        { echo "FAIL: vulkan --gemm text: $text"; fail=1; }
fi

# ---- -m -----------------------------------------------------------------------
model="${HEARTH_ASSETS:-}/models/stories260K/hf_f16"
if [ ! -d "$model" ]; then
    echo "SKIP (model part): $model is absent"
    exit $fail
fi
out=$("$cli" bench -m "$model" -p 16 -n 8 --reps 2 --json) || { echo "FAIL: bench exited $?"; exit 1; }
echo "$out"
for k in prefill_tok_s decode_tok_s ttft_ms bytes_per_token read_bandwidth_gb_s roofline_tok_s peak_rss_mb; do
    v=$(echo "$out" | sed -n "s/^ *\"$k\" : \([0-9.e+-]*\).*/\1/p")
    awk -v v="$v" 'BEGIN{exit !(v+0 > 0)}' || { echo "FAIL: $k = '$v' is not a positive number"; fail=1; }
done
# the load's split (CPU: read and convert, no upload) adds up to no more than the load
echo "$out" | awk -F' : ' '/"load_s"/{l=$2+0} /"load_read_s"/{r=$2+0; n++} /"load_convert_s"/{c=$2+0; n++}
    /"load_upload_s"/{u=$2+0; n++} END{exit !(n == 3 && r >= 0 && c > 0 && u == 0 && r + c <= l)}' ||
    { echo "FAIL: load_read_s/load_convert_s/load_upload_s missing or inconsistent with load_s"; fail=1; }
# roofline = bandwidth / bytes per token
echo "$out" | awk -F' : ' '/"bytes_per_token"/{b=$2+0} /"read_bandwidth_gb_s"/{w=$2*1e9} /"roofline_tok_s"/{r=$2+0}
    END{d=r-w/b; if (d<0) d=-d; exit !(d <= 1e-6*r)}' || { echo "FAIL: roofline is not bandwidth / bytes per token"; fail=1; }
text=$("$cli" bench -m "$model" -p 8 -n 4 --reps 1) || { echo "FAIL: text bench exited $?"; fail=1; }
case "$text" in *"decode"*"tok/s"*) ;; *) echo "FAIL: text output lacks the decode line"; fail=1 ;; esac
err=$("$cli" bench -m "$model" -p 600 -n 600 --ctx 512 2>&1 >/dev/null)
case "$err" in *"exceeds the context"*) ;; *) echo "FAIL: -p + -n over the context: '$err'"; fail=1 ;; esac
# With the app's sampling settings decode samples (and says so); bad ones are refused.
text=$("$cli" bench -m "$model" -p 8 -n 4 --reps 1 --temp 0.7 --top-p 0.95 --top-k 40 --min-p 0.05 --repeat-penalty 1.1) ||
    { echo "FAIL: sampled bench exited $?"; fail=1; }
case "$text" in *"decode    4 tokens (sampled):"*"tok/s"*) ;; *) echo "FAIL: sampled bench: '$text'"; fail=1 ;; esac
echo "$out" | grep -q '"sampled" : false' || { echo "FAIL: greedy JSON lacks \"sampled\" : false"; fail=1; }
err=$("$cli" bench -m "$model" -p 8 -n 4 --top-p 0 2>&1 >/dev/null)
case "$err" in *"out of range"*) ;; *) echo "FAIL: --top-p 0: '$err'"; fail=1 ;; esac
err=$("$cli" bench -m "$model" --weights q4 2>&1 >/dev/null)
case "$err" in *"go with --gemv"*) ;; *) echo "FAIL: --weights without --gemv: '$err'"; fail=1 ;; esac
# Vulkan: the roofline line has the device's measured read bandwidth.
if [ $vk = 1 ]; then
    text=$(vkrun -m "$model" --backend vulkan -p 8 -n 4 --reps 1) || { echo "FAIL: vulkan -m bench exited $?"; cat "$tmpd/err"; fail=1; }
    echo "$text"
    vkcheck "vulkan -m"
    echo "$text" | grep -Eq '^roofline .*read bandwidth [0-9.]+ GB/s \(measured\) -> [0-9.]+ tok/s ceiling' ||
        { echo "FAIL: vulkan -m bench lacks the measured roofline"; fail=1; }
fi
exit $fail
