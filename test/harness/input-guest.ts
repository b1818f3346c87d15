// The test guest in its `keys` scenario, with the bridge's D-Bus VmInput on its console: what the
// input tests that drive a real QEMU start from (input-guest, input-hostile).
import { QemuVm } from '../../src/qemu';
import { DbusVmInput, createDbusVmInput } from '../../src/input/dbus-vm-input';
import { startGuest, type Guest, type GuestOptions } from './qemu';

export interface InputGuest {
  guest: Guest;
  qvm: QemuVm;
  vmInput: DbusVmInput;
  /** The guest's evdev node (e.g. 'event2') of each device name asked for, as its logger reports it. */
  devices: Record<string, string>;
}

/**
 * Boots the guest (`scenario: 'keys'`), waits until its event logger is ready and has named each
 * of `deviceNames` ('QEMU Virtio Keyboard', 'QEMU Virtio Tablet', ...), connects to its bus and
 * opens the console's Keyboard/Mouse. Close with closeInputGuest.
 */
export async function startInputGuest(opts: Omit<GuestOptions, 'scenario'>, deviceNames: string[]): Promise<InputGuest> {
  const guest = await startGuest({ ...opts, scenario: 'keys' });
  const devices: Record<string, string> = {};
  try {
    await guest.waitForSerial(/MARK keys-ready/, 120_000);
    for (const name of deviceNames) {
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      devices[name] = (await guest.waitForSerial(new RegExp(`input (event\\d+) name='${escaped}'`), 10_000))[1];
    }
    const qvm = await QemuVm.connect({ busAddress: guest.busAddress });
    qvm.on('error', () => undefined);
    const vmInput = await createDbusVmInput(qvm.console());
    return { guest, qvm, vmInput, devices };
  } catch (err) {
    await guest.stop();
    throw err;
  }
}

export async function closeInputGuest(g: Partial<InputGuest> | undefined): Promise<void> {
  await g?.vmInput?.close();
  await g?.qvm?.close();
  await g?.guest?.stop();
}
