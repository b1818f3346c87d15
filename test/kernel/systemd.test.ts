// Kernel tier, systemd group: ONE guest boot with systemd as PID 1 runs
// test/kernel/guest/systemd.guest.ts: qemu-dbus-bridge@win-11.service installed as systemd/README.md
// says, under the real `systemd --user` of a user in the input and video groups (READY=1, STATUS=,
// watchdog, SIGKILL -> Restart=on-failure, stop releases a held key), then which hardening options
// the user manager enforces. Each in-guest check is one test here.
import * as fs from 'fs';
import * as path from 'path';
import { bundleScript } from '../harness/cli';
import { guestGroupSuite } from '../harness/kernel-vm';
import { FAKE_VM_SOURCE, fakeVmBundle } from './guest/fake-vm-source';

// The guest's fake VM is bundled here, before the boot: esbuild inside the TCG guest stalled the
// group past its time limit in a full run.
const fakeVm = fakeVmBundle(path.join(__dirname, '..', '..'));
bundleScript(FAKE_VM_SOURCE, fakeVm, ['usocket']);
fs.chmodSync(path.dirname(fakeVm), 0o755);

guestGroupSuite(
  'kernel tier: the unit under a real systemd --user',
  { name: 'systemd', mode: 'systemd', vitest: ['test/kernel/guest/systemd.guest.ts'], timeoutS: 600 },
  ['READY=1', 'STATUS=', 'watchdog', 'SIGKILL', 'releases a key', 'NOT enforced: DevicePolicy'],
);
