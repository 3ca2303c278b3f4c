#!/bin/bash
# The first call of a device session: every opt-in's correctness and the figures that decide the
# defaults, for both GPU backends, in ONE call that fits a session's device time (15 minutes in all,
# a few of them spent starting the machine). cuda-optin-ab.sh and vulkan-optin-ab.sh measure more,
# but each takes most of a call; run one of them second if time is left. Runs ON the GPU machine:
#
#   ../shared/gpu/prepare.sh && cp build-gpu/tests/test-awq-device-cuda build-gpu/tests/test-cuda-sample .gpu/
#          (here; the copies are for the second call, device-second.sh, right after this one)
#   device run:  command "bash tests/bench/device-first.sh"   carry [".gpu"]   timeout_s 540
#
# The kind: a call that names none gets an H100 (about 3.35 TB/s against the H200's 4.8), which decides the
# defaults as well (every figure here is A against B in one run); naming nvidia-h200 rules out free H100s (a
# failed start costs minutes) and is for the issues' absolute targets, which, like ../shared/gpu/BASELINE.md,
# are H200 figures.
#
# Sections in the order of what the next decision needs; each is skipped when the budget (BUDGET,
# default 500 s) would not cover it, so a slow device still returns the first ones:
#   1. CUDA correctness: test-cuda-kernels, test-cuda-model (it checks the opt-in paths against the
#      CPU too), test-cuda-model under HEARTH_CUDA_OPS=1 (the op table under engine/llama.c);
#   2. CUDA Llama-2-7B AWQ p=512: the defaults once (A0, for the load), then alternated the defaults with the
#      parallel repack (A) against every opt-in (B);
#   3. Vulkan correctness: test-vulkan-kernels (its coop config: the GEMM on matrix units), and
#      test-vulkan-model with the defaults, with the int8 GEMV and lm_head, with HEARTH_VULKAN_GEMM=coop and
#      with HEARTH_VULKAN_ATTN=tile;
#   4. kernels alone: CUDA GEMV (gemv, q8) and GEMM (wmma, cublas); Vulkan GEMM (default, coop with
#      three tiles) and GEMV (default, wide, q8);
#   5. Vulkan Llama-2-7B AWQ p=512, alternated: defaults (A), int8-activation GEMV, int8 lm_head and attention
#      tiles (B), coop GEMM (C), wide GEMV (D);
#   6. CUDA each opt-in alone on the 7B; Llama-3-8B A/B on CUDA.
# Everything lands in $OUT/first.txt; the logs in $OUT/logs.tar.gz (one file: a call brings back 8 files
# of $OUT at most, and the tests' logs alone are more).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
T0=$(date +%s); DEADLINE=$((T0 + ${BUDGET:-500}))
left() { echo $((DEADLINE - $(date +%s))); }
R=$OUT/first.txt; : > $R
L=/tmp/first-logs; rm -rf $L; mkdir -p $L
trap 'tar czf $OUT/logs.tar.gz -C $L .' EXIT
say() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $R; }
# afford N: true when N seconds are left, else says what is skipped
afford() { [ $(left) -ge $1 ] && return 0; say "skipped (time): $2"; return 1; }

STAGES=none BUDGET=60 bash .gpu/device-run.sh > $L/unpack.log 2>&1
source tests/bench/device-env.sh   # H, the libraries, the Vulkan driver and validation layer
[ -x $H/hearth-cli ] || { say "no $H/hearth-cli: the unpacking failed"; tail -5 $L/unpack.log | tee -a $R; exit 1; }
head -1 $OUT/summary.txt 2>/dev/null | tee -a $R
$H/hearth-cli devices 2>&1 | grep -E "integer dot|cooperative" | tee -a $R   # OpSDot accelerated? matrix units?
( for s in llama-2-7b llama-3-8b; do
    [ -d /tmp/m-$s ] || { $H/hr-make-random-model --shape $s --awq 128 --out /tmp/m-$s.part >/dev/null 2>&1 &&
                          mv /tmp/m-$s.part /tmp/m-$s; }
  done ) &

