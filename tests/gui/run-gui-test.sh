#!/bin/sh
# Run a dogtail GUI test against the real window: private D-Bus session,
# Xvfb display and AT-SPI bus, as ../shared/TESTING.md describes.
# Usage: run-gui-test.sh TEST.py HEARTH_BINARY [OUTPUT_DIR [TEST ARGS...]]
set -eu
for tool in Xvfb dbus-run-session /usr/libexec/at-spi-bus-launcher; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || { echo "SKIP: $tool is not installed"; exit 77; }
done
/usr/bin/python3 -c 'import dogtail' 2>/dev/null || { echo "SKIP: python3-dogtail is not installed"; exit 77; }

export GSK_RENDERER=cairo GTK_A11Y=atspi NO_AT_BRIDGE=0
# Settings go to $XDG_CONFIG_HOME/glib-2.0/settings/keyfile (private, readable by the tests).
export GSETTINGS_BACKEND=keyfile
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
# The tests' XDG dirs are private; remember the real cache for test models.
export HEARTH_REAL_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
export XDG_RUNTIME_DIR="$tmp/run" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" XDG_CACHE_HOME="$tmp/cache"
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
export HEARTH_GUI_OUT="${3:-$tmp}"
mkdir -p "$HEARTH_GUI_OUT"

test_py=$1; binary=$2
shift 2; [ $# -gt 0 ] && shift
dbus-run-session -- "$(dirname "$0")/with-xvfb.sh" sh -c '
  /usr/libexec/at-spi-bus-launcher --launch-immediately &
  # the launcher owns its name within a few tenths of a second (asked without activating a second one)
  i=0
  until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.a11y.Bus 2>/dev/null | grep -q "boolean true"; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "the accessibility bus did not start in 10 s"; exit 1; }
    sleep 0.1
  done
  exec /usr/bin/python3 "$@"
' sh "$test_py" "$binary" "$@"
