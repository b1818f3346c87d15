#!/usr/bin/env bash
# scripts/run-tests.sh — the vitest part of `npm test`, in three phases.
#  1. The real-time audio tests, one file at a time: they measure underruns, gaps and the drift
#     controller's fill against the clock over up to 60 s, and a TCG guest or a second test file
#     emulating on the other core stalls the whole test process now and then (seen in full runs as
#     underruns of every voice at the same moment, with or without drift control). Alone, they
#     measure the bridge, which is what they are for. The speaker suite (audio-out-pipewire/-pulse)
#     and harness-audio hold a played tone to "no gap, no underrun" as well: run two files at a time
#     beside a TCG guest, the speaker on PulseAudio underran once (a 21 ms gap, 1 in 1048 tests).
#  2. Everything else, two files at a time (vitest.config.ts).
#  3. The whole-system tiers (the kernel-device VMs, the package tests' clean root, the real
#     libvirtd), which keep both cores busy with TCG guests for minutes.
# Every phase runs even when an earlier one failed: one red run shows every failure. Arguments go
# to every vitest run (e.g. --reporter=verbose).
set -euo pipefail
cd "$(dirname "$0")/.."
REALTIME=(test/integration/audio-out-drift.test.ts test/integration/audio-out-formats.test.ts
  test/integration/audio-out-guest.test.ts test/integration/audio-out-reattach.test.ts
  test/integration/audio-in-guest.test.ts test/integration/audio-e2e-timing.test.ts
  test/integration/audio-out-pipewire.test.ts test/integration/audio-out-pulse.test.ts
  test/integration/harness-audio.test.ts)
SYSTEM_TIERS=(test/kernel test/package test/integration/libvirt.test.ts)

excludes=()
for t in "${REALTIME[@]}" "${SYSTEM_TIERS[@]}"; do
  case "$t" in *.ts) excludes+=(--exclude "$t") ;; *) excludes+=(--exclude "$t/**") ;; esac
done
status=0
node_modules/.bin/vitest run --no-file-parallelism "${REALTIME[@]}" "$@" || status=$?
node_modules/.bin/vitest run "${excludes[@]}" "$@" || status=$?
node_modules/.bin/vitest run "${SYSTEM_TIERS[@]}" "$@" || status=$?
exit $status
