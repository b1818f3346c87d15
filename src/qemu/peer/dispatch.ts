// Dispatch of the calls QEMU makes on one served listener object. Why our own dispatcher instead
// of dbus-native's MessageBus.exportInterface: that one does not check the incoming signature
// against the descriptor (a malformed call would reach the handler with wrong arguments), answers
// every call even when QEMU sent NO_REPLY_EXPECTED (a wasted reply write per Update/Write), and
// defers every dispatch through a promise. Here a call is checked, dispatched synchronously from
// the socket read (or handed to the scheduler), and answered only when an answer is expected.
// Nothing QEMU sends reaches a handler unchecked, and no handler failure escapes: it becomes an
// error reply and a 'warning' (counted in stats).
import type * as dbus from 'dbus-native';
import { DBUS_ERR } from '../dbus-errors';
import { errorText } from '../errors';
import { closeQuietly } from '../transport';
import { introspectXml } from './introspect';
import { DeferredQueue, type Deferred, type SchedulerOptions } from './scheduler';
import { MethodError, type CallContext, type ExportedInterface } from './served';
import type { PeerListenerStats } from './stats';

const METHOD_CALL = 1;
const METHOD_RETURN = 2;
const ERROR = 3;
const NO_REPLY_EXPECTED = 1;

const noReply = (call: dbus.Message): boolean => ((call.flags ?? 0) & NO_REPLY_EXPECTED) !== 0;

/** What the dispatcher needs from its connection. */
export interface DispatchTarget {
  /** write one message; never throws */
  send(msg: dbus.Message): void;
  /** a call was refused or its handler failed; the connection stays up */
  warn(err: Error): void;
  isOpen(): boolean;
}

/** A call without fds (a deferred call never has any): asking for one is refused like an index out of range. */
const NO_FDS: CallContext = {
  fds: [],
  takeFd: (i) => {
    throw new MethodError(DBUS_ERR.INVALID_ARGS, `fd index ${i} out of range (message carries 0)`);
  },
};

export class Dispatcher {
  private readonly ifaces = new Map<string, ExportedInterface>();
  private readonly deferred: DeferredQueue;
  private serial = 1;

  constructor(
    private readonly path: string,
    interfaces: readonly ExportedInterface[],
    private readonly stats: PeerListenerStats,
    private readonly target: DispatchTarget,
    scheduling: SchedulerOptions,
  ) {
    for (const i of interfaces) this.ifaces.set(i.name, i);
    this.deferred = new DeferredQueue(scheduling, stats, (d) => this.runDeferred(d), () => target.isOpen());
  }

  /** Deferred calls not yet run. */
  get queued(): number {
    return this.deferred.length;
  }

  /** Run everything still queued now (the peer closed cleanly: what it sent is still delivered). */
  flush(): void {
    if (this.deferred.length) this.deferred.drain(Infinity);
  }

  /** Drop what is queued (the connection is gone). */
  clear(): void {
    this.deferred.clear();
  }

  dispatch(msg: dbus.Message): void {
    if (msg.type !== METHOD_CALL) return; // QEMU sends nothing else we care about
    const started = performance.now();
    this.stats.calls++;
    this.stats.lastCallAt = started;
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
        return this.reject(msg, DBUS_ERR.UNKNOWN_METHOD, `no method ${member} on org.freedesktop.DBus.Peer`);
      case 'org.freedesktop.DBus.Introspectable':
        if (member === 'Introspect' && sig === '') return this.reply(msg, 's', [introspectXml(msg.path ?? '', this.path, this.ifaces.values())]);
        return this.reject(msg, DBUS_ERR.UNKNOWN_METHOD, `no method ${member}(${sig}) on org.freedesktop.DBus.Introspectable`);
      case 'org.freedesktop.DBus.Properties':
        return this.properties(msg, member, sig, body);
      default:
        break;
    }
    if (msg.path !== this.path) {
      return this.reject(msg, DBUS_ERR.UNKNOWN_OBJECT, `no object at ${msg.path ?? '(none)'}; this connection serves ${this.path}`);
    }
    let iface: ExportedInterface | undefined;
    if (msg.interface) {
      iface = this.ifaces.get(msg.interface);
      if (!iface) return this.reject(msg, DBUS_ERR.UNKNOWN_INTERFACE, `no interface ${msg.interface} at ${this.path}`);
    } else {
      // INTERFACE is optional in a method call: take the first one that has the member.
      iface = [...this.ifaces.values()].find((i) => Object.hasOwn(i.methods, member));
    }
    const method = iface && Object.hasOwn(iface.methods, member) ? iface.methods[member] : undefined;
    if (!iface || !method) return this.reject(msg, DBUS_ERR.UNKNOWN_METHOD, `no method ${member} on ${msg.interface ?? this.path}`);
    if (sig !== method.in) {
      return this.reject(msg, DBUS_ERR.INVALID_ARGS, `${iface.name}.${member} takes (${method.in}), got (${sig})`);
    }
    let bytes = 0;
    for (const a of body) if (a instanceof Uint8Array) bytes += a.byteLength;
    this.stats.bytes += bytes;

