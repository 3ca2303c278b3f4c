#!/bin/sh
# D-Bus activation (DBusActivatable=true): on a private session bus whose only
# service folder holds the built .service file (its Exec pointed at the binary
# under test), org.freedesktop.Application.Activate on the app id makes the bus
# start "hearth --gapplication-service", which then owns the name, exports the
# app actions, opens its window and quits on ActivateAction("quit").
# Usage: test-dbus-activation.sh HEARTH_BINARY SERVICE_FILE APP_ID
set -eu
binary=$(realpath "$1"); service=$2; app_id=$3
for tool in Xvfb dbus-run-session dbus-daemon gdbus; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
done
grep -qx "Name=$app_id" "$service" || { echo "FAIL: $service does not name $app_id"; exit 1; }
grep -q '^Exec=/.*/hearth --gapplication-service$' "$service" || { echo "FAIL: $service: Exec is not 'BINDIR/hearth --gapplication-service'"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/services" "$tmp/run" && chmod 700 "$tmp/run"
sed "s|^Exec=.*/hearth |Exec=$binary |" "$service" > "$tmp/services/$app_id.service"
cat > "$tmp/session.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:tmpdir=$tmp</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$tmp/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
export XDG_RUNTIME_DIR="$tmp/run" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" XDG_CACHE_HOME="$tmp/cache"
export GSETTINGS_BACKEND=memory GTK_A11Y=none GSK_RENDERER=cairo
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
path=/$(printf '%s' "$app_id" | tr . /)

# The bus inherits DISPLAY and the environment above, and so does the app it starts.
cat > "$tmp/inner.sh" <<'INNER'
app_id=$1; path=$2
bus_has() {
    gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
        --method org.freedesktop.DBus.NameHasOwner "$app_id"
}
gdbus call --session --dest "$app_id" --object-path "$path" \
    --method org.freedesktop.Application.Activate "{}" >/dev/null || { echo "FAIL: Activate did not start hearth"; exit 1; }
[ "$(bus_has)" = "(true,)" ] || { echo "FAIL: nobody owns $app_id after Activate"; exit 1; }
actions=$(gdbus call --session --dest "$app_id" --object-path "$path" --method org.gtk.Actions.List)
echo "app actions: $actions"
for a in preferences about quit; do
    printf '%s' "$actions" | grep -q "'$a'" || { echo "FAIL: action app.$a is not exported"; exit 1; }
done
# The window Activate opened exports its action map (win.show-help-overlay) as window 1.
gdbus call --session --dest "$app_id" --object-path "$path/window/1" --method org.gtk.Actions.List \
    | grep -q "show-help-overlay" || { echo "FAIL: no window after Activate"; exit 1; }
gdbus call --session --dest "$app_id" --object-path "$path" \
    --method org.freedesktop.Application.ActivateAction quit "[]" "{}" >/dev/null
for i in $(seq 1 40); do
    [ "$(bus_has)" = "(false,)" ] && { echo "ok: D-Bus activated, window opened, quit"; exit 0; }
    sleep 0.25
done
echo "FAIL: hearth did not quit on app.quit"
exit 1
INNER
"$(dirname "$0")/with-xvfb.sh" dbus-run-session --config-file="$tmp/session.conf" -- \
    sh "$tmp/inner.sh" "$app_id" "$path"
