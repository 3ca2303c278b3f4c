#!/bin/sh
# hearth-cli perplexity on stories260K over the first 4 windows of WikiText-2
# equals transformers' figure (tests/fixtures/perplexity/stories-260k.json,
# from tests/reference/make_ppl_fixture.py) within 1e-4 relative.
set -u
cli="$1"; fixture="$2"
assets="${HEARTH_ASSETS:-}"
model="$assets/models/stories260K/hf_f32"; text="$assets/text/wikitext2-test.txt"
[ -d "$model" ] && [ -f "$text" ] || { echo "SKIP: stories260K or wikitext2-test.txt is absent"; exit 77; }
want=$(sed -n 's/.*"ppl": *\([0-9.e+-]*\).*/\1/p' "$fixture")
got=$("$cli" perplexity -m "$model" -f "$text" --ctx 512 --max-windows 4 --kv f32 2>/dev/null | sed -n 's/^ppl = //p')
echo "ppl: got $got, transformers $want"
[ -n "$got" ] || { echo "FAIL: no 'ppl = ' line"; exit 1; }
awk -v a="$got" -v b="$want" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; exit !(d <= 1e-4) }' || { echo "FAIL: relative difference above 1e-4"; exit 1; }
