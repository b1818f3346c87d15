// Attached through a D-Bus bus: the VM is found by name/UUID among the owners of org.qemu and
// addressed by its unique name; the bus tells when that name vanishes and when a new QEMU shows.
import { QemuArrivals } from '../arrivals';
import { openBus, defaultBusAddress, type BusConnection } from '../bus';
import { detectCapabilities } from '../capabilities';
import { discoverVms, matchesSelector, pickVm, type FoundVm, type VmSelector } from '../discovery';
import { QemuDbusError } from '../errors';
import { onSignal, type QemuLink } from '../remote-object';
import type { Attached, AttachEvents, Attachment, ConnectOptions, VmInfo } from './attachment';

export async function attachOnBus(opts: ConnectOptions, timeoutMs: number): Promise<Attached> {
  const address = opts.busAddress ?? defaultBusAddress();
  const conn = await openBus(address, timeoutMs);
  try {
    const found = pickVm(await discoverVms(conn.bus, timeoutMs), opts, address);
    const link: QemuLink = { bus: conn.bus, destination: found.uniqueName, canPassFds: true };
    const caps = await detectCapabilities(link, { p2p: false, timeoutMs });
    return { attachment: new BusAttachment(conn, address, link), info: infoOf(found, address), caps };
  } catch (e) {
    await conn.close();
    throw e;
  }
}

class BusAttachment implements Attachment {
  readonly p2p = false;
  private unsubscribeOwner: (() => void) | undefined;
  private arrivals: QemuArrivals | undefined;

  constructor(
    private readonly conn: BusConnection,
    private readonly address: string,
    readonly link: QemuLink,
  ) {}

  async watch(events: AttachEvents): Promise<void> {
    const bus = this.link.bus;
    await bus.addMatch("type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'");
    // Only the bus itself may say a name vanished: a fake one from another peer would tear down
    // every route and release the grab.
    this.unsubscribeOwner = onSignal(bus, { sender: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', iface: 'org.freedesktop.DBus', member: 'NameOwnerChanged' }, (body) => {
      const [name, , newOwner] = body as [unknown, unknown, unknown];
      if (events.isClosed() || typeof name !== 'string') return;
      if (name === this.link.destination && newOwner === '' && events.isAttached()) events.gone(`QEMU's bus name ${name} vanished`, 'name-vanished');
    });
    // While the VM is gone, a QEMU arriving (also one queued behind other VMs) is looked at now.
    this.arrivals = new QemuArrivals(bus, () => events.lookNow(), () => !events.isAttached() && !events.isClosed());
    await this.arrivals.start();
    let lost = false;
    const onClose = (): void => {
      if (events.isClosed() || lost) return;
      lost = true;
      events.gone('the bus connection closed', 'bus-closed');
      events.error(new QemuDbusError('EBUS_UNREACHABLE', `lost the D-Bus connection to ${this.address}`, 'restart the bridge once the bus is back'));
    };
    bus.connection.on('close', onClose);
    bus.connection.on('end', onClose);
  }

  async find(sel: VmSelector): Promise<VmInfo | undefined> {
    const hit = (await discoverVms(this.link.bus, 2000)).vms.find((v) => matchesSelector(v, sel));
    if (!hit) return undefined;
    this.link.destination = hit.uniqueName;
    return infoOf(hit, this.address);
  }

  async close(): Promise<void> {
    this.unsubscribeOwner?.();
    this.arrivals?.close();
    await this.conn.close();
  }
}

function infoOf(found: FoundVm, address: string): VmInfo {
  return { name: found.name, uuid: found.uuid, uniqueName: found.uniqueName, consoleIds: found.consoleIds, busAddress: address, p2p: false };
}
