#!/usr/bin/env bash
# scripts/run-tests.sh — the vitest part of `npm test`, in two phases.
# The whole-system tiers (the kernel-device VMs, the package tests' clean root, the real libvirtd)
# keep both cores busy with TCG guests for minutes; running them beside the audio tests, which
# measure underruns and gaps in real time, starves those of CPU and fails them for the machine's
# sake, not the bridge's. So phase 1 runs everything else (two files at a time, as before), and
# phase 2 the system tiers. Arguments go to both vitest runs (e.g. --reporter=verbose).
set -euo pipefail
cd "$(dirname "$0")/.."
SYSTEM_TIERS=(test/kernel test/package test/integration/libvirt.test.ts)

excludes=()
for t in "${SYSTEM_TIERS[@]}"; do
  case "$t" in *.ts) excludes+=(--exclude "$t") ;; *) excludes+=(--exclude "$t/**") ;; esac
done
status=0
node_modules/.bin/vitest run "${excludes[@]}" "$@" || status=$?
# phase 2 runs even when phase 1 failed: one red CI run should show every failure
node_modules/.bin/vitest run "${SYSTEM_TIERS[@]}" "$@" || status=$?
exit $status
