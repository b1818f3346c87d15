// THE helper that serves one listener object on a peer-to-peer D-Bus connection QEMU opens
// after Console.RegisterListener(h) / Audio.Register{Out,In}Listener(h):
//
//   1. socketpair() from the addon: [mine, theirs];
//   2. dbus-native connection on `mine` as the auth CLIENT (EXTERNAL, no Hello: this is not a
//      bus), with our objects "exported" BEFORE Register* is called, because QEMU calls
//      Properties.GetAll on them synchronously (its main loop blocks until we answer);
//   3. Register*(theirs) on the bus, then close our copy of `theirs` (otherwise we never see
//      EOF when QEMU dies: the other end would still be open in our own process);
//   4. wait for the handshake; if anything fails, close `mine` at once: QEMU sits in
//      g_dbus_connection_new_sync() on its end until the socket closes.
//
// Why our own dispatcher instead of MessageBus.exportInterface: dbus-native does not check the
// incoming signature against the descriptor (a malformed call would reach the handler with
// wrong arguments), answers every call even when QEMU sent NO_REPLY_EXPECTED (a wasted reply
// write per Update/Write), and defers every dispatch through a promise. Here a call is checked,
// dispatched synchronously from the socket read, and answered only when an answer is expected.
import { EventEmitter } from 'events';
import * as dbus from 'dbus-native';
import type { Duplex } from 'stream';
import { socketpair } from '../native';
import { QemuDbusError, errorText } from './errors';
import { closeQuietly, destroyStream, streamOnFd } from './transport';

const METHOD_CALL = 1;
const METHOD_RETURN = 2;
const ERROR = 3;
const NO_REPLY_EXPECTED = 1;

export const ERR_INVALID_ARGS = 'org.freedesktop.DBus.Error.InvalidArgs';
export const ERR_UNKNOWN_METHOD = 'org.freedesktop.DBus.Error.UnknownMethod';
export const ERR_UNKNOWN_INTERFACE = 'org.freedesktop.DBus.Error.UnknownInterface';
export const ERR_UNKNOWN_OBJECT = 'org.freedesktop.DBus.Error.UnknownObject';
export const ERR_UNKNOWN_PROPERTY = 'org.freedesktop.DBus.Error.UnknownProperty';
export const ERR_FAILED = 'org.freedesktop.DBus.Error.Failed';