# test NAME TIMEOUT [ENV...]: one test program, its exit code, failed checks and greedy-id lines
test1() {
  local t=$1 to=$2; shift 2
  local log=$L/$t${1:+-${1%%=*}}.log
  env "$@" timeout $to $H/$t > $log 2>&1
  local rc=$? g; g=$(grep -oE "greedy ids equal [0-9]+/[0-9]+" $log | awk -F'[ /]' '{n++; if ($4 != $5) d++}
    END {printf "%d rows with greedy ids, %d of them parting", n, d}')
  say "$t ${*:-(defaults)}: exit $rc ($(grep -c 'check failed' $log) failed checks; $g)"
  grep -E "check failed|greedy ids part|FAIL" $log | head -3 | tee -a $R
}
# bench BACKEND MODEL P ENV...: prefill, ttft, decode, load of one model
bench1() {
  local b=$1 m=$2 p=$3; shift 3
  [ -d /tmp/m-$m ] || { echo "no model $m"; return; }
  env "$@" timeout 120 $H/hearth-cli bench -m /tmp/m-$m --backend $b -p $p -n 64 --reps 2 --ctx $((p + 128)) \
    --json 2>&1 | python3 -c "import json,sys;t=sys.stdin.read()
try:
  d=json.loads(t[t.index('{'):]);print('prefill %7.0f t/s  ttft %6.1f ms  decode %6.1f t/s  load %5.1f s'%(d['prefill_tok_s'],d['ttft_ms'],d['decode_tok_s'],d['load_s']))
except Exception: print('FAILED', t[-300:].replace(chr(10),' '))"
}
wait_model() { local i=0; while [ ! -d /tmp/m-$1 ] && [ $i -lt ${2:-120} ]; do sleep 2; i=$((i + 2)); done; }

say "== 1. CUDA correctness"
afford 60 test-cuda-kernels && test1 test-cuda-kernels 60
afford 120 test-cuda-model && test1 test-cuda-model 120
afford 100 "test-cuda-model HEARTH_CUDA_OPS=1" && test1 test-cuda-model 100 HEARTH_CUDA_OPS=1

# Loads: the default repack (one thread, a nibble at a time) took 39-44 s for a 7B on the H200
# (BASELINE.md); HEARTH_CUDA_REPACK=layout writes the same words on every core (test-cuda-repack; section 1's
# test-cuda-model runs it through the whole upload, its "layout repack" row). So A0 alone loads the default
# way, for the load figure; every other CUDA run adds LAY, which changes no kernel.
LAY=HEARTH_CUDA_REPACK=layout
ALL="HEARTH_CUDA_GEMV=q8 HEARTH_CUDA_ATTN=tiled HEARTH_CUDA_GEMM=cublas $LAY HEARTH_CUDA_LM_HEAD=q8 HEARTH_DEVICE_SAMPLING=1"
say "== 2. CUDA llama-2-7b p=512, A0 = defaults, A = $LAY, B = $ALL"
wait_model llama-2-7b 150
afford 90 "CUDA 7B A0" && say "cuda 7b A0: $(bench1 cuda llama-2-7b 512 HEARTH_NONE=1)"
for round in 1 2; do
  afford 60 "CUDA 7B round $round" || break
  say "cuda 7b A: $(bench1 cuda llama-2-7b 512 $LAY)"
  say "cuda 7b B: $(bench1 cuda llama-2-7b 512 $ALL)"
done

say "== 3. Vulkan correctness"
afford 60 test-vulkan-kernels && { test1 test-vulkan-kernels 90; grep -E "^device|matrix|/coop" \
  $L/test-vulkan-kernels.log | head -8 | tee -a $R; }
# the defaults too: none of today's Vulkan paths has run on a GPU since the baseline (device-run's test stage,
# which device-first does not run, is where they ran then)
afford 50 "test-vulkan-model" && test1 test-vulkan-model 90
afford 50 "test-vulkan-model q8" && test1 test-vulkan-model 90 HEARTH_VULKAN_GEMV=q8 HEARTH_VULKAN_LM_HEAD=q8
afford 50 "test-vulkan-model coop" && test1 test-vulkan-model 90 HEARTH_VULKAN_GEMM=coop
afford 50 "test-vulkan-model tile" && test1 test-vulkan-model 90 HEARTH_VULKAN_ATTN=tile

say "== 4. kernels alone"
S="4096x4096,11008x4096,4096x11008"
# kb LABEL ENV... -- ARGS: one kernel bench; its figure lines, or its last lines when it printed none
kb() {
  local label=$1; shift; local e=(); while [ "$1" != -- ]; do e+=("$1"); shift; done; shift
  afford 40 "$label" || return
  local o rc; o=$(env "${e[@]}" timeout 40 $H/hearth-cli bench "$@" 2>&1); rc=$?
  { grep -E "^(bandwidth|peak|gemv|gemm) " <<< "$o" ||
    { [ $rc = 124 ] && echo "timed out after 40 s"; tail -2 <<< "$o" | grep .; }; } | sed "s/^/[$label] /" | tee -a $R
}
for impl in gemv q8; do kb "cuda gemv $impl" -- --gemv $S --backend cuda --impl $impl --reps 3; done
for impl in wmma cublas; do kb "cuda gemm $impl" -- --gemm $S --tokens 512 --backend cuda --impl $impl --reps 3; done
kb "vulkan gemm" -- --gemm $S --tokens 512 --backend vulkan
kb "vulkan gemm coop" HEARTH_VULKAN_GEMM=coop -- --gemm $S --tokens 512 --backend vulkan
# the coop tile (rows x tokens / a subgroup's part; the kernel name says which ran: one that does not fit
# falls back to the plain GEMM): more tokens a tile halves the weight reads, more rows the activation reads
for t in 128,128,64,64 256,64,64,32; do
  kb "vulkan gemm coop $t" HEARTH_VULKAN_GEMM=coop HEARTH_VULKAN_COOP_TILE=$t -- --gemm $S --tokens 512 --backend vulkan
done
kb "vulkan gemv" -- --gemv $S --backend vulkan
kb "vulkan gemv wide" HEARTH_VULKAN_GEMV=wide -- --gemv $S --backend vulkan
kb "vulkan gemv q8" HEARTH_VULKAN_GEMV=q8 -- --gemv $S --backend vulkan

say "== 5. Vulkan llama-2-7b p=512: A defaults, B HEARTH_VULKAN_ATTN=tile HEARTH_VULKAN_GEMV=q8 HEARTH_VULKAN_LM_HEAD=q8, C HEARTH_VULKAN_GEMM=coop, D HEARTH_VULKAN_GEMV=wide"
for round in 1 2; do
  afford 120 "Vulkan 7B round $round" || break
  say "vulkan 7b A: $(bench1 vulkan llama-2-7b 512 HEARTH_NONE=1)"
  say "vulkan 7b B: $(bench1 vulkan llama-2-7b 512 HEARTH_VULKAN_ATTN=tile HEARTH_VULKAN_GEMV=q8 HEARTH_VULKAN_LM_HEAD=q8)"
  say "vulkan 7b C: $(bench1 vulkan llama-2-7b 512 HEARTH_VULKAN_GEMM=coop)"
  say "vulkan 7b D: $(bench1 vulkan llama-2-7b 512 HEARTH_VULKAN_GEMV=wide)"
done

say "== 6. CUDA each opt-in alone (7B p=512, with $LAY), then llama-3-8b A/B"
for e in HEARTH_CUDA_OPS=1 ${ALL/$LAY/}; do
  afford 30 "cuda 7b $e" && say "cuda 7b $e: $(bench1 cuda llama-2-7b 512 $LAY $e)"
done
afford 60 "cuda 8b" && { wait_model llama-3-8b 30; say "cuda 8b A: $(bench1 cuda llama-3-8b 512 $LAY)";
  say "cuda 8b B: $(bench1 cuda llama-3-8b 512 $ALL)"; }
say "done"
