// QEMU's bus-less mode (`-display dbus,p2p=yes`): no dbus-daemon. We hand QEMU one end of a
// socketpair over its QMP socket (`getfd`, fd as SCM_RIGHTS) and `add_client` it with protocol
// "@dbus-display"; on our end we are the auth CLIENT of a direct D-Bus connection and QEMU
// serves the whole /org/qemu/Display1 tree on it. A later add_client re-targets QEMU to the new
// connection, so there is one such client per QEMU.
import * as dbus from 'dbus-native';
import { socketpair } from '../native';
import { QemuDbusError, errorText } from './errors';
import { closeQuietly, connectUnixWithFds, destroyStream, streamOnFd, type FdTransport } from './transport';

/** Minimal QMP client over usocket (fd passing for getfd). One command at a time. */
class QmpSession {
  private buf = '';
  private waiting: ((line: Record<string, unknown>) => void) | null = null;
  private queue: Record<string, unknown>[] = [];
  private failed: Error | null = null;

  constructor(private readonly s: FdTransport) {
    s.on('data', (chunk: Buffer) => {
      this.buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if ('event' in obj) continue; // async events are not answers
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(obj);
        } else this.queue.push(obj);
      }
    });
    s.on('error', (e: Error) => (this.failed = e));
  }

  next(timeoutMs: number): Promise<Record<string, unknown>> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = null;
        reject(new Error(`no QMP answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = (o) => {
        clearTimeout(t);
        resolve(o);
      };
    });
  }

  async execute(cmd: string, args: Record<string, unknown> | undefined, fds: number[], timeoutMs: number): Promise<unknown> {
    const data = Buffer.from(JSON.stringify(args ? { execute: cmd, arguments: args } : { execute: cmd }) + '\n');
    if (fds.length) this.s.writeWithFds(data, fds);
    else this.s.write(data);
    const r = await this.next(timeoutMs);
    if ('error' in r) {
      const err = r.error as { class?: string; desc?: string };
      throw new Error(`QMP ${cmd} failed: ${err.class ?? ''} ${err.desc ?? JSON.stringify(r.error)}`);
    }
    return r.return;
  }
}

export interface P2pMainConnection {
  bus: dbus.MessageBus;
  close(): Promise<void>;
}

/**
 * Hands QEMU one end of a fresh socketpair through its QMP socket (`getfd` + `add_client` protocol
 * "@dbus-display") and returns our end. QEMU started with `-display dbus,p2p=yes -qmp unix:<qmpPath>,server=on,wait=off`.
 */
export async function handOverViaQmp(qmpPath: string, timeoutMs = 10_000): Promise<number> {
  let qs: FdTransport;
  try {
    qs = await connectUnixWithFds(qmpPath, timeoutMs);
  } catch (e) {
    throw new QemuDbusError('EQMP', `cannot connect to the QMP socket ${errorText(e)}`, 'start QEMU with -qmp unix:<path>,server=on,wait=off and pass that path (and run as the same user)', { cause: e });
  }
  const [mine, theirs] = socketpair();
  try {
    const qmp = new QmpSession(qs);
    const greeting = await qmp.next(timeoutMs);
    if (!('QMP' in greeting)) throw new Error(`unexpected QMP greeting ${JSON.stringify(greeting)}`);
    await qmp.execute('qmp_capabilities', undefined, [], timeoutMs);
    const fdname = `dbus-bridge-${process.pid}`;
    await qmp.execute('getfd', { fdname }, [theirs], timeoutMs);
    await qmp.execute('add_client', { protocol: '@dbus-display', fdname }, [], timeoutMs);
    return mine;
  } catch (e) {
    closeQuietly(mine);
    throw new QemuDbusError('EQMP', `QMP hand-over of the D-Bus socket failed on ${qmpPath}: ${errorText(e)}`, 'start QEMU with -display dbus,p2p=yes and a QMP socket; only one QMP client can be connected at a time', {
      cause: e,
    });
  } finally {
    closeQuietly(theirs);
    // QEMU's QMP socket serves one client at a time: leave it free for others.
    destroyStream(qs);
  }
}

/**
 * The D-Bus handshake on a socket QEMU serves its p2p display on (from handOverViaQmp, or from
 * libvirt's virDomainOpenGraphics). Takes ownership of `fd`. `where` names the source in errors.
 */
export async function connectP2pOnFd(fd: number, where: string, timeoutMs = 10_000): Promise<P2pMainConnection> {
  let stream: ReturnType<typeof streamOnFd> | undefined = streamOnFd(fd, true);
  const bus = dbus.createClient({ stream, direct: true, timeout: timeoutMs, authMethods: ['EXTERNAL'] });
  bus.name = undefined;
  bus.connection.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no D-Bus handshake within ${timeoutMs} ms`)), timeoutMs);
      bus.connection.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      bus.connection.once('end', () => {
        clearTimeout(t);
        reject(new Error('QEMU closed the connection during the handshake'));
      });
    });
  } catch (e) {
    destroyStream(stream);
    throw new QemuDbusError('EQMP', `QEMU took the socket from ${where} but the D-Bus handshake failed: ${errorText(e)}`, 'check that QEMU runs with -display dbus,p2p=yes', { cause: e });
  }
  const s = stream;
  stream = undefined;
  return {
    bus,
    close: async () => {
      // usocket emits 'close' only after both directions ended: give the peer a moment to
      // answer our shutdown, then drop the socket regardless.
      await Promise.race([bus.close(), new Promise((r) => setTimeout(r, 500))]);
      destroyStream(s);
    },
  };
}

/** Connect to a QEMU started with `-display dbus,p2p=yes -qmp unix:<qmpPath>,server=on,wait=off`. */
export async function connectP2pMain(qmpPath: string, timeoutMs = 10_000): Promise<P2pMainConnection> {
  return connectP2pOnFd(await handOverViaQmp(qmpPath, timeoutMs), `QMP socket ${qmpPath}`, timeoutMs);
}
