// The bus connection: a dbus-native MessageBus over a usocket stream (so `h` arguments can
// carry the listener socket), Hello done by us so it can be awaited and its failure reported.
import * as dbus from 'dbus-native';
import * as fs from 'fs';
import * as path from 'path';
import { QemuDbusError, errorText } from './errors';
import { connectUnixWithFds, destroyStream } from './transport';

export interface BusConnection {
  bus: dbus.MessageBus;
  address: string;
  /** our unique name on the bus */
  uniqueName: string;
  close(): Promise<void>;
}

/** The socket path of the first `unix:path=` entry of a D-Bus address list. */
export function unixPathOf(address: string): string {
  for (const entry of address.split(';')) {
    const [family, params = ''] = entry.split(/:(.*)/s);
    if (family !== 'unix') continue;
    for (const kv of params.split(',')) {
      const eq = kv.indexOf('=');
      if (eq < 0) continue;
      const key = kv.slice(0, eq);
      const value = decodeURIComponent(kv.slice(eq + 1));
      if (key === 'path') return value;
      if (key === 'abstract') {
        throw new QemuDbusError(
          'EBUS_UNREACHABLE',
          `bus address ${address} is an abstract socket, which cannot pass file descriptors here`,
          'start the bus with a filesystem socket (dbus-daemon --address=unix:path=/run/user/$UID/bus) and pass that address',
        );
      }
    }
  }
  throw new QemuDbusError('EBUS_UNREACHABLE', `bus address "${address}" has no unix:path= entry`, 'pass an address like unix:path=/run/user/1000/bus');
}

export function defaultBusAddress(): string {
  const env = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (env) return env;
  if (typeof process.getuid === 'function') return `unix:path=/run/user/${process.getuid()}/bus`;
  throw new QemuDbusError('EBUS_UNREACHABLE', 'no bus address given and DBUS_SESSION_BUS_ADDRESS is unset', 'pass --address unix:path=... or set DBUS_SESSION_BUS_ADDRESS');
}

export interface SocketOwner {
  uid: number;
  /** login name from /etc/passwd, or "uid N" */
  user: string;
}

/** Login name of a uid (from /etc/passwd), or "uid N". */
export function userName(uid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return f[0];
    }
  } catch {
    /* no passwd file: the number will do */
  }
  return `uid ${uid}`;
}

/**
 * Who owns a bus socket: its file owner (the dbus-daemon's user), or when we may not even look at
 * it, the owner of the nearest directory we can see (libvirt's per-VM directories belong to the
 * user QEMU runs as). undefined when neither exists.
 */
export function socketOwner(socketPath: string): SocketOwner | undefined {
  for (let p = socketPath; p !== path.dirname(p); p = path.dirname(p)) {
    try {
      const uid = fs.statSync(p).uid;
      return { uid, user: userName(uid) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EACCES') return undefined;
    }
  }
  return undefined;
}

/** The owner of a bus when it is not us (dbus-daemon lets only its own uid in unless configured otherwise). */
export function foreignOwner(address: string): SocketOwner | undefined {
  const owner = socketOwner(unixPathOf(address));
  return owner && owner.uid !== process.getuid?.() ? owner : undefined;
}

/**
 * A failed connect or handshake, classified by what we know rather than by message text: refused
 * by the file system or by a bus that belongs to another user = EBUS_PERMISSION, anything else =
 * EBUS_UNREACHABLE. Deterministic: the same cause always gives the same code.
 */
export function busFailure(address: string, e: unknown, stage: 'connect' | 'auth' | 'handshake'): QemuDbusError {
  const code = (e as { code?: unknown }).code;
  const owner = foreignOwner(address);
  // 'auth': the bus answered but did not accept who we are (EXTERNAL = our uid).
  const me = userName(process.getuid?.() ?? -1);
  if (owner && (code === 'EACCES' || code === 'EPERM' || stage !== 'connect')) {
    return new QemuDbusError('EBUS_PERMISSION', `the D-Bus bus ${address} lets only ${owner.user} (uid ${owner.uid}) connect, and this is ${me}`, `run the bridge as ${owner.user}`, { cause: e, permanent: true });
  }
  if (code === 'EACCES' || code === 'EPERM' || stage === 'auth') {
    return new QemuDbusError('EBUS_PERMISSION', `the D-Bus bus ${address} does not let ${me} connect (${stage === 'auth' ? 'authentication refused' : errorText(e)})`, 'run the bridge as a user the bus accepts (the one it runs as, or one its <allow user=…> rules name)', {
      cause: e,
      permanent: true,
    });
  }
  const why = stage === 'connect' ? errorText(e) : `it closed the connection before answering Hello (${errorText(e)})`;
  return new QemuDbusError('EBUS_UNREACHABLE', `cannot connect to the D-Bus bus ${address}: ${why}`, 'check that the bus is running and the address is right (DBUS_SESSION_BUS_ADDRESS or --address unix:path=...)', { cause: e });
}

/** Connect and say Hello. `timeoutMs` bounds the whole thing. */
export async function openBus(address: string = defaultBusAddress(), timeoutMs = 10_000): Promise<BusConnection> {
  const socketPath = unixPathOf(address);
  let stream;
  try {
    stream = await connectUnixWithFds(socketPath, timeoutMs);
  } catch (e) {
    throw busFailure(address, e, 'connect');
  }
  // EXTERNAL only: it is what a local bus accepts, and a cookie fallback would turn a plain
  // "rejected" into a confusing keyring file error.
  const bus = dbus.createClient({ stream, direct: true, timeout: timeoutMs, authMethods: ['EXTERNAL'] });
  const conn = bus.connection;
  let authenticated = false;
  conn.once('connect', () => (authenticated = true));
  // Connection-level errors before Hello resolves are turned into the Hello failure below;
  // afterwards the owner of BusConnection listens (QemuVm reports them as `error`).
  const early = new Promise<never>((_, reject) => {
    conn.once('error', (err: Error) => reject(err));
    conn.once('end', () => reject(new Error('the bus closed the connection during authentication')));
  });
  let uniqueName: string;
  try {
    uniqueName = await Promise.race([bus.invokeDbus<string>({ member: 'Hello' }, { timeout: timeoutMs }), early]);
  } catch (e) {
    destroyStream(stream);
    throw busFailure(address, e, authenticated ? 'handshake' : 'auth');
  }
  early.catch(() => undefined);
  bus.name = uniqueName;
  // Keep an 'error' listener so a broken socket is not an uncaught exception; the owner
  // learns of the loss through 'close'/'end'.
  conn.on('error', () => undefined);
  return {
    bus,
    address,
    uniqueName,
    close: async () => {
      // usocket emits 'close' only after both directions ended: give the peer a moment to
      // answer our shutdown, then drop the socket regardless.
      await Promise.race([bus.close(), new Promise((r) => setTimeout(r, 500))]);
      destroyStream(stream);
    },
  };
}
