#!/bin/sh
# hearth-cli --version and devices: the version matches the build, every
# backend compiled in is listed, and a backend without devices says so.
set -u
cli="$1"; version="$2"; have_vulkan="$3"; have_cuda="$4"
fail=0
check() { if ! eval "$1"; then echo "FAIL: $2"; fail=1; fi; }

out=$("$cli" --version) || { echo "FAIL: --version exited $?"; exit 1; }
check '[ "$out" = "hearth-cli $version" ]' "--version printed '$out'"

devices=$("$cli" devices 2>&1); rc=$?
printf '%s\n' "$devices"
check '[ $rc -eq 0 ]' "devices exited $rc"
check 'printf "%s" "$devices" | grep -q "^CPU backend: built in"' "CPU backend missing"
if [ "$have_vulkan" = 1 ]; then
    check 'printf "%s" "$devices" | grep -q "^Vulkan backend: built in"' "Vulkan backend not listed"
    # Each device line carries a verdict (chosen / why not).
    check 'printf "%s" "$devices" | grep -Eq "^  \[[0-9]+\] .*: "' "no Vulkan device verdicts"
else
    check 'printf "%s" "$devices" | grep -q "^Vulkan backend: not built"' "missing 'not built' line"
fi
if [ "$have_cuda" = 1 ]; then
    check 'printf "%s" "$devices" | grep -q "^CUDA backend: built in"' "CUDA backend not listed"
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        check 'printf "%s" "$devices" | grep -q "no CUDA device"' "no-device line missing"
    fi
fi

"$cli" no-such-command >/dev/null 2>&1
check '[ $? -eq 2 ]' "unknown command should exit 2"
exit $fail
