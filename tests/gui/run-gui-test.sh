#!/bin/sh
# Run a dogtail GUI test against the real window: private D-Bus session,
# Xvfb display and AT-SPI bus, as ../shared/TESTING.md describes.
# Usage: run-gui-test.sh TEST.py HEARTH_BINARY [OUTPUT_DIR]
set -eu
for tool in xvfb-run dbus-run-session /usr/libexec/at-spi-bus-launcher; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || { echo "SKIP: $tool is not installed"; exit 77; }
done
/usr/bin/python3 -c 'import dogtail' 2>/dev/null || { echo "SKIP: python3-dogtail is not installed"; exit 77; }

export GSK_RENDERER=cairo GTK_A11Y=atspi NO_AT_BRIDGE=0
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
export XDG_RUNTIME_DIR="$tmp/run" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" XDG_CACHE_HOME="$tmp/cache"
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
export HEARTH_GUI_OUT="${3:-$tmp}"
mkdir -p "$HEARTH_GUI_OUT"

exec dbus-run-session -- xvfb-run -a -s '-screen 0 1280x800x24' sh -c '
  /usr/libexec/at-spi-bus-launcher --launch-immediately &
  sleep 1
  /usr/bin/python3 "$0" "$1"
' "$1" "$2"
