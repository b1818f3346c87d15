// Where a libvirt domain's D-Bus display is right now, from the live domain (never from a path
// pattern: the bus path carries the domain id, which changes at every start), and whether this
// user may use it.
import { QemuDbusError, foreignOwner, unixPathOf, userName } from '../qemu';
import { LibvirtError, type DomainInfo, type LibvirtClient } from './client';
import { readDomainXml } from './domain-xml';

export type DisplayTarget =
  /** libvirt's private per-domain bus (changes at every start) */
  | { kind: 'bus'; domain: DomainInfo; address: string }
  /** <graphics type='dbus' p2p='yes'/>: a socket from virDomainOpenGraphics(index) */
  | { kind: 'p2p'; domain: DomainInfo; index: number }
  /** defined but not running */
  | { kind: 'stopped'; domain: DomainInfo };

/** Reads the domain and its live XML now. */
export async function locateDisplay(client: LibvirtClient, key: string): Promise<DisplayTarget> {
  const domain = await client.domain(key);
  if (!domain.active) return { kind: 'stopped', domain };
  // By UUID from here on: the name may be reused by another domain between two calls.
  const xml = await client.xml(domain.uuid);
  let display;
  try {
    display = readDomainXml(xml);
  } catch (e) {
    throw new LibvirtError('ELIBVIRT', `the XML libvirt gave for domain '${domain.name}' is unreadable: ${(e as Error).message}`, 'report this with the output of virsh dumpxml', { cause: e });
  }
  const g = display.graphics;
  if (!g) {
    throw new LibvirtError(
      'ELIBVIRT_NO_DBUS_DISPLAY',
      `domain '${domain.name}' runs without <graphics type='dbus'/>`,
      `run: qemu-dbus-bridge doctor --libvirt ${domain.name}  (it prints the XML to add with virsh edit; the change applies at the next VM start)`,
    );
  }
  if (g.p2p) return { kind: 'p2p', domain, index: g.index };
  if (!g.address) {
    // libvirt ≥ 8.x always writes the address into the live XML of a running dbus display.
    throw new LibvirtError('ELIBVIRT', `domain '${domain.name}' has a D-Bus display without a bus address in its live XML`, "use <graphics type='dbus' p2p='yes'/> with this libvirt version");
  }
  return { kind: 'bus', domain, address: g.address };
}

/**
 * dbus-daemon lets in only the uid it runs as (libvirt's bus config has no <allow user=…>, and
 * neither root nor ACLs on the socket help). Check before connecting, so the user gets one line
 * that names who may connect and the ways out instead of a closed connection.
 */
export function assertMayUseBus(target: { domain: DomainInfo; address: string }, uri: string): void {
  const owner = foreignOwner(target.address);
  if (!owner) return;
  const me = userName(process.getuid?.() ?? -1);
  throw new QemuDbusError(
    'EBUS_PERMISSION',
    `domain '${target.domain.name}': its D-Bus (${unixPathOf(target.address)}) lets only ${owner.user} (uid ${owner.uid}) connect, and the bridge runs as ${me}`,
    `run the bridge as ${owner.user}; or run the VM under your own user with --libvirt-uri qemu:///session; or give the domain <graphics type='dbus' p2p='yes'/> (any user with read-write access to ${uri} can then attach)`,
    { permanent: true },
  );
}
