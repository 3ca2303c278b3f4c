#!/bin/sh
# A translation is complete: msgfmt --check accepts it, it has no fuzzy and no
# untranslated message, and it translates every message the sources have now
# (the template is extracted afresh from po/POTFILES with meson's "glib"
# preset keywords, so a string added without updating the .po fails here).
# Usage: check-po.sh SOURCE_ROOT LANG
set -eu
root=$(cd "$1" && pwd); lang=$2
po="$root/po/$lang.po"
for tool in msgfmt msgcmp xgettext; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

stats=$(LC_ALL=C msgfmt --check --statistics -o "$tmp/$lang.mo" "$po" 2>&1) || { echo "$stats"; echo "FAIL: msgfmt --check rejects $po"; exit 1; }
echo "$lang.po: $stats"
fuzzy=$(printf '%s\n' "$stats" | sed -n 's/.* \([0-9][0-9]*\) fuzzy translation.*/\1/p')
untranslated=$(printf '%s\n' "$stats" | sed -n 's/.* \([0-9][0-9]*\) untranslated message.*/\1/p')
status=0
[ -z "$fuzzy" ] || [ "$fuzzy" = 0 ] || { echo "FAIL: $fuzzy fuzzy translation(s)"; status=1; }
[ -z "$untranslated" ] || [ "$untranslated" = 0 ] || { echo "FAIL: $untranslated untranslated message(s)"; status=1; }

cd "$root"
xgettext --package-name=hearth --from-code=UTF-8 --add-comments \
    --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 --keyword=ngettext:1,2 \
    --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 \
    --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format \
    --flag=g_strdup_printf:1:c-format --flag=g_string_append_printf:2:c-format \
    --flag=g_set_error:4:c-format --flag=g_printerr:1:c-format \
    --files-from=po/POTFILES -o "$tmp/hearth.pot"
# Every message of the template has a (non-fuzzy) translation.
if ! msgcmp "$po" "$tmp/hearth.pot" 2>"$tmp/msgcmp.log"; then
    cat "$tmp/msgcmp.log"
    echo "FAIL: po/$lang.po lacks messages the sources have; run 'meson compile -C BUILD hearth-update-po' and translate them"
    status=1
fi
# No format string mismatches when checked against the template's flags.
msgmerge --quiet --no-fuzzy-matching -o "$tmp/merged.po" "$po" "$tmp/hearth.pot"
msgfmt --check -o /dev/null "$tmp/merged.po" || { echo "FAIL: format mismatches against the current template"; status=1; }
[ $status = 0 ] && echo "ok: $lang.po translates all $(grep -c '^msgid ' "$tmp/hearth.pot") template entries (header included)"
exit $status
