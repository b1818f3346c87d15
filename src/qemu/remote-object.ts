// A QEMU object on a connection (bus or bus-less p2p): typed calls, property reads with a
// deadline, PropertiesChanged subscriptions. The generated proxies (generated/display1.ts) sit on
// this; it never decides policy.
import type * as dbus from 'dbus-native';
import { CodedError } from '../errors';
import { dbusErrorCode, type DbusErrorCode } from './dbus-errors';
import { dbusErrorName, errorText } from './errors';

export const PROPS_IFACE = 'org.freedesktop.DBus.Properties';

/** Default deadline of calls into QEMU. A blocked QEMU main loop must not hang us for 25 s. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** The connection a RemoteObject talks through: a bus (destination = unique name) or p2p. */
export interface QemuLink {
  bus: dbus.MessageBus;
  /** unique bus name of the QEMU; undefined on a bus-less p2p main connection */
  destination: string | undefined;
  /** the connection carries fds (needed for every Register* call) */
  canPassFds: boolean;
}

export interface CallOptions {
  timeoutMs?: number;
  /** descriptors for `h` arguments (the `h` values in args are indices into this) */
  fds?: number[];
  /** fire and forget: NO_REPLY_EXPECTED, resolves once written */
  noReply?: boolean;
}

/**
 * A failed D-Bus call. `code` comes from the peer's error name through the one table
 * (dbus-errors.ts); `dbusName` is kept for messages and tests. No `fix`: what to do depends on
 * the caller, which wraps it (QemuDbusError) where a person has to act.
 */
export class RemoteCallError extends CodedError<DbusErrorCode> {
  readonly dbusName: string | undefined;
  /** `path interface.Member` */
  readonly target: string;

  constructor(private readonly call: FailedCall) {
    super(call.code ?? dbusErrorCode(call.dbusName, `${call.iface}.${call.member}`), `${call.iface}.${call.member} on ${call.path} failed: ${call.text}`, '', { cause: call.cause });
    this.name = 'RemoteCallError';
    this.dbusName = call.dbusName;
    this.target = `${call.path} ${call.iface}.${call.member}`;
  }

  /** The same failure, with the code a caller that knows more has settled on (see Mouse). */
  withCode(code: DbusErrorCode): RemoteCallError {
    return new RemoteCallError({ ...this.call, code });
  }
}

interface FailedCall {
  dbusName: string | undefined;
  path: string;
  iface: string;
  member: string;
  /** the peer's (or the library's) text, kept for the message only */
  text: string;
  cause?: unknown;
  /** instead of the one the table gives for `dbusName` */
  code?: DbusErrorCode;
}

export class RemoteObject {
  constructor(
    readonly link: QemuLink,
    readonly path: string,
  ) {}

  async call<T = unknown>(iface: string, member: string, signature: string, args: unknown[], opts: CallOptions = {}): Promise<T> {
    const msg: dbus.Message = { path: this.path, interface: iface, member };
    if (this.link.destination) msg.destination = this.link.destination;
    if (signature) {
      msg.signature = signature;
      msg.body = args;
    }
    if (opts.fds?.length) msg.fds = opts.fds;
    if (opts.noReply) msg.flags = 1;
    try {
      return (await this.link.bus.invoke<T>(msg, { timeout: opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS })) as T;
    } catch (e) {
      throw new RemoteCallError({ dbusName: dbusErrorName(e), path: this.path, iface, member, text: errorText(e), cause: e });
    }
  }

  async getProperty<T = unknown>(iface: string, name: string, timeoutMs?: number): Promise<T> {
    return this.call<T>(PROPS_IFACE, 'Get', 'ss', [iface, name], { timeoutMs });
  }

  async getAllProperties(iface: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    const r = await this.call<unknown>(PROPS_IFACE, 'GetAll', 's', [iface], { timeoutMs });
    return plainDict(r);
  }

  async introspect(timeoutMs?: number): Promise<string> {
    return this.call<string>('org.freedesktop.DBus.Introspectable', 'Introspect', '', [], { timeoutMs });
  }

  /**
   * Subscribe to PropertiesChanged of one interface on this object. Returns the unsubscribe
   * function. On a bus this adds a match rule; on p2p every signal arrives anyway.
   */
  async onPropertiesChanged(iface: string, cb: (changed: Record<string, unknown>) => void): Promise<() => Promise<void>> {
    const bus = this.link.bus;
    const sender = this.link.destination;
    const rule = `type='signal',interface='${PROPS_IFACE}',member='PropertiesChanged',path='${this.path}',arg0='${iface}'` + (sender ? `,sender='${sender}'` : '');
    if (sender) await bus.addMatch(rule);
    // Only from the VM's own unique name: any peer on the bus may send us a unicast signal.
    const off = onSignal(bus, { sender, path: this.path, iface: PROPS_IFACE, member: 'PropertiesChanged' }, (body) => {
      if (body[0] !== iface) return;
      cb(plainDict(body[1]));
    });
    return async () => {
      off();
      if (sender) await bus.removeMatch(rule).catch(() => undefined);
    };
  }
}

const SIGNAL = 4;

/**
 * Calls `cb(body)` for each signal with this path/interface/member that comes from `sender`.
 * The sender is checked because a match rule only limits what the bus broadcasts to us: any peer
 * may address a signal to our unique name directly, and the bus stamps its real sender on it.
 * `sender` undefined: a peer-to-peer connection, where the only peer is QEMU itself.
 * Returns the unsubscribe function.
 */
export function onSignal(bus: dbus.MessageBus, match: { sender: string | undefined; path: string; iface: string; member: string }, cb: (body: unknown[]) => void): () => void {
  const listener = (msg: dbus.Message): void => {
    if (msg.type !== SIGNAL || msg.member !== match.member || msg.interface !== match.iface || msg.path !== match.path) return;
    if (match.sender !== undefined && msg.sender !== match.sender) return;
    cb(msg.body ?? []);
  };
  bus.connection.on('message', listener);
  return () => bus.connection.removeListener('message', listener);
}

/** a{sv} as dbus-native hands it (plain object, or pairs with classic shapes) -> plain object. */
export function plainDict(v: unknown): Record<string, unknown> {
  if (Array.isArray(v)) {
    const o: Record<string, unknown> = {};
    for (const pair of v as [string, unknown][]) o[pair[0]] = pair[1];
    return o;
  }
  return (v ?? {}) as Record<string, unknown>;
}
