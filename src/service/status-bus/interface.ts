// The status bus interface: names, the member table, and how a route's counters travel as
// D-Bus values. One definition, used by the service (export), the client (`status`, `grab`)
// and the check against the committed introspection XML (bridge1.xml, unit test
// status-bus-interface.test.ts). docs/status-bus.md is the reference for people.
import { createHash } from 'crypto';
import type { CountersOf, RouteCounters, RouteName } from '../route';

/** Every bridge's well-known name starts with this; the rest is the escaped VM name. */
export const BUS_NAME_PREFIX = 'io.github.qemu_dbus_bridge.Vm.';
export const OBJECT_PATH = '/io/github/qemu_dbus_bridge/Bridge';
export const INTERFACE = 'io.github.qemu_dbus_bridge.Bridge1';
/** D-Bus error names our methods reply with. */
export const ERROR_PREFIX = 'io.github.qemu_dbus_bridge.Error.';

/**
 * The VM name as one bus-name element: letters and digits stay, every other byte (UTF-8) is `_`
 * and two hex digits, and a leading digit is escaped too (an element must not start with one).
 * "win11" -> "win11", "my-vm" -> "my_2dvm", "11" -> "_311". A name whose escape would pass the
 * 255-byte limit of a bus name becomes "h" and a SHA-256 prefix of it.
 */
export function escapeVmName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    const plain = /[A-Za-z]/.test(c) || (/[0-9]/.test(c) && out !== '');
    out += plain ? c : `_${byte.toString(16).padStart(2, '0')}`;
  }
  if (out === '') out = '_';
  if (BUS_NAME_PREFIX.length + out.length > 255) out = 'h' + createHash('sha256').update(name).digest('hex').slice(0, 40);
  return out;
}

/** Inverse of escapeVmName (a hashed name stays as it is). */
export function unescapeVmName(element: string): string {
  if (element === '_') return '';
  const bytes: number[] = [];
  for (let i = 0; i < element.length; i++) {
    if (element[i] === '_' && /^[0-9a-f]{2}$/.test(element.slice(i + 1, i + 3))) {
      bytes.push(parseInt(element.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(element.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

export const busNameFor = (vmName: string): string => BUS_NAME_PREFIX + escapeVmName(vmName);

/** D-Bus types a counter may have. */
type CounterSig = 'd' | 't' | 'i' | 's' | 'b' | 'as';
type CounterTypes = { [N in RouteName]: { [K in Exclude<keyof CountersOf<N>, 'route'>]: CounterSig } };

/**
 * The D-Bus type of every counter field, per route. Typed against RouteCounters, so a field added
 * to a route's counters does not compile until it has a type here (and then bridge1.xml's
 * documentation and docs/status-bus.md say what it means).
 */
export const COUNTER_TYPES: CounterTypes = {
  'audio-out': {
    target: 's',
    format: 's',
    blockFrames: 't',
    targetLatencyMs: 'd',
    measuredLatencyMs: 'd',
    frames: 't',
    fillFrames: 't',
    underruns: 't',
    overruns: 't',
    lostFrames: 't',
    silenceSkippedFrames: 't',
    reconnects: 't',
    driftPpm: 'd',
    rateRatio: 'd',
  },
  'audio-in': { target: 's', open: 'b', reads: 't', paddedReads: 't', underruns: 't' },
  camera: { target: 's', fps: 'd', converted: 't', repeated: 't', dropped: 't', latencyP50Ms: 'd', latencyP99Ms: 'd', viewer: 'b' },
  input: { target: 's', devices: 'as', forwardTo: 's', grabbed: 'b', forwarded: 't', dropped: 't', lastError: 's', ringOrder: 'i' },
};

/** dbus-native's form of an a{sv}: [key, [signature, value]] pairs. */
export type VariantDict = [string, [string, unknown]][];

/** One route's counters as an a{sv} (the `route` discriminant is the key of the outer dict). */
export function countersToDict(c: RouteCounters): VariantDict {
  const types = COUNTER_TYPES[c.route] as Record<string, CounterSig>;
  const out: VariantDict = [];
  for (const [key, sig] of Object.entries(types)) {
    const v = (c as unknown as Record<string, unknown>)[key];
    // 't' is unsigned: a counter is never negative, but clamp rather than fail the whole reply.
    // 'i' (int32) likewise: a whole number in range, whatever the route handed over.
    out.push([key, [sig, sig === 't' ? Math.max(0, Math.floor(Number(v) || 0)) : sig === 'i' ? Math.max(-0x80000000, Math.min(0x7fffffff, Math.trunc(Number(v) || 0))) : v]]);
  }
  return out;
}

/** Back from a received a{sv} (values already unwrapped to plain JS by the client). */
export function countersFromDict(route: RouteName, d: Record<string, unknown>): RouteCounters {
  const types = COUNTER_TYPES[route] as Record<string, CounterSig>;
  const out: Record<string, unknown> = { route };
  for (const [key, sig] of Object.entries(types)) {
    const v = d[key];
    out[key] = sig === 't' || sig === 'd' || sig === 'i' ? Number(v ?? 0) : sig === 'b' ? Boolean(v) : sig === 'as' ? (Array.isArray(v) ? v.map(String) : []) : String(v ?? '');
  }
  return out as unknown as RouteCounters;
}

/**
 * The members of Bridge1, with their D-Bus signatures: the runtime truth, checked against
 * bridge1.xml by a unit test and against the live object by the integration test.
 */
export const BRIDGE1 = {
  properties: {
    VmName: 's',
    VmUuid: 's',
    Pid: 'u',
    Attached: 'b',
    Status: 's',
    QemuFeatures: 'as',
    Routes: 'a(ssstss)',
    Counters: 'a{sa{sv}}',
  },
  methods: {
    Grab: { in: '', out: 'b' },
    Release: { in: '', out: 'b' },
    ToggleGrab: { in: '', out: 'b' },
    RestartRoute: { in: 's', out: 'as' },
    TakeOver: { in: 't', out: 'b' },
    ForwardingAtNext: { in: 't', out: 'b' },
    Reattach: { in: '', out: '' },
  },
} as const;

export type Bridge1Property = keyof typeof BRIDGE1.properties;
export type Bridge1Method = keyof typeof BRIDGE1.methods;

/** One element of the Routes property: (name, state, reason, next retry ms since epoch, summary, target). */
export type RouteTuple = [name: string, state: string, reason: string, nextRetryAt: number, summary: string, target: string];
