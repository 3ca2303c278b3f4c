#!/bin/bash
# A short second call after device-first.sh, on the same warm machine, for what device-first leaves out:
# the AWQ search on the device (issue 20) and the draw at the app's settings (issue 17). A machine goes back
# after 30 s idle, so issue it as soon as the first call returns. Both fit a session's 15 minutes with the
# machine's start (1-2 minutes) when the first runs with BUDGET=440 (command "BUDGET=440 bash
# tests/bench/device-first.sh", timeout_s 480): 120 + 480 + 240 s. Runs ON the GPU machine, from the project root:
#
#   ../shared/gpu/prepare.sh && cp build-gpu/tests/test-awq-device-cuda build-gpu/tests/test-cuda-sample .gpu/
#                                                                             (here, before the first call)
#   device run:  command "bash tests/bench/device-second.sh"   carry [".gpu"]   timeout_s 240
#
# 1. test-cuda-sample: the draw's device part (HEARTH_DEVICE_SAMPLING=1) against the host's draw, graph and
#    no graph; test-awq-device-cuda: the search with its block forwards on the device (HEARTH_AWQ_DEVICE=1)
#    against the CPU search, on the tiny fixtures (ratios and losses, clip scales), every fixture both ways;
# 2. the search on the device, one Llama-2-7B layer with the default calibration (128 x 512; issue 20's
#    target: <= 20 s a layer, a 7B <= 10 minutes, peak host memory <= 8 GB), timed phase by phase;
# 3. the draw at the app's settings on Llama-3-8B (128K vocabulary) from device-first's model, host
#    against device (HEARTH_DEVICE_SAMPLING), alternated.
# Each is skipped when the budget (BUDGET, default 210 s) would not cover it. $OUT/second.txt, logs in
# $OUT/second-logs.tar.gz.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=$((T0 + ${BUDGET:-210}))
left() { echo $((DEADLINE - $(date +%s))); }
R=$OUT/second.txt; : > $R
say() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R; }
L=/tmp/second-logs; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/second-logs.tar.gz -C $L .' EXIT

# a warm machine still has device-first's unpacking; a fresh one unpacks again
[ -x /tmp/hw/bin/hearth-cli ] || STAGES=none BUDGET=60 bash .gpu/device-run.sh > $L/unpack.log 2>&1
source tests/bench/device-env.sh   # H, the libraries, the Vulkan driver and validation layer
[ -x $H/hearth-cli ] || { say "no $H/hearth-cli: the unpacking failed"; exit 1; }
$H/hr-make-random-model --shape llama-2-7b --layers 1 --out /tmp/q7b1.part \
  --tokenizer .gpu/assets/tokenizers/spm32k-llama2 > $L/make-q7b1.log 2>&1 && rm -rf /tmp/q7b1 && mv /tmp/q7b1.part /tmp/q7b1 &
MK=$!

say "== 1. the draw on the device against the host's (test-cuda-sample); the AWQ search's device forwards against the CPU search (test-awq-device-cuda)"
if [ ! -x .gpu/test-cuda-sample ]; then
  say "skipped: .gpu/test-cuda-sample was not copied (see the header)"
elif [ $(left) -ge 60 ]; then
  timeout 60 .gpu/test-cuda-sample > $L/cuda-sample.log 2>&1
  say "test-cuda-sample: exit $? ($(grep -c 'check failed' $L/cuda-sample.log) failed checks)"
  grep -E "check failed|sequences equal" $L/cuda-sample.log | head -6 | tee -a $R
fi
if [ ! -x .gpu/test-awq-device-cuda ]; then
  say "skipped: .gpu/test-awq-device-cuda was not copied (see the header)"
elif [ $(left) -ge 60 ]; then
  timeout 90 .gpu/test-awq-device-cuda > $L/awq-device-cuda.log 2>&1
  say "test-awq-device-cuda: exit $? ($(grep -c 'check failed' $L/awq-device-cuda.log) failed checks)"
  grep -E "check failed|chose|scales equal" $L/awq-device-cuda.log | head -12 | tee -a $R
fi

say "== 2. the search on the device, one Llama-2-7B layer, default calibration (128 x 512)"
wait $MK
if [ ! -d /tmp/q7b1 ]; then
  say "no model: $(tail -1 $L/make-q7b1.log)"
elif [ $(left) -ge 60 ]; then
  rm -rf /tmp/q7b1-awq
  s=$(date +%s)
  HEARTH_AWQ_DEVICE=1 HEARTH_CUDA_GEMM=cublas HEARTH_CUDA_REPACK=layout timeout $(( $(left) - 45 )) \
    $H/hearth-cli quantize --method awq --backend cuda -i /tmp/q7b1 -o /tmp/q7b1-awq \
    --calib .gpu/calibration.txt > $L/quant-device.log 2>&1
  rc=$?
  say "quantize: exit $rc after $(( $(date +%s) - s )) s (124: cut at the budget)"
  # the layer's line (ratios, losses, seconds), "wrote ... peak RSS", an error, or the last progress line
  tr '\r' '\n' < $L/quant-device.log | grep -v '^\s*$' | grep -E "^awq: layer|wrote|rror" | tail -4 | tee -a $R
  tr '\r' '\n' < $L/quant-device.log | grep -v '^\s*$' | tail -1 | tee -a $R
fi

say "== 3. the draw at the app's settings, llama-3-8b: host, device, host, device"
APP="--temp 0.7 --top-k 40 --top-p 0.95 --min-p 0.05 --repeat-penalty 1.1"
if [ -d /tmp/m-llama-3-8b ]; then
  for d in 0 1 0 1; do
    [ $(left) -ge 30 ] || { say "skipped (time)"; break; }
    o=$(env HEARTH_CUDA_REPACK=layout HEARTH_DEVICE_SAMPLING=$d timeout 60 \
      $H/hearth-cli bench -m /tmp/m-llama-3-8b --backend cuda -p 128 -n 128 --reps 2 $APP 2>&1)
    say "HEARTH_DEVICE_SAMPLING=$d: $(grep -E '^decode' <<< "$o" || tail -1 <<< "$o")"
  done
else
  say "skipped: no /tmp/m-llama-3-8b (device-first.sh makes it; a fresh machine has none)"
fi
say "done"
