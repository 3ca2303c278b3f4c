#!/bin/bash
# The CUDA opt-in paths (engine/cuda/README.md) checked and measured in one device call, against the
# defaults in the same run. Runs ON the GPU machine, from the project root there, after
# ../shared/gpu/prepare.sh here and one copy it does not make:
#
#   ../shared/gpu/prepare.sh && cp build-gpu/tests/test-cuda-sample .gpu/
#   device run:  command "bash tests/bench/cuda-optin-ab.sh"   carry [".gpu"]   timeout_s 560
#
# 1. the test stage of .gpu/device-run.sh (test-cuda-kernels and test-cuda-model cover the opt-in
#    paths too; greedy ids against the CPU), which also unpacks the binaries to /tmp/hw;
#    Then greedy ids of a 2-layer SmolLM2-shaped AWQ model (head_dim 64, so the tensor-core prefill
#    attention runs) from the CPU, CUDA's defaults and CUDA with the opt-ins: how long each agrees.
# 2. kernel level: --gemv with --impl gemv against q8 (4-bit and FP16), --gemm with wmma against
#    cublas, each beside the read bandwidth / in TFLOP/s;
#    test-cuda-model again with HEARTH_CUDA_OPS=1 (the op table under engine/llama.c).
# 3. model level, alternated A B A B: the defaults against HEARTH_CUDA_GEMV=q8 HEARTH_CUDA_ATTN=tiled
#    HEARTH_CUDA_GEMM=cublas HEARTH_CUDA_REPACK=layout on the Llama-2-7B, Llama-3-8B and
#    Llama-3.2-1B AWQ shapes, then each path alone on the 7B (HEARTH_CUDA_OPS=1 first).
# Everything lands in $OUT/optin.txt (and $OUT/summary.txt from step 1).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=$((T0 + ${BUDGET:-520}))
left() { echo $((DEADLINE - $(date +%s))); }
R=$OUT/optin.txt; : > $R
say() { echo "$*" | tee -a $R; }

H=/tmp/hw/bin
( for s in llama-2-7b llama-3-8b llama-3.2-1b; do
    [ -d /tmp/m-$s ] || $H/hr-make-random-model --shape $s --awq 128 --out /tmp/m-$s >/dev/null 2>&1 || true
  done ) 2>/dev/null &
MK=$!
STAGES=test BUDGET=200 bash .gpu/device-run.sh > $OUT/test-stage.log 2>&1
say "== test stage: $(grep -E 'exit|greedy' $OUT/summary.txt | tr '\n' ';')"
source tests/bench/device-env.sh   # the libraries, HEARTH_ASSETS
[ -x $H/hearth-cli ] || { say "no /tmp/hw/bin/hearth-cli: the test stage did not unpack"; exit 1; }
if grep -q "test-cuda-model exit 124" $OUT/summary.txt; then   # device-run.sh allows 150 s; the opt-in checks add some
  HEARTH_ASSETS=.gpu/assets timeout 400 $H/test-cuda-model > $OUT/cuda-model.log 2>&1
  say "test-cuda-model again with 400 s: exit $?"; tail -12 $OUT/cuda-model.log | tee -a $R
fi
if [ -x .gpu/test-cuda-sample ]; then   # the draw on the device against the host's (HEARTH_DEVICE_SAMPLING=1)
  HEARTH_ASSETS=.gpu/assets timeout 120 .gpu/test-cuda-sample > $OUT/cuda-sample.log 2>&1
  say "test-cuda-sample exit $? ($(grep -c 'sequences equal' $OUT/cuda-sample.log) settings run)"
  tail -3 $OUT/cuda-sample.log
fi

# the op table under engine/llama.c (HEARTH_CUDA_OPS=1): the same checks against the CPU
HEARTH_CUDA_OPS=1 HEARTH_ASSETS=.gpu/assets timeout 150 $H/test-cuda-model > $OUT/cuda-model-ops.log 2>&1
say "test-cuda-model HEARTH_CUDA_OPS=1 exit $? ($(grep -c 'greedy ids equal' $OUT/cuda-model-ops.log) models, \
$(grep -c 'check failed' $OUT/cuda-model-ops.log) failed checks)"; tail -4 $OUT/cuda-model-ops.log | tee -a $R

# greedy ids of a 2-layer SmolLM2-shaped AWQ model (head_dim 64: the tensor-core prefill attention runs,
# which test-cuda-model's fixtures do not reach): CPU (exact), CUDA default, CUDA with every opt-in
$H/hr-make-random-model --shape smollm2-135m --layers 2 --awq 64 --out /tmp/m-s2 >/dev/null 2>&1
P=$(seq -s, 1 40)
A=$(HEARTH_CPU_EXACT=1 timeout 60 $H/hearth-cli generate -m /tmp/m-s2 --prompt-ids=$P -n 32 --ids --backend cpu 2>&1 | tail -1)
B=$(timeout 60 $H/hearth-cli generate -m /tmp/m-s2 --prompt-ids=$P -n 32 --ids --backend cuda 2>&1 | tail -1)
C=$(HEARTH_CUDA_GEMV=q8 HEARTH_CUDA_ATTN=tiled HEARTH_CUDA_GEMM=cublas timeout 60 $H/hearth-cli generate -m /tmp/m-s2 \
    --prompt-ids=$P -n 32 --ids --backend cuda 2>&1 | tail -1)
