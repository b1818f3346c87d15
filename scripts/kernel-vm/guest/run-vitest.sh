#!/bin/bash
# In the guest: run the kernel tier's in-guest vitest files (test/kernel/guest/*.guest.ts) with the
# checkout's own vitest, the JSON report in the shared run dir (/mnt/kdev/vitest.json) for the host
# (test/harness/kernel-vm.ts). Not `npx vitest`: npx alone costs 15-40 s under TCG.
# Usage: run-vitest.sh FILE...   (from the repo root)
t0=$(cut -d' ' -f1 /proc/uptime)
node node_modules/vitest/vitest.mjs run --config test/kernel/vitest.guest.config.ts \
  --reporter=default --reporter=json --outputFile.json=/mnt/kdev/vitest.json "$@"
rc=$?
echo "KDEV-MARK vitest-end $(cut -d' ' -f1 /proc/uptime) (started $t0, exit $rc)"
exit $rc
