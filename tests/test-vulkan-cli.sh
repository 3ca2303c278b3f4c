#!/bin/sh
# hearth-cli generate --backend vulkan prints the same 64 greedy ids as
# --backend cpu on stories260K (FP16), and on an AWQ checkpoint of it
# (RTN, group 32, per-channel fallback); the validation layer stays quiet.
set -u
cli="$1"
# The CPU side is the oracle: FP32 activations, as the GPU has.
export HEARTH_CPU_EXACT=1
assets="${HEARTH_ASSETS:-}"
f16="$assets/models/stories260K/hf_f16"
f32="$assets/models/stories260K/hf_f32"
[ -d "$f16" ] && [ -d "$f32" ] || { echo "SKIP: stories260K is absent under '$assets'"; exit 77; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
"$cli" quantize -i "$f32" -o "$tmp/awq" --method rtn --group-size 32 --per-channel-fallback >/dev/null 2>&1 ||
    { echo "FAIL: quantize exited $?"; exit 1; }
for m in "$f16" "$tmp/awq"; do
    cpu=$("$cli" generate -m "$m" --prompt-ids 1 -n 64 --ids --backend cpu) || { echo "FAIL: cpu generate on $m"; fail=1; continue; }
    vk=$(HEARTH_VULKAN_ALLOW_CPU=1 HEARTH_VULKAN_VALIDATION=1 "$cli" generate -m "$m" --prompt-ids 1 -n 64 --ids --backend vulkan 2>"$tmp/err")
    rc=$?
    if [ $rc -ne 0 ]; then
        if grep -q "no devices\|VK_ERROR_INCOMPATIBLE_DRIVER" "$tmp/err"; then echo "SKIP: no Vulkan driver"; exit 77; fi
        echo "FAIL: vulkan generate on $m exited $rc:"; cat "$tmp/err"; fail=1; continue
    fi
    if grep -q "Vulkan validation" "$tmp/err"; then echo "FAIL: validation messages on $m:"; cat "$tmp/err"; fail=1; fi
    n=$(echo "$vk" | wc -w)
    [ "$n" -eq 64 ] || { echo "FAIL: $m: $n ids from vulkan"; fail=1; }
    if [ "$cpu" = "$vk" ]; then
        echo "ok: $m: 64 ids equal"
    else
        echo "FAIL: $m: ids differ"; echo "cpu:    $cpu"; echo "vulkan: $vk"; fail=1
    fi
done
# Without HEARTH_VULKAN_ALLOW_CPU a software-only machine is refused with the reason.
if ! "$cli" devices 2>/dev/null | grep -q "chosen"; then
    out=$(HEARTH_VULKAN_ALLOW_CPU=0 "$cli" generate -m "$f16" --prompt-ids 1 -n 2 --ids --backend vulkan 2>&1) &&
        { echo "FAIL: a software device was used without HEARTH_VULKAN_ALLOW_CPU"; fail=1; }
    echo "$out" | grep -q "HEARTH_VULKAN_ALLOW_CPU" || { echo "FAIL: refusal without the reason: $out"; fail=1; }
fi
exit $fail
