#!/usr/bin/env bash
# pw-env.sh — a private PipeWire + WirePlumber (optionally pipewire-pulse) with the test harness's
# configuration (test/harness/conf), for poking at by hand what the integration tests see:
# null sink vm-sink, null source vm-mic, no systemd, no D-Bus. Same recipe as test/harness/pipewire.ts.
#   bash scripts/pw-env.sh                 # interactive $SHELL with the env set; exit to stop
#   bash scripts/pw-env.sh --pulse wpctl status
#   bash scripts/pw-env.sh -- pw-top -b -n 3
# The daemons are stopped by their PIDs when the command ends; logs are printed if a daemon failed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PULSE=0
if [ "${1:-}" = --pulse ]; then PULSE=1; shift; fi
if [ "${1:-}" = -- ]; then shift; fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/qdb-pwenv-XXXXXX")"
RUN="$DIR/run"
mkdir -p "$RUN" "$DIR/config" "$DIR/state" "$DIR/data"
chmod 700 "$DIR" "$RUN"
cp -r "$ROOT/test/harness/conf/pipewire" "$ROOT/test/harness/conf/wireplumber" "$DIR/config/"

PIDS=()
cleanup() {
  # Reverse start order; by PID only.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid="${PIDS[i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}
trap cleanup EXIT
fail() {
  echo "pw-env.sh: $1" >&2
  for f in "$DIR"/*.log; do echo "--- $f" >&2; tail -n 40 "$f" >&2; done
  exit 1
}

unset DBUS_SESSION_BUS_ADDRESS PULSE_SERVER PIPEWIRE_REMOTE DISPLAY WAYLAND_DISPLAY
(
  export XDG_RUNTIME_DIR="$RUN" XDG_CONFIG_HOME="$DIR/config" XDG_STATE_HOME="$DIR/state" XDG_DATA_HOME="$DIR/data"
  exec pipewire
) >"$DIR/pipewire.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [ -S "$RUN/pipewire-0" ] && break; sleep 0.05; done
[ -S "$RUN/pipewire-0" ] || fail "pipewire did not create $RUN/pipewire-0"
(
  export XDG_RUNTIME_DIR="$RUN" XDG_CONFIG_HOME="$DIR/config" XDG_STATE_HOME="$DIR/state" XDG_DATA_HOME="$DIR/data"
  exec wireplumber
) >"$DIR/wireplumber.log" 2>&1 &
PIDS+=($!)

export XDG_RUNTIME_DIR="$RUN" PIPEWIRE_REMOTE="$RUN/pipewire-0"
ok=0
for _ in $(seq 600); do
  if pw-metadata -n default 0 default.audio.sink 2>/dev/null | grep -q '"vm-sink"'; then ok=1; break; fi
  sleep 0.05
done
[ "$ok" = 1 ] || fail "WirePlumber did not make vm-sink the default sink"

if [ "$PULSE" = 1 ]; then
  (
    export XDG_CONFIG_HOME="$DIR/config" XDG_STATE_HOME="$DIR/state" XDG_DATA_HOME="$DIR/data"
    exec pipewire -c pipewire-pulse.conf
  ) >"$DIR/pipewire-pulse.log" 2>&1 &
  PIDS+=($!)
  export PULSE_SERVER="unix:$RUN/pulse/native"
  for _ in $(seq 200); do pactl info >/dev/null 2>&1 && break; sleep 0.05; done
  pactl info >/dev/null 2>&1 || fail "pipewire-pulse did not answer pactl info"
fi

echo "pw-env.sh: PipeWire ready (XDG_RUNTIME_DIR=$RUN${PULSE_SERVER:+ PULSE_SERVER=$PULSE_SERVER}); logs in $DIR" >&2
if [ $# -eq 0 ]; then set -- "${SHELL:-bash}"; fi
"$@"
