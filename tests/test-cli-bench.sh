#!/bin/sh
# hearth-cli bench on stories260K: the JSON report has every figure, finite
# and positive, and the roofline is consistent with them.
set -u
cli="$1"
model="${HEARTH_ASSETS:-}/models/stories260K/hf_f16"
[ -d "$model" ] || { echo "SKIP: $model is absent"; exit 77; }
out=$("$cli" bench -m "$model" -p 16 -n 8 --reps 2 --json) || { echo "FAIL: bench exited $?"; exit 1; }
echo "$out"
fail=0
for k in prefill_tok_s decode_tok_s ttft_ms bytes_per_token read_bandwidth_gb_s roofline_tok_s peak_rss_mb; do
    v=$(echo "$out" | sed -n "s/^ *\"$k\" : \([0-9.e+-]*\).*/\1/p")
    awk -v v="$v" 'BEGIN{exit !(v+0 > 0)}' || { echo "FAIL: $k = '$v' is not a positive number"; fail=1; }
done
# roofline = bandwidth / bytes per token
echo "$out" | awk -F' : ' '/"bytes_per_token"/{b=$2+0} /"read_bandwidth_gb_s"/{w=$2*1e9} /"roofline_tok_s"/{r=$2+0}
    END{d=r-w/b; if (d<0) d=-d; exit !(d <= 1e-6*r)}' || { echo "FAIL: roofline is not bandwidth / bytes per token"; fail=1; }
text=$("$cli" bench -m "$model" -p 8 -n 4 --reps 1) || { echo "FAIL: text bench exited $?"; fail=1; }
case "$text" in *"decode"*"tok/s"*) ;; *) echo "FAIL: text output lacks the decode line"; fail=1 ;; esac
err=$("$cli" bench -m "$model" -p 600 -n 600 --ctx 512 2>&1 >/dev/null)
case "$err" in *"exceeds the context"*) ;; *) echo "FAIL: -p + -n over the context: '$err'"; fail=1 ;; esac
exit $fail
