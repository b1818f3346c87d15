// The fake VM of the kernel tier's systemd group: a fake QEMU peer as the test user on the user's
// session bus. Bundled on the host (test/kernel/systemd.test.ts), run in the guest
// (test/kernel/guest/systemd.guest.ts).
import * as path from 'path';

/** Where the bundle goes, under the checkout `root`. */
export const fakeVmBundle = (root: string): string => path.join(root, '.cache', 'kernel-systemd', 'fake-vm.js');

export const FAKE_VM_SOURCE = `import { FakeQemuPeer } from './test/fakes/qemu-peer';
(async () => {
  const p = await FakeQemuPeer.start({ busAddress: process.env.DBUS_SESSION_BUS_ADDRESS!, name: process.argv[2], width: 320, height: 240 });
  console.log('FAKE-VM up');
  let last = '';
  setInterval(() => {
    const s = JSON.stringify(p.keys);
    if (s !== last) console.log('FAKE-VM keys ' + s);
    last = s;
  }, 100);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
})().catch((e) => { console.log('FAKE-VM failed ' + e); process.exit(1); });
`;