    const fds = msg.fds ?? [];
    if (method.deferrable && noReply(msg) && fds.length === 0 && this.deferred.accepts(bytes)) {
      try {
        method.validate?.(body);
      } catch (e) {
        return this.callFailed(msg, iface.name, member, e);
      }
      this.deferred.enqueue({ ifaceName: iface.name, member, method, body, bytes });
      return;
    }
    // Inline from here: keep the order of what was queued before this call.
    this.flush();
    // A call without fds (every Write, 100 a second) shares one context: nothing allocated for it.
    const taken = fds.length ? new Set<number>() : undefined;
    const ctx: CallContext = taken
      ? {
          fds,
          takeFd: (index: number): number => {
            if (!Number.isInteger(index) || index < 0 || index >= fds.length) {
              throw new MethodError(DBUS_ERR.INVALID_ARGS, `fd index ${index} out of range (message carries ${fds.length})`);
            }
            taken.add(index);
            return fds[index];
          },
        }
      : NO_FDS;
    let result: unknown;
    try {
      method.validate?.(body);
      result = method.call(body, ctx);
    } catch (e) {
      if (taken) for (let i = 0; i < fds.length; i++) if (!taken.has(i)) closeQuietly(fds[i]);
      return this.callFailed(msg, iface.name, member, e);
    }
    if (taken) for (let i = 0; i < fds.length; i++) if (!taken.has(i)) closeQuietly(fds[i]);
    if (method.out === '') this.reply(msg, '', []);
    else this.reply(msg, method.out, [result]);
  }

  private runDeferred(d: Deferred): void {
    try {
      d.method.call(d.body, NO_FDS);
    } catch (e) {
      this.callFailed(null, d.ifaceName, d.member, e);
    }
  }

  private callFailed(msg: dbus.Message | null, ifaceName: string, member: string, e: unknown): void {
    if (e instanceof MethodError) {
      this.stats.rejected++;
      if (msg) this.replyError(msg, e.dbusName, e.problem);
      this.target.warn(new Error(`rejected ${ifaceName}.${member}: ${e.problem}`));
    } else {
      this.stats.handlerErrors++;
      if (msg) this.replyError(msg, DBUS_ERR.FAILED, errorText(e));
      this.target.warn(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private properties(msg: dbus.Message, member: string, sig: string, body: unknown[]): void {
    const onPath = msg.path === this.path;
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
      if (!prop) return this.reject(msg, DBUS_ERR.UNKNOWN_PROPERTY, `no property ${String(body[0])}.${String(body[1])}`);
      return this.reply(msg, 'v', [[prop[0], prop[1]()]]);
    }
    if (member === 'Set' && sig === 'ssv') {
      return this.reject(msg, DBUS_ERR.PROPERTY_READ_ONLY, 'listener properties are read-only');
    }
    return this.reject(msg, DBUS_ERR.UNKNOWN_METHOD, `no method ${member}(${sig}) on org.freedesktop.DBus.Properties`);
  }

  private reject(call: dbus.Message, name: string, text: string): void {
    this.stats.rejected++;
    for (const fd of call.fds ?? []) closeQuietly(fd);
    this.replyError(call, name, text);
    this.target.warn(new Error(`rejected ${call.interface ?? '?'}.${call.member ?? '?'}: ${text}`));
  }

  private reply(call: dbus.Message, signature: string, body: unknown[]): void {
    if (noReply(call)) return;
    const m: dbus.Message = { type: METHOD_RETURN, serial: this.nextSerial(), replySerial: call.serial };
    if (signature) {
      m.signature = signature;
      m.body = body;
    }
    this.target.send(m);
  }

  private replyError(call: dbus.Message, name: string, text: string): void {
    if (noReply(call)) return;
    this.target.send({ type: ERROR, serial: this.nextSerial(), replySerial: call.serial, errorName: name, signature: 's', body: [text] });
  }

  private nextSerial(): number {
    const s = this.serial;
    this.serial = s >= 0xffffffff ? 1 : s + 1;
    return s;
  }
}
