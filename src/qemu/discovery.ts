// Finding QEMU instances on a bus. Every QEMU asks for `org.qemu` without flags, so further
// instances queue behind the first: ListQueuedOwners names them all, and we always talk to the
// unique name (the well-known name silently moves to the next QEMU when the first one exits).
import type * as dbus from 'dbus-native';
import { dbusErrorCode } from './dbus-errors';
import { QemuDbusError, dbusErrorName, errorText } from './errors';
import type { QemuLink } from './remote-object';
import { readVmIdentity, type VmIdentity } from './vm-object';

export const QEMU_BUS_NAME = 'org.qemu';
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

export interface FoundVm extends VmIdentity {
  /** unique bus name (":1.42") */
  uniqueName: string;
}

export interface Discovery {
  vms: FoundVm[];
  /** owners of org.qemu that did not answer as a Display1 VM */
  unsupported: { uniqueName: string; reason: string }[];
}

export async function listQueuedOwners(bus: dbus.MessageBus, timeoutMs = 5000): Promise<string[]> {
  try {
    return await bus.invokeDbus<string[]>({ member: 'ListQueuedOwners', signature: 's', body: [QEMU_BUS_NAME] }, { timeout: timeoutMs });
  } catch (e) {
    if (dbusErrorCode(dbusErrorName(e)) === 'ENO_OWNER') return [];
    throw e;
  }
}

export async function discoverVms(bus: dbus.MessageBus, timeoutMs = 5000): Promise<Discovery> {
  const owners = await listQueuedOwners(bus, timeoutMs);
  const out: Discovery = { vms: [], unsupported: [] };
  await Promise.all(
    owners.map(async (uniqueName) => {
      const link: QemuLink = { bus, destination: uniqueName, canPassFds: true };
      try {
        out.vms.push({ uniqueName, ...(await readVmIdentity(link, timeoutMs)) });
      } catch (e) {
        out.unsupported.push({ uniqueName, reason: errorText(e) });
      }
    }),
  );
  out.vms.sort((a, b) => compareUniqueNames(a.uniqueName, b.uniqueName));
  return out;
}

const UNIQUE_NAME = /^:(\d+)\.(\d+)$/;

/**
 * Unique bus names (":1.42") in the order the bus handed them out: each number by value (":1.9"
 * before ":1.10"), anything else by code unit. Not `localeCompare(…, { numeric: true })`: its ICU
 * collation touches ~2 MB of Node's binary that a bridge otherwise never reads, in every bridge
 * that once saw two VMs on its bus (issue 17, resident memory per bridge).
 */
export function compareUniqueNames(a: string, b: string): number {
  const x = UNIQUE_NAME.exec(a);
  const y = UNIQUE_NAME.exec(b);
  if (x && y) return Number(x[1]) - Number(y[1]) || Number(x[2]) - Number(y[2]);
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface VmSelector {
  name?: string;
  uuid?: string;
}

export function hasRealUuid(uuid: string): boolean {
  return uuid !== '' && uuid !== ZERO_UUID;
}

export function matchesSelector(vm: VmIdentity, sel: VmSelector): boolean {
  if (sel.uuid !== undefined && vm.uuid.toLowerCase() !== sel.uuid.toLowerCase()) return false;
  if (sel.name !== undefined && vm.name !== sel.name) return false;
  return true;
}

const describe = (vms: FoundVm[]): string => vms.map((v) => `"${v.name}" (${v.uuid}, ${v.uniqueName})`).join(', ');

/** Choose one VM from a discovery, or throw the error a user can act on. */
export function pickVm(found: Discovery, sel: VmSelector, address: string): FoundVm {
  if (found.vms.length === 0) {
    if (found.unsupported.length > 0) {
      const u = found.unsupported[0];
      throw new QemuDbusError(
        'EQEMU_UNSUPPORTED',
        `${u.uniqueName} owns org.qemu on ${address} but does not serve org.qemu.Display1.VM (${u.reason})`,
        'run a QEMU >= 7.0 with -display dbus (QEMU 7.2 is the tested baseline)',
      );
    }
    throw new QemuDbusError('ENO_QEMU', `no QEMU owns org.qemu on the bus ${address}`, `start QEMU with -display dbus,addr=${address} (or on the session bus), or pass the bus QEMU uses`);
  }
  if (sel.name === undefined && sel.uuid === undefined) {
    if (found.vms.length === 1) return found.vms[0];
    throw new QemuDbusError('EVM_AMBIGUOUS', `${found.vms.length} VMs on ${address}: ${describe(found.vms)}`, 'pick one with --vm <name> (QEMU -name) or --uuid');
  }
  const hits = found.vms.filter((v) => matchesSelector(v, sel));
  if (hits.length === 0) {
    const want = sel.name !== undefined ? `named "${sel.name}"` : `with UUID ${sel.uuid}`;
    throw new QemuDbusError('EVM_UNKNOWN', `no VM ${want} on ${address}; found: ${describe(found.vms)}`, 'use one of the names found, or start the VM with that -name');
  }
  if (hits.length > 1) {
    throw new QemuDbusError('EVM_AMBIGUOUS', `${hits.length} VMs match on ${address}: ${describe(hits)}`, 'give each VM a distinct -name or select by --uuid');
  }
  return hits[0];
}