/** Thrown by a method implementation to send a specific D-Bus error reply. */
export class MethodError extends Error {
  constructor(
    readonly dbusName: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ExportedMethod {
  /** input signature; calls with any other signature get InvalidArgs and never reach `call` */
  in: string;
  /** output signature ('' for none) */
  out: string;
  /**
   * Runs synchronously in the socket read. `fds` are the message's descriptors (an `h` value is
   * an index into them); descriptors the implementation does not take ownership of are closed
   * after it returns — it takes one by returning/storing it and calling `takeFd(index)`.
   */
  call(args: unknown[], ctx: CallContext): unknown;
  /**
   * Fire-and-forget calls (NO_REPLY_EXPECTED, no fds) of a method marked `deferrable` are queued
   * and run in small time slices instead of inside the socket read, so a burst of frames on
   * one connection cannot delay a synchronous call (audio Read, GetAll) QEMU waits for on
   * another. `supersedes` lists queued members this call makes obsolete (a full-frame Scanout
   * covers every queued Update): they are dropped unrun.
   */
  deferrable?: boolean;
  supersedes?: readonly string[];
  /** checks run at arrival even when the call itself is deferred (so errors still get replies) */
  validate?(args: unknown[]): void;
}

export interface CallContext {
  fds: readonly number[];
  /** Mark fds[index] as owned by the implementation (it will not be closed for you). */
  takeFd(index: number): number;
}

export interface ExportedInterface {
  name: string;
  methods: Record<string, ExportedMethod>;
  /** property name -> [D-Bus type, getter]; read-only */
  properties?: Record<string, [string, () => unknown]>;
}

export interface PeerListenerOptions {
  /** object path QEMU calls (fixed by QEMU: /org/qemu/Display1/Listener, ...) */
  path: string;
  interfaces: ExportedInterface[];
  /** negotiate fd passing on the p2p connection (usocket); else a plain net.Socket */
  fds: boolean;
  /** handshake deadline after Register* returned */
  handshakeTimeoutMs?: number;
  /** time slice for running deferred calls before yielding to other sockets; default 4 ms */
  sliceMs?: number;
  /**
   * Above this many queued bytes deferred calls run inline again, which stops us reading the
   * socket while they run: the backlog then waits in QEMU, not in our heap. Default 64 MiB.
   */
  maxQueuedBytes?: number;
}

export interface PeerListenerStats {
  calls: number;
  bytes: number;
  rejected: number;
  handlerErrors: number;
  /** slowest single dispatch, ms: a slow handler stalls QEMU's queue */
  maxDispatchMs: number;
  /** deferred calls dropped because a later call superseded them (e.g. Updates before a Scanout) */
  superseded: number;
  /** most deferred calls waiting at once */
  maxQueued: number;
}

interface Deferred {
  ifaceName: string;
  member: string;
  method: ExportedMethod;
  body: unknown[];
  bytes: number;
}

interface PeerListenerEvents {
  /** the connection is gone (peer EOF, error, or close()); fired once */
  closed: [cause: Error | undefined];
  /** a handler threw, or a malformed call was rejected; the connection stays up */
  warning: [err: Error];
}

/**
 * One served listener object on one p2p connection. Created by serveListener(); everything
 * stays alive until the peer closes the socket or close() is called.
 */
export class PeerListener extends EventEmitter<PeerListenerEvents> {
  readonly stats: PeerListenerStats = { calls: 0, bytes: 0, rejected: 0, handlerErrors: 0, maxDispatchMs: 0, superseded: 0, maxQueued: 0 };
  private queue: Deferred[] = [];
  private queuedBytes = 0;
  private drainScheduled = false;
  private readonly conn: dbus.DBusConnection;
  private readonly stream: Duplex;
  private readonly ifaces = new Map<string, ExportedInterface>();
  private serial = 1;
  private closedFlag = false;
  private connected = false;
  readonly closedPromise: Promise<Error | undefined>;
  /** Did the peer agree to fd passing in the handshake? */
  get unixFdsAgreed(): boolean {
    return Boolean((this.conn as { unixFdsAgreed?: boolean }).unixFdsAgreed);
  }
  get isClosed(): boolean {
    return this.closedFlag;
  }

  /** @internal use serveListener() */
  constructor(
    ourFd: number,
    readonly options: PeerListenerOptions,
  ) {
    super();
    for (const i of options.interfaces) this.ifaces.set(i.name, i);
    this.closedPromise = new Promise((resolve) => this.once('closed', resolve));
    this.stream = streamOnFd(ourFd, options.fds);
    // createConnection starts the client handshake at once ('\0' + AUTH EXTERNAL); the bytes
    // wait in the socket until QEMU reads them after it replied to Register*.
    this.conn = dbus.createConnection({ stream: this.stream, direct: true, ayBuffer: 'view', authMethods: ['EXTERNAL'] });
    this.conn.on('message', (msg) => this.dispatch(msg));
    this.conn.on('connect', () => {
      this.connected = true;
    });
    this.conn.on('error', (err) => this.finish(err));
    // A clean EOF: what QEMU sent before closing is still delivered, then the handler is told.
    this.conn.on('end', () => {
      if (!this.closedFlag && this.queue.length) this.drain(Infinity);
      this.finish(undefined);
    });
    this.conn.on('close', (cause) => this.finish(cause));
    // Our dispatch never throws to the parser, but be explicit: handler bugs are warnings.
    this.conn.on('handlerError', (err) => this.emit('warning', err));
  }

  /** Resolves when the SASL handshake is done; rejects if the connection dies first or times out. */
  waitConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.closedFlag) return Promise.reject(new Error('listener connection closed before the handshake finished'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no D-Bus handshake from QEMU within ${timeoutMs} ms`));
      }, timeoutMs);
      const onConnect = (): void => {
        cleanup();
        resolve();
      };
      const onClosed = (cause: Error | undefined): void => {
        cleanup();
        reject(new Error(`listener connection closed during the handshake${cause ? `: ${cause.message}` : ''}`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.conn.removeListener('connect', onConnect);
        this.removeListener('closed', onClosed);
      };
      this.conn.on('connect', onConnect);
      this.once('closed', onClosed);
    });
  }

  /** Close our end: QEMU sees EOF and drops the listener (display: lifts held keys). */
  close(): void {
    this.finish(undefined);
  }

  private finish(cause: Error | undefined): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.queue = [];
    this.queuedBytes = 0;
    destroyStream(this.stream);
    this.emit('closed', cause);
  }

  private send(msg: dbus.Message): void {
    if (this.closedFlag) return;
    try {
      this.conn.message(msg);
    } catch (e) {
      this.emit('warning', e as Error);
    }
  }

  private reply(call: dbus.Message, signature: string, body: unknown[]): void {
    if (((call.flags ?? 0) & NO_REPLY_EXPECTED) !== 0) return;
    const m: dbus.Message = { type: METHOD_RETURN, serial: this.nextSerial(), replySerial: call.serial };
    if (signature) {
      m.signature = signature;
      m.body = body;
    }
    this.send(m);
  }

  private replyError(call: dbus.Message, name: string, text: string): void {
    if (((call.flags ?? 0) & NO_REPLY_EXPECTED) !== 0) return;
    this.send({ type: ERROR, serial: this.nextSerial(), replySerial: call.serial, errorName: name, signature: 's', body: [text] });
  }

  private nextSerial(): number {
    const s = this.serial;
    this.serial = s >= 0xffffffff ? 1 : s + 1;
    return s;
  }

  private reject(call: dbus.Message, name: string, text: string): void {
    this.stats.rejected++;
    for (const fd of call.fds ?? []) closeQuietly(fd);
    this.replyError(call, name, text);
    this.emit('warning', new Error(`rejected ${call.interface ?? '?'}.${call.member ?? '?'}: ${text}`));
  }

  private dispatch(msg: dbus.Message): void {
    if (msg.type !== METHOD_CALL) return; // QEMU sends nothing else we care about
    const started = performance.now();
    this.stats.calls++;
    try {
      this.dispatchCall(msg);
    } finally {
      const ms = performance.now() - started;
      if (ms > this.stats.maxDispatchMs) this.stats.maxDispatchMs = ms;
    }
  }

  private dispatchCall(msg: dbus.Message): void {
    const member = msg.member ?? '';
    const sig = msg.signature ?? '';
    const body = msg.body ?? [];
    switch (msg.interface) {
      case 'org.freedesktop.DBus.Peer':
        if (member === 'Ping') return this.reply(msg, '', []);
        if (member === 'GetMachineId') return this.reply(msg, 's', ['00000000000000000000000000000000']);
        return this.reject(msg, ERR_UNKNOWN_METHOD, `no method ${member} on org.freedesktop.DBus.Peer`);
      case 'org.freedesktop.DBus.Introspectable':
        if (member === 'Introspect' && sig === '') return this.reply(msg, 's', [this.introspect(msg.path ?? '')]);
        return this.reject(msg, ERR_UNKNOWN_METHOD, `no method ${member}(${sig}) on org.freedesktop.DBus.Introspectable`);
      case 'org.freedesktop.DBus.Properties':
        return this.properties(msg, member, sig, body);
      default:
        break;
    }
    if (msg.path !== this.options.path) {
      return this.reject(msg, ERR_UNKNOWN_OBJECT, `no object at ${msg.path ?? '(none)'}; this connection serves ${this.options.path}`);
    }
    let iface: ExportedInterface | undefined;
    if (msg.interface) {
      iface = this.ifaces.get(msg.interface);
      if (!iface) return this.reject(msg, ERR_UNKNOWN_INTERFACE, `no interface ${msg.interface} at ${this.options.path}`);
    } else {
      // INTERFACE is optional in a method call: take the first one that has the member.
      iface = [...this.ifaces.values()].find((i) => Object.hasOwn(i.methods, member));
    }
    const method = iface && Object.hasOwn(iface.methods, member) ? iface.methods[member] : undefined;
    if (!iface || !method) return this.reject(msg, ERR_UNKNOWN_METHOD, `no method ${member} on ${msg.interface ?? this.options.path}`);
    if (sig !== method.in) {
      return this.reject(msg, ERR_INVALID_ARGS, `${iface.name}.${member} takes (${method.in}), got (${sig})`);
    }
    let bytes = 0;
    for (const a of body) if (a instanceof Uint8Array) bytes += a.byteLength;
    this.stats.bytes += bytes;

    const fds = msg.fds ?? [];
    const noReply = ((msg.flags ?? 0) & NO_REPLY_EXPECTED) !== 0;
    if (method.deferrable && noReply && fds.length === 0 && this.queuedBytes + bytes <= (this.options.maxQueuedBytes ?? 64 * 1024 * 1024)) {
      try {
        method.validate?.(body);
      } catch (e) {
        return this.callFailed(msg, iface.name, member, e);
      }
      this.enqueue({ ifaceName: iface.name, member, method, body, bytes });
      return;
    }
    // Inline from here: keep the order of what was queued before this call.
    if (this.queue.length) this.drain(Infinity);
    const taken = new Set<number>();
    const ctx: CallContext = {
      fds,
      takeFd: (index: number): number => {
        if (!Number.isInteger(index) || index < 0 || index >= fds.length) {
          throw new MethodError(ERR_INVALID_ARGS, `fd index ${index} out of range (message carries ${fds.length})`);
        }
        taken.add(index);
        return fds[index];
      },
    };
    let result: unknown;
    try {
      method.validate?.(body);
      result = method.call(body, ctx);
    } catch (e) {
      for (let i = 0; i < fds.length; i++) if (!taken.has(i)) closeQuietly(fds[i]);
      return this.callFailed(msg, iface.name, member, e);
    }
    for (let i = 0; i < fds.length; i++) if (!taken.has(i)) closeQuietly(fds[i]);
    if (method.out === '') this.reply(msg, '', []);
    else this.reply(msg, method.out, [result]);
  }

  private callFailed(msg: dbus.Message | null, ifaceName: string, member: string, e: unknown): void {
    if (e instanceof MethodError) {
      this.stats.rejected++;
      if (msg) this.replyError(msg, e.dbusName, e.message);
      this.emit('warning', new Error(`rejected ${ifaceName}.${member}: ${e.message}`));
    } else {
      this.stats.handlerErrors++;
      if (msg) this.replyError(msg, ERR_FAILED, errorText(e));
      this.emit('warning', e instanceof Error ? e : new Error(String(e)));
    }
  }

  private enqueue(d: Deferred): void {
    const sup = d.method.supersedes;
    if (sup?.length && this.queue.length) {
      const before = this.queue.length;
      this.queue = this.queue.filter((q) => {
        if (q.ifaceName === d.ifaceName && sup.includes(q.member)) {
          this.queuedBytes -= q.bytes;
          return false;
        }
        return true;
      });
      this.stats.superseded += before - this.queue.length;
    }
    this.queue.push(d);
    this.queuedBytes += d.bytes;
    if (this.queue.length > this.stats.maxQueued) this.stats.maxQueued = this.queue.length;
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => {
        this.drainScheduled = false;
        this.drain(this.options.sliceMs ?? 4);
      });
    }
  }

  /** Run queued calls for up to `budgetMs` (at least one), then yield to the event loop. */
  private drain(budgetMs: number): void {
    const start = performance.now();
    while (this.queue.length && !this.closedFlag) {
      const d = this.queue.shift()!;
      this.queuedBytes -= d.bytes;
      const t0 = performance.now();
      try {
        d.method.call(d.body, {
          fds: [],
          takeFd: (i) => {
            throw new MethodError(ERR_INVALID_ARGS, `fd index ${i}: a deferred call carries no fds`);
          },
        });
      } catch (e) {
        this.callFailed(null, d.ifaceName, d.member, e);
      }
      const ms = performance.now() - t0;
      if (ms > this.stats.maxDispatchMs) this.stats.maxDispatchMs = ms;
      if (performance.now() - start >= budgetMs) break;
    }
    if (this.queue.length && !this.closedFlag && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => {
        this.drainScheduled = false;
        this.drain(this.options.sliceMs ?? 4);
      });
    }
  }

  /** Deferred calls not yet run (tests, diagnostics). */
  get queued(): number {
    return this.queue.length;
  }

  private properties(msg: dbus.Message, member: string, sig: string, body: unknown[]): void {
    const onPath = msg.path === this.options.path;
    if (member === 'GetAll' && sig === 's') {
      // QEMU blocks its main loop on this one (GDBusProxy construction): answer right here.
      const iface = onPath ? this.ifaces.get(String(body[0])) : undefined;
      const pairs: [string, [string, unknown]][] = [];
      for (const [name, [type, get]] of Object.entries(iface?.properties ?? {})) pairs.push([name, [type, get()]]);
      return this.reply(msg, 'a{sv}', [pairs]);
    }
    if (member === 'Get' && sig === 'ss') {
      const iface = onPath ? this.ifaces.get(String(body[0])) : undefined;
      const prop = iface?.properties?.[String(body[1])];
      if (!prop) return this.reject(msg, ERR_UNKNOWN_PROPERTY, `no property ${String(body[0])}.${String(body[1])}`);
      return this.reply(msg, 'v', [[prop[0], prop[1]()]]);
    }
    if (member === 'Set' && sig === 'ssv') {
      return this.reject(msg, 'org.freedesktop.DBus.Error.PropertyReadOnly', 'listener properties are read-only');
    }
    return this.reject(msg, ERR_UNKNOWN_METHOD, `no method ${member}(${sig}) on org.freedesktop.DBus.Properties`);
  }

  private introspect(path: string): string {
    const out = ['<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"', ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">', '<node>'];
    if (path === this.options.path) {
      for (const i of this.ifaces.values()) {
        out.push(` <interface name="${i.name}">`);
        for (const [m, d] of Object.entries(i.methods)) {
          out.push(`  <method name="${m}">`);
          for (const t of splitSignature(d.in)) out.push(`   <arg type="${t}" direction="in"/>`);
          for (const t of splitSignature(d.out)) out.push(`   <arg type="${t}" direction="out"/>`);
          out.push('  </method>');
        }
        for (const [p, [t]] of Object.entries(i.properties ?? {})) out.push(`  <property name="${p}" type="${t}" access="read"/>`);
        out.push(' </interface>');
      }
    } else if (this.options.path.startsWith(path === '/' ? '/' : `${path}/`)) {
      const rest = this.options.path.slice(path === '/' ? 1 : path.length + 1);
      out.push(` <node name="${rest.split('/')[0]}"/>`);
    }
    out.push('</node>');
    return out.join('\n');
  }
}

/** Split a signature into complete types (enough for the simple ones listeners use). */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  const one = (): string => {
    const start = i;
    const c = sig[i++];
    if (c === 'a') one();
    else if (c === '(' || c === '{') {
      const close = c === '(' ? ')' : '}';
      while (sig[i] !== close && i < sig.length) one();
      i++;
    }
    return sig.slice(start, i);
  };
  while (i < sig.length) out.push(one());
  return out;
}

/**
 * Serve a listener and register it with QEMU. `register(fd)` makes the bus call
 * (RegisterListener/Register*Listener) passing `fd` as `h`; it must reject on a D-Bus error.
 */
export async function serveListener(options: PeerListenerOptions, register: (fd: number) => Promise<void>): Promise<PeerListener> {
  const [mine, theirs] = socketpair();
  let listener: PeerListener;
  try {
    listener = new PeerListener(mine, options);
  } catch (e) {
    closeQuietly(mine);
    closeQuietly(theirs);
    throw e;
  }
  // Until the handshake is over, connection errors surface through waitConnected().
  const noop = (): void => undefined;
  listener.on('warning', noop);
  try {
    await register(theirs);
  } catch (e) {
    listener.close();
    throw e;
  } finally {
    closeQuietly(theirs);
  }
  try {
    await listener.waitConnected(options.handshakeTimeoutMs ?? 10_000);
  } catch (e) {
    listener.close();
    throw new QemuDbusError(
      'ELISTENER',
      `QEMU accepted the listener for ${options.path} but the peer-to-peer connection failed: ${errorText(e)}`,
      'check QEMU stderr ("Failed to setup peer connection"); retry, and report if it persists',
      { cause: e },
    );
  } finally {
    listener.removeListener('warning', noop);
  }
  return listener;
}
