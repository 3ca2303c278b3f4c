#!/bin/sh
# hearth-cli models found / add (app/hearth-found.c) on an Ollama store made here: the model is listed by
# Ollama's name, added as a link that `models list` shows and `found` then marks as added; a second add
# gives the same folder; an unknown name and a model Hearth cannot run fail with a message and exit 1.
# Usage: test-cli-found.sh HEARTH_CLI SOURCE_ROOT
set -u
cli="$1"; src="$2"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
export HOME="$tmp/home" XDG_CACHE_HOME="$tmp/home/.cache" XDG_DATA_HOME="$tmp/home/.local/share"
export OLLAMA_MODELS="$tmp/home/.ollama/models"
unset HF_HOME HF_HUB_CACHE LLAMA_CACHE HOST_XDG_CACHE_HOME HOST_XDG_DATA_HOME
mkdir -p "$OLLAMA_MODELS/blobs"
put() { # tag seed
    sha=$(sha256sum "$src/tests/fuzz/corpus-gguf/$2" | cut -d' ' -f1)
    cp "$src/tests/fuzz/corpus-gguf/$2" "$OLLAMA_MODELS/blobs/sha256-$sha"
    mkdir -p "$OLLAMA_MODELS/manifests/registry.ollama.ai/library/${1%%:*}"
    printf '{"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s"}]}' "$sha" \
        > "$OLLAMA_MODELS/manifests/registry.ollama.ai/library/${1%%:*}/${1#*:}"
}
put tiny:q4 seed-llama-spm.gguf
put broken:latest seed-every-type.gguf
models="$tmp/models"

out=$("$cli" models found --dir "$models"); rc=$?
printf '%s\n' "$out"
check '[ $rc -eq 0 ]' "models found exited $rc"
check 'printf "%s" "$out" | grep -Eq "^Ollama +tiny:q4 .*can be added"' "tiny:q4 not listed as addable"
check 'printf "%s" "$out" | grep -Eq "^Ollama +broken:latest .*! "' "broken:latest not listed with its problem"

path=$("$cli" models add tiny:q4 --dir "$models"); rc=$?
check '[ $rc -eq 0 ] && [ "$path" = "$models/tiny-q4" ]' "models add printed '$path', exit $rc"
check '[ -L "$models/tiny-q4/tiny-q4.gguf" ]' "no link in the added folder"
again=$("$cli" models add tiny:q4 --dir "$models")
check '[ "$again" = "$path" ]' "a second add gave '$again'"
check '"$cli" models list --dir "$models" | grep -q "^tiny-q4 "' "models list lacks tiny-q4"
check '"$cli" models found --dir "$models" | grep -q "added: $models/tiny-q4"' "found does not say it was added"

err=$("$cli" models add nope:1 --dir "$models" 2>&1); rc=$?
check '[ $rc -eq 1 ] && printf "%s" "$err" | grep -q "no model named .nope:1. found"' "unknown name: exit $rc, '$err'"
err=$("$cli" models add broken:latest --dir "$models" 2>&1); rc=$?
check '[ $rc -eq 1 ] && printf "%s" "$err" | grep -q "cannot run here"' "broken model: exit $rc, '$err'"
exit $fail
