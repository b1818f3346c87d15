// Kernel tier, hand-over group: ONE guest boot (script mode) runs test/kernel/guest/handover.guest.ts:
// the grab-next hand-over (issue 18) between two bridge CLIs on one real uinput keyboard, with the
// project's fake QEMU peers as the two VMs and one session dbus-daemon in the guest. Each in-guest
// check is one test here.
import { guestGroupSuite } from '../harness/kernel-vm';

guestGroupSuite(
  'kernel tier: grab-next hand-over on a real keyboard',
  { name: 'handover', mode: 'script', vitest: ['test/kernel/guest/handover.guest.ts'], timeoutS: 400, cli: true },
  ['gives the keyboard to ho-b', 'lets go of the grab before ho-a takes it', 'back to the host', 'exactly its own keys', 'held alone', 'SIGKILL'],
);
