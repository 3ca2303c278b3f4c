#!/bin/sh
# with-xvfb.sh CMD [ARGS...]: runs CMD with DISPLAY on a private Xvfb (1280x800x24) and returns its
# exit status. The server picks its own display number (-displayfd), so GUI tests running at the
# same time never race for one, as two `xvfb-run -a` can (each looks for a free lock file, then
# starts its server). No TCP, no authorization file: only local clients reach it.
set -u
command -v Xvfb >/dev/null 2>&1 || { echo "SKIP: Xvfb is not installed"; exit 77; }
tmp=$(mktemp -d)
xpid=
trap 'if [ -n "$xpid" ]; then kill "$xpid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
trap 'exit 143' INT TERM
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$tmp/display" 2>"$tmp/log" &
xpid=$!
# the number is written once the server takes connections
i=0
while [ ! -s "$tmp/display" ]; do
    if ! kill -0 "$xpid" 2>/dev/null; then
        echo "Xvfb failed to start:"; cat "$tmp/log"; exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 300 ]; then echo "Xvfb named no display in 30 s:"; cat "$tmp/log"; exit 1; fi
    sleep 0.1
done
DISPLAY=":$(cat "$tmp/display")"
export DISPLAY
"$@"
