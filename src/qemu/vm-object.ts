// org.qemu.Display1.VM at /org/qemu/Display1/VM.
import { VMProxy } from './generated/display1';
import { RemoteObject, type QemuLink } from './remote-object';

export const VM_PATH = '/org/qemu/Display1/VM';
export const VM_IFACE = 'org.qemu.Display1.VM';

export interface VmIdentity {
  name: string;
  uuid: string;
  consoleIds: number[];
}

export async function readVmIdentity(link: QemuLink, timeoutMs?: number): Promise<VmIdentity> {
  const p = await new VMProxy(new RemoteObject(link, VM_PATH)).getAll(timeoutMs);
  return { name: p.Name, uuid: p.UUID, consoleIds: p.ConsoleIDs ?? [] };
}
