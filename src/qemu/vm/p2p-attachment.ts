// Attached bus-less, on QEMU's peer-to-peer main connection (-display dbus,p2p=yes): the socket
// comes from QMP add_client or from the caller (libvirt's virDomainOpenGraphics). The VM is gone
// when that connection closes; looking again means opening a new one and reading who answers.
import { detectCapabilities } from '../capabilities';
import { matchesSelector, type VmSelector } from '../discovery';
import { QemuDbusError, errorText } from '../errors';
import { connectP2pMain, connectP2pOnFd, type P2pMainConnection } from '../p2p-main';
import type { QemuLink } from '../remote-object';
import { readVmIdentity, type VmIdentity } from '../vm-object';
import type { Attached, AttachEvents, Attachment, ConnectOptions, VmInfo } from './attachment';

export function isP2p(opts: ConnectOptions): boolean {
  return Boolean(opts.qmpPath || opts.p2pSource);
}

export async function attachP2p(opts: ConnectOptions, timeoutMs: number): Promise<Attached> {
  const conn = await openP2p(opts, timeoutMs);
  const link: QemuLink = { bus: conn.bus, destination: undefined, canPassFds: true };
  try {
    const id = await readVmIdentityChecked(link, timeoutMs, opts.p2pSource?.where ?? `QMP socket ${opts.qmpPath}`);
    const caps = await detectCapabilities(link, { p2p: true, timeoutMs });
    return { attachment: new P2pAttachment(opts, conn, link), info: infoOf(id), caps };
  } catch (e) {
    await conn.close();
    throw e;
  }
}

class P2pAttachment implements Attachment {
  readonly p2p = true;
  private events: AttachEvents | undefined;

  constructor(
    private readonly opts: ConnectOptions,
    private conn: P2pMainConnection,
    readonly link: QemuLink,
  ) {}

  watch(events: AttachEvents): Promise<void> {
    this.events = events;
    this.watchConn(this.conn);
    return Promise.resolve();
  }

  async find(sel: VmSelector): Promise<VmInfo | undefined> {
    let conn: P2pMainConnection;
    try {
      conn = await openP2p(this.opts, 2000);
    } catch {
      return undefined;
    }
    const old = this.conn;
    this.link.bus = conn.bus;
    this.link.destination = undefined;
    this.conn = conn;
    await old.close().catch(() => undefined);
    try {
      const id = await readVmIdentity(this.link, 3000);
      if (!matchesSelector(id, sel)) {
        await conn.close();
        return undefined;
      }
      this.watchConn(conn);
      return infoOf(id);
    } catch {
      await conn.close().catch(() => undefined);
      return undefined;
    }
  }

  close(): Promise<void> {
    return this.conn.close();
  }

  private watchConn(conn: P2pMainConnection): void {
    const onClose = (): void => {
      const events = this.events;
      if (!events || events.isClosed() || this.conn !== conn) return;
      events.gone('the p2p connection to QEMU closed', 'p2p-closed');
    };
    conn.bus.connection.on('close', onClose);
    conn.bus.connection.on('end', onClose);
  }
}

/** The main p2p connection: through QMP add_client, or from the caller's source (libvirt). */
function openP2p(opts: ConnectOptions, timeoutMs: number): Promise<P2pMainConnection> {
  if (opts.p2pSource) return opts.p2pSource.open(timeoutMs).then((fd) => connectP2pOnFd(fd, opts.p2pSource!.where, timeoutMs));
  return connectP2pMain(opts.qmpPath!, timeoutMs);
}

function infoOf(id: VmIdentity): VmInfo {
  return { ...id, uniqueName: undefined, busAddress: undefined, p2p: true };
}

async function readVmIdentityChecked(link: QemuLink, timeoutMs: number, where: string): Promise<VmIdentity> {
  try {
    return await readVmIdentity(link, timeoutMs);
  } catch (e) {
    throw new QemuDbusError('EQEMU_UNSUPPORTED', `${where}: no org.qemu.Display1.VM (${errorText(e)})`, 'use a QEMU >= 7.0 with -display dbus', { cause: e });
  }
}
