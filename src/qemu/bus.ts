// The bus connection: a dbus-native MessageBus over a usocket stream (so `h` arguments can
// carry the listener socket), Hello done by us so it can be awaited and its failure reported.
import * as dbus from 'dbus-native';
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
  throw new QemuDbusError('EBUS_UNREACHABLE', 'no bus address given and DBUS_SESSION_BUS_ADDRESS is unset', 'pass --bus unix:path=... or set DBUS_SESSION_BUS_ADDRESS');
}

function connectError(address: string, e: unknown): QemuDbusError {
  const code = (e as { code?: string }).code;
  const text = errorText(e);
  if (code === 'EACCES' || code === 'EPERM' || /EACCES|EPERM|permission/i.test(text)) {
    return new QemuDbusError('EBUS_PERMISSION', `permission denied on the D-Bus socket ${address}: ${text}`, 'run as the user who owns the bus (the one QEMU runs as) or fix the socket permissions', { cause: e });
  }
  return new QemuDbusError('EBUS_UNREACHABLE', `cannot connect to the D-Bus bus ${address}: ${text}`, 'check that the bus is running and the address is right (DBUS_SESSION_BUS_ADDRESS or --bus unix:path=...)', {
    cause: e,
  });
}

/** Connect and say Hello. `timeoutMs` bounds the whole thing. */
export async function openBus(address: string = defaultBusAddress(), timeoutMs = 10_000): Promise<BusConnection> {
  const socketPath = unixPathOf(address);
  let stream;
  try {
    stream = await connectUnixWithFds(socketPath, timeoutMs);
  } catch (e) {
    throw connectError(address, e);
  }
  // EXTERNAL only: it is what a local bus accepts, and a cookie fallback would turn a plain
  // "rejected" into a confusing keyring file error.
  const bus = dbus.createClient({ stream, direct: true, timeout: timeoutMs, authMethods: ['EXTERNAL'] });
  const conn = bus.connection;
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
    const text = errorText(e);
    if (/auth|REJECTED/i.test(text)) {
      throw new QemuDbusError('EBUS_PERMISSION', `the bus at ${address} rejected our authentication: ${text}`, 'connect as the user that owns the bus (EXTERNAL auth uses your uid)', { cause: e });
    }
    throw connectError(address, e);
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
