#!/bin/bash
# The Vulkan opt-in paths (shaders/README.md) checked and measured in one device call, against the
# defaults in the same run. Runs ON the GPU machine, from the project root there, after
# ../shared/gpu/prepare.sh here:
#
#   ../shared/gpu/prepare.sh
#   device run:  command "bash tests/bench/vulkan-optin-ab.sh"   carry [".gpu"]   timeout_s 480
#
# 1. correctness: test-vulkan-kernels (its gpu-like config runs the prefill attention tiles and the
#    128 x 64 GEMM tile; its coop config the GEMM on matrix units, VK_NV_cooperative_matrix, where
#    the device has it), test-vulkan-model with HEARTH_VULKAN_ATTN=tile and with
#    HEARTH_VULKAN_GEMM=coop (greedy ids against the CPU);
# 2. kernel level: the prefill GEMM (--gemm, 512 tokens) with the default tile, the tile of before
#    (HEARTH_VULKAN_GEMM_TILE=64,32,32,4,4, on today's shader), and on matrix units
#    (HEARTH_VULKAN_GEMM=coop; without the next slice's loads in flight, HEARTH_VULKAN_COOP_PREFETCH=0;
#    a 64 x 64 tile), TFLOP/s beside the FP32 peak; the decode GEMV default
#    against HEARTH_VULKAN_GEMV=wide and =q8 (int8 activations, packed dot products);
# 3. model level, alternated A B C A B C: prefill of 512 and 4,096 tokens and decode with the
#    defaults (A) against HEARTH_VULKAN_ATTN=tile HEARTH_VULKAN_GEMV=q8 HEARTH_VULKAN_LM_HEAD=q8 (B) and against
#    HEARTH_VULKAN_GEMM=coop (C), on the Llama-2-7B and Llama-3-8B AWQ shapes.
# Everything lands in $OUT/vulkan-optin.txt (and the unpacking's $OUT/summary.txt).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=$((T0 + ${BUDGET:-440}))
left() { echo $((DEADLINE - $(date +%s))); }
R=$OUT/vulkan-optin.txt; : > $R
say() { echo "$*" | tee -a $R; }

# device-run.sh with no stage unpacks the binaries to /tmp/hw and the Vulkan loader into /
STAGES=none BUDGET=60 bash .gpu/device-run.sh > $OUT/unpack.log 2>&1
source tests/bench/device-env.sh   # H, the libraries, the Vulkan driver and validation layer
[ -x $H/hearth-cli ] || { say "no /tmp/hw/bin/hearth-cli: the unpacking failed"; tail -5 $OUT/unpack.log; exit 1; }
( for s in llama-2-7b llama-3-8b; do
    [ -d /tmp/m-$s ] || { $H/hr-make-random-model --shape $s --awq 128 --out /tmp/m-$s.part >/dev/null 2>&1 && mv /tmp/m-$s.part /tmp/m-$s; }
  done ) &
MK=$!

timeout 150 $H/test-vulkan-kernels > $OUT/vk-kernels.log 2>&1
say "test-vulkan-kernels exit $? ($(grep -c 'check failed' $OUT/vk-kernels.log) failed checks)"
grep -E "^config|^device|matrix|  config" $OUT/vk-kernels.log | tee -a $R
grep -E "/coop" $OUT/vk-kernels.log | tee -a $R
for e in HEARTH_VULKAN_ATTN=tile HEARTH_VULKAN_GEMM=coop; do
  env $e timeout 150 $H/test-vulkan-model > $OUT/vk-model-$e.log 2>&1
  say "test-vulkan-model $e exit $? ($(grep -c 'greedy ids equal' $OUT/vk-model-$e.log) rows)"
  tail -4 $OUT/vk-model-$e.log | tee -a $R
done

say "== the prefill GEMM alone, 512 tokens: default tile, then the tile of before"
for tile in "" 64,32,32,4,4 coop coop-noprefetch coop:64,64,32,32; do
  case $tile in
    coop) E="HEARTH_VULKAN_GEMM=coop" ;;
    coop-noprefetch) E="HEARTH_VULKAN_GEMM=coop HEARTH_VULKAN_COOP_PREFETCH=0" ;;
    coop:*) E="HEARTH_VULKAN_GEMM=coop HEARTH_VULKAN_COOP_TILE=${tile#coop:}" ;;
    *) E="HEARTH_VULKAN_GEMM_TILE=$tile" ;;
  esac
  env $E timeout 90 $H/hearth-cli bench --backend vulkan --tokens 512 \
    --gemm 4096x4096,11008x4096,4096x11008,14336x4096 2>&1 | grep -E "^(peak|gemm)" | sed "s/^/[tile ${tile:-default}] /" | tee -a $R
done
say "== the decode GEMV alone: default, then HEARTH_VULKAN_GEMV=wide and q8"
for gv in "" wide q8; do
  HEARTH_VULKAN_GEMV=$gv timeout 90 $H/hearth-cli bench --backend vulkan --gemv 4096x4096,11008x4096,4096x11008 2>&1 |
    grep -E "^(bandwidth|gemv)" | sed "s/^/[gemv ${gv:-default}] /" | tee -a $R
done

wait $MK
say "== models, alternated (A = defaults)"
for m in llama-2-7b llama-3-8b; do
  [ -d /tmp/m-$m ] || { say "no model $m"; continue; }
  for round in 1 2; do
    for side in A B C; do
      [ $(left) -lt 40 ] && { say "out of time"; break 3; }
      case $side in
        A) E="" ;;
        B) E="HEARTH_VULKAN_ATTN=tile HEARTH_VULKAN_GEMV=q8 HEARTH_VULKAN_LM_HEAD=q8" ;;
        C) E="HEARTH_VULKAN_GEMM=coop" ;;
      esac
      for p in 512 4096; do
        r=$(env $E timeout 120 $H/hearth-cli bench -m /tmp/m-$m --backend vulkan -p $p -n 32 --reps 1 \
            --ctx $((p + 64)) 2>&1 | grep -E "^(prefill|decode)" | sed 's/ median.*first token/, ttft/' | tr '\n' ' ')
        say "$m $side ${E:-defaults} p=$p: $r"
      done
    done
  done
done
say "done in $(( $(date +%s) - T0 )) s"
