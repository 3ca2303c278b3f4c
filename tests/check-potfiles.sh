#!/bin/sh
# po/POTFILES lists every source file with translatable strings (_(, N_(,
# C_(, NC_(, ngettext( in C; translatable="yes" in .ui and other XML), and
# every file it lists exists.
# Usage: check-potfiles.sh SOURCE_ROOT
set -eu
cd "$1"
listed=$(grep -v '^[[:space:]]*#' po/POTFILES | sed '/^[[:space:]]*$/d')
status=0
for f in $listed; do
    [ -f "$f" ] || { echo "FAIL: po/POTFILES lists $f, which does not exist"; status=1; }
done
marked=$( {
    grep -rlE '(^|[^A-Za-z0-9_])(N?_|C_|NC_|ngettext|g_dngettext)\(' --include='*.c' app engine quantize 2>/dev/null || true
    grep -rl 'translatable="yes"' --include='*.ui' --include='*.xml' --include='*.in' app data 2>/dev/null || true
} | sort -u)
for f in $marked; do
    printf '%s\n' "$listed" | grep -qx "$f" || { echo "FAIL: $f has translatable strings but is not in po/POTFILES"; status=1; }
done
# The desktop entry, the metainfo and the GSettings schema are translated too.
for f in data/io.github.hearthchat.Hearth.desktop.in data/io.github.hearthchat.Hearth.metainfo.xml.in \
         data/io.github.hearthchat.Hearth.gschema.xml; do
    printf '%s\n' "$listed" | grep -qx "$f" || { echo "FAIL: $f is not in po/POTFILES"; status=1; }
done
[ $status = 0 ] && echo "ok: po/POTFILES lists all $(printf '%s\n' "$marked" | wc -l) files with marked strings"
exit $status
