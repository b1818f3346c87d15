// Kernel tier, input group: ONE guest boot (udev running, QEMU's USB keyboard and mouse attached for
// /dev/input/by-id) runs test/kernel/guest/input.guest.ts: real evdev devices (uinput, USB HID) ->
// the bridge's CLI -> the project's fake QEMU peer in the guest; and input-source.guest.ts: the input
// source contract (test/contracts/input-source.contract.ts) on a real evdev node. Each in-guest
// check is one test here.
import { guestGroupSuite } from '../harness/kernel-vm';

guestGroupSuite(
  'kernel tier: evdev input on real devices',
  {
    name: 'input',
    mode: 'udev',
    qemuArgs: '-device qemu-xhci -device usb-kbd -device usb-mouse',
    vitest: ['test/kernel/guest/input.guest.ts', 'test/kernel/guest/input-source.guest.ts'],
    timeoutS: 400,
    memory: '2G',
    cli: true,
  },
  ['InputEventSource contract'],
);
