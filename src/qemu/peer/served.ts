// What a served listener object is made of: interfaces of methods and read-only properties, as
// the dispatcher (dispatch.ts) runs them. The tables for QEMU's listener interfaces
// (console-listener.ts, audio-listeners.ts) are built with servedInterface(), which takes every
// signature from the generated Display1 description (generated/display1.ts, from display1.xml):
// a table states only what it does with each call, typed by the generated argument tuple.
import { CodedError } from '../../errors';
import { dbusErrorCode, type DbusErrorCode } from '../dbus-errors';
import { DISPLAY1, type ServedInterfaces } from '../generated/display1';

/** Thrown by a method implementation to send a specific D-Bus error reply; `code` from dbus-errors.ts. */
export class MethodError extends CodedError<DbusErrorCode> {
  constructor(
    readonly dbusName: string,
    problem: string,
  ) {
    super(dbusErrorCode(dbusName), problem);
    this.name = 'MethodError';
  }
}

export interface CallContext {
  fds: readonly number[];
  /** Mark fds[index] as owned by the implementation (it will not be closed for you). */
  takeFd(index: number): number;
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

export interface ExportedInterface {
  name: string;
  methods: Record<string, ExportedMethod>;
  /** property name -> [D-Bus type, getter]; read-only */
  properties?: Record<string, [string, () => unknown]>;
}

type Calls<N extends keyof ServedInterfaces> = ServedInterfaces[N]['calls'];
type Member<N extends keyof ServedInterfaces> = keyof Calls<N> & string;
type ArgsOf<C> = C extends { args: infer A } ? A : never;
type ReplyOf<C> = C extends { reply: infer R } ? R : never;

/**
 * One method of a served interface: ExportedMethod without the signatures, typed by them. `C` is
 * the generated call (`ListenerCalls['Scanout']`), `K` the members `supersedes` may name.
 */
export interface ServedMethod<C, K extends string = string> {
  call(args: ArgsOf<C>, ctx: CallContext): ReplyOf<C>;
  validate?(args: ArgsOf<C>): void;
  deferrable?: boolean;
  supersedes?: readonly K[];
}

/** Every method of interface N (an interface we serve implements all of display1.xml's). */
export type ServedMethods<N extends keyof ServedInterfaces> = { [M in Member<N>]: ServedMethod<Calls<N>[M], Member<N>> };
export type ServedProperties<N extends keyof ServedInterfaces> = { [P in keyof ServedInterfaces[N]['properties']]: () => ServedInterfaces[N]['properties'][P] };

/** An ExportedInterface for Display1 interface `name`, signatures and property types from the XML. */
export function servedInterface<N extends keyof ServedInterfaces>(name: N, methods: ServedMethods<N>, properties?: ServedProperties<N>): ExportedInterface {
  const info = DISPLAY1[name];
  const out: Record<string, ExportedMethod> = {};
  for (const [member, m] of Object.entries(methods) as [string, ServedMethod<unknown>][]) {
    const sig = info.methods[member];
    // The dispatcher calls `call`/`validate` only with a body whose signature is `sig.in`, which
    // is what the generated tuple types: the one place the typed table meets unknown[].
    out[member] = { ...(m as unknown as Omit<ExportedMethod, 'in' | 'out'>), in: sig.in, out: sig.out };
  }
  const iface: ExportedInterface = { name, methods: out };
  if (properties) {
    iface.properties = {};
    for (const [p, get] of Object.entries(properties) as [string, () => unknown][]) iface.properties[p] = [info.properties[p].type, get];
  }
  return iface;
}