same() { python3 -c "import sys;a,b=sys.argv[1].split(),sys.argv[2].split();n=0
while n<min(len(a),len(b)) and a[n]==b[n]: n+=1
print(n)" "$1" "$2"; }
say "greedy ids, 2-layer SmolLM2-shaped AWQ: cuda default == cpu for $(same "$A" "$B") of 32, cuda opt-ins == cpu for $(same "$A" "$C") of 32"
echo "cpu:     $A" >> $R; echo "default: $B" >> $R; echo "opt-ins: $C" >> $R

say "== kernels (GB/s of weight bytes; fraction of the read bandwidth)"
for impl in gemv q8; do
  for w in q4 f16; do
    [ $(left) -lt 200 ] && break
    say "-- --impl $impl --weights $w"
    timeout 60 $H/hearth-cli bench --gemv 4096x4096,11008x4096,4096x11008,14336x4096,128256x4096 --weights $w \
      --backend cuda --impl $impl --reps 3 2>&1 | tail -7 | tee -a $R
  done
done
for impl in wmma cublas; do
  [ $(left) -lt 180 ] && break
  say "-- --gemm --impl $impl --tokens 512"
  timeout 60 $H/hearth-cli bench --gemm 4096x4096,11008x4096,4096x11008 --tokens 512 --backend cuda --impl $impl \
    --reps 3 2>&1 | tail -5 | tee -a $R
done

wait $MK 2>/dev/null
one() {   # model, prompt, env...
  local m=$1 p=$2; shift 2
  env "$@" timeout 100 $H/hearth-cli bench -m /tmp/m-$m --backend cuda -p $p -n 128 --reps 2 --json 2>&1 |
    python3 -c "import json,sys;t=sys.stdin.read()
try:
  d=json.loads(t[t.index('{'):]);print('prefill %7.0f t/s  ttft %6.1f ms  decode %6.1f t/s  load %5.1f s'%(d['prefill_tok_s'],d['ttft_ms'],d['decode_tok_s'],d['load_s']))
except Exception: print('FAILED', t[-300:].replace(chr(10),' '))"
}
# A = the defaults with the parallel repack (LAY: the same words, no kernel changes; the default one took
# 39-44 s a 7B there, a load per run), B = every opt-in; one load with the default repack, for its figure
LAY=HEARTH_CUDA_REPACK=layout
ALL="HEARTH_CUDA_GEMV=q8 HEARTH_CUDA_ATTN=tiled HEARTH_CUDA_GEMM=cublas $LAY HEARTH_CUDA_LM_HEAD=q8 HEARTH_DEVICE_SAMPLING=1"
say "== llama-2-7b p=512 with the default repack: $(one llama-2-7b 512 HEARTH_NONE=1)"
say "== models, A = $LAY, B = $ALL (alternated)"
for m in llama-2-7b llama-3-8b llama-3.2-1b; do
  for p in 512; do
    for round in 1 2; do
      [ $(left) -lt 60 ] && { say "skip $m round $round: time"; continue; }
      say "$m p=$p A: $(one $m $p $LAY)"
      say "$m p=$p B: $(one $m $p $ALL)"
    done
  done
done
say "== each path alone, llama-2-7b p=512"
for e in HEARTH_CUDA_OPS=1 HEARTH_CUDA_GEMV=q8 HEARTH_CUDA_ATTN=tiled HEARTH_CUDA_GEMM=cublas; do
  [ $(left) -lt 40 ] && { say "skip $e: time"; continue; }
  say "$e: $(one llama-2-7b 512 $LAY $e)"
done
say "== the draw at the app's settings, llama-3-8b (128K vocabulary): host, device, host, device"
APP="--temp 0.7 --top-k 40 --top-p 0.95 --min-p 0.05 --repeat-penalty 1.1"
for d in 0 1 0 1; do
  [ $(left) -lt 50 ] && break
  say "HEARTH_DEVICE_SAMPLING=$d: $(env $LAY HEARTH_DEVICE_SAMPLING=$d timeout 100 $H/hearth-cli bench -m /tmp/m-llama-3-8b \
      --backend cuda -p 128 -n 128 --reps 2 $APP 2>&1 | grep -i -E 'decode|draws' | tr '\n' ' ')"
done
say "== long context, llama-2-7b p=2048: A then B"
[ $(left) -gt 60 ] && say "A: $(one llama-2-7b 2048 $LAY)"
[ $(left) -gt 40 ] && say "B: $(one llama-2-7b 2048 $ALL)"
say "== the AWQ search on the device (HEARTH_AWQ_DEVICE=1: forward, candidates, losses, clip; cuBLAS steps of 512): one Llama-2-7B layer, 32 x 512"
if [ $(left) -gt 90 ]; then
  $H/hr-make-random-model --shape llama-2-7b --layers 1 --out /tmp/q7b1 --tokenizer .gpu/assets/tokenizers/spm32k-llama2 \
    >/dev/null 2>&1
  s=$(date +%s)
  HEARTH_AWQ_DEVICE=1 HEARTH_CUDA_GEMM=cublas HEARTH_AWQ_TRACE=1 timeout $(( $(left) - 10 )) $H/hearth-cli quantize --method awq --backend cuda \
    -i /tmp/q7b1 -o /tmp/q7b1-awq --calib .gpu/calibration.txt --samples 32 --seqlen 512 > $OUT/quant-device.log 2>&1
  say "exit $? after $(( $(date +%s) - s )) s: $(grep -E 'awq-trace: [a-z ]+ [0-9.]+ s$|awq: layer' $OUT/quant-device.log | tr '\n' ';')"
fi
echo; echo "===== optin ====="; cat $R
