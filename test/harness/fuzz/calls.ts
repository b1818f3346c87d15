// Well-typed random and edge-value calls for the three listener interfaces, the way a hostile
// guest (or a buggy QEMU) could make them: every integer argument at its extremes, arrays empty,
// short, exact and huge, unknown voice ids, Init/Fini/SetEnabled out of order, frame geometry
// that does not match its data, pixel and PCM formats QEMU never sends, plus the standard
// interfaces (Properties, Introspectable, Peer) and calls of unknown members.
//
// Generated with fast-check from a seed: the same seed gives the same calls, batch by batch
// (each batch has its own derived seed, so a long run never holds all calls in memory).
import * as fc from 'fast-check';

export type FuzzInterface = 'console' | 'audio-out' | 'audio-in';
export const FUZZ_INTERFACES: readonly FuzzInterface[] = ['console', 'audio-out', 'audio-in'];

/** How a byte array argument is built (materialised after sampling: cheap for huge sizes). */
export type DataSpec = { kind: 'empty' } | { kind: 'bytes'; length: number; fill: number } | { kind: 'exact'; delta: number; fill: number };

export interface FuzzCall {
  iface: string;
  path?: string;
  member: string;
  signature: string;
  /** body with DataSpec in place of `ay` arguments; see materialise() */
  body: unknown[];
  /** NO_REPLY_EXPECTED unset: the call must be answered (reply or D-Bus error) */
  reply: boolean;
  /** carries one file descriptor (the `h` argument is index 0) */
  fd?: boolean;
}

const LISTENER = 'org.qemu.Display1.Listener';
const UNIX_MAP = 'org.qemu.Display1.Listener.Unix.Map';
const AUDIO_OUT = 'org.qemu.Display1.AudioOutListener';
const AUDIO_IN = 'org.qemu.Display1.AudioInListener';
const PROPS = 'org.freedesktop.DBus.Properties';

const U32_EDGES = [0, 1, 2, 3, 4, 7, 8, 16, 64, 255, 256, 400, 480, 640, 720, 1024, 4096, 16383, 16384, 16385, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const I32_EDGES = [-2147483648, -2147483647, -65536, -16385, -16384, -1024, -1, 0, 1, 2, 640, 16383, 16384, 16385, 65536, 2147483646, 2147483647];
const U64_EDGES = [0n, 1n, 2n, 0xffffffffn, 0x100000000n, 0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffffffffffffn];

const u32 = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...U32_EDGES) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) });
const i32 = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...I32_EDGES) }, { weight: 1, arbitrary: fc.integer({ min: -2147483648, max: 2147483647 }) });
const byte = fc.oneof(fc.constantFrom(0, 1, 7, 8, 16, 24, 32, 64, 127, 128, 254, 255), fc.integer({ min: 0, max: 255 }));
const u64 = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...U64_EDGES) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }) });
/** Small frame sides mostly (they make real work), the extremes sometimes. */
const side = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 96 }) }, { weight: 1, arbitrary: fc.constantFrom(640, 480, 1024, 4096) }, { weight: 1, arbitrary: u32 });
/** The same for Update, whose width and height are int32. */
const sideI32 = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 96 }) }, { weight: 1, arbitrary: i32 });
/** Strides: the tight one for a side (4 bytes a pixel) mostly, any u32 sometimes. */
const stride = fc.oneof({ weight: 3, arbitrary: side.map((s) => Math.min(s * 4, 0xffffffff)) }, { weight: 1, arbitrary: u32 });
/** pixman formats: the ones QEMU sends, and ones it never sends. */
const pixman = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0x20020888, 0x20028888, 0x20038888, 0x20088888, 0x10020565, 0x18020888) },
  { weight: 1, arbitrary: fc.constantFrom(0, 0xffffffff, 0x08018000, 0x40028888, 0x01000000) },
  { weight: 1, arbitrary: u32 },
);
const fill = fc.integer({ min: 0, max: 255 });
/** `exact`: the size the geometry implies (+delta); the rest are unrelated sizes. */
const data = (maxHuge: number): fc.Arbitrary<DataSpec> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant<DataSpec>({ kind: 'empty' }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('exact' as const), delta: fc.constantFrom(0, 0, 0, -1, 1, -4), fill }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('bytes' as const), length: fc.integer({ min: 1, max: 4096 }), fill }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), length: fc.integer({ min: Math.min(4097, maxHuge), max: maxHuge }), fill }) },
  );

const call = (iface: string, member: string, signature: string, body: fc.Arbitrary<unknown[]>, o: { reply?: boolean; path?: string; fd?: boolean } = {}): fc.Arbitrary<FuzzCall> =>
  fc.tuple(body, o.reply === undefined ? fc.boolean() : fc.constant(o.reply)).map(([b, reply]) => ({ iface, member, signature, body: b, reply, ...(o.path ? { path: o.path } : {}), ...(o.fd ? { fd: true } : {}) }));

/** Properties/Introspectable/Peer and unknown members: the same on every listener. */
function standard(ifaceName: string, path: string): fc.Arbitrary<FuzzCall>[] {
  const names = fc.constantFrom(ifaceName, UNIX_MAP, 'org.example.Nope', '', 'org.freedesktop.DBus.Properties');
  return [
    call(PROPS, 'GetAll', 's', fc.tuple(names), { reply: true }),
    call(PROPS, 'Get', 'ss', fc.tuple(names, fc.constantFrom('Interfaces', 'Nope', '')), { reply: true }),
    call(PROPS, 'Set', 'ssv', fc.tuple(names, fc.constant('Interfaces'), fc.constant(['u', 1])), { reply: true }),
    call('org.freedesktop.DBus.Introspectable', 'Introspect', '', fc.constant([]), { reply: true }),
    call('org.freedesktop.DBus.Peer', 'Ping', '', fc.constant([]), { reply: true }),
    call(ifaceName, 'Frobnicate', 'u', fc.tuple(u32)),
    // a known member with the wrong signature, and a call on another object path
    call(ifaceName, 'Fini', 's', fc.tuple(fc.constant('not a voice'))),
    call(ifaceName, 'Disable', '', fc.constant([]), { path: `${path}/Other` }),
  ];
}

function consoleCalls(): fc.Arbitrary<FuzzCall> {
  const path = '/org/qemu/Display1/Listener';
  const huge = 2 * 1024 * 1024;
  return fc.oneof(
    { weight: 6, arbitrary: call(LISTENER, 'Scanout', 'uuuuay', fc.tuple(side, side, stride, pixman, data(huge))) },
    { weight: 6, arbitrary: call(LISTENER, 'Update', 'iiiiuuay', fc.tuple(i32, i32, sideI32, sideI32, stride, pixman, data(huge))) },
    { weight: 6, arbitrary: call(LISTENER, 'MouseSet', 'iii', fc.tuple(i32, i32, i32)) },
    { weight: 4, arbitrary: call(LISTENER, 'CursorDefine', 'iiiiay', fc.tuple(fc.oneof(fc.integer({ min: -2, max: 70 }), i32), fc.oneof(fc.integer({ min: -2, max: 70 }), i32), i32, i32, data(64 * 1024))) },
    { weight: 1, arbitrary: call(LISTENER, 'Disable', '', fc.constant([])) },
    { weight: 1, arbitrary: call(LISTENER, 'UpdateDMABUF', 'iiii', fc.tuple(i32, i32, i32, i32), { reply: true }) },
    { weight: 1, arbitrary: call(LISTENER, 'ScanoutDMABUF', 'huuuutb', fc.tuple(fc.constant(0), u32, u32, u32, u32, u64, fc.boolean()), { reply: true, fd: true }) },
    { weight: 2, arbitrary: call(UNIX_MAP, 'ScanoutMap', 'huuuuu', fc.tuple(fc.constantFrom(0, 0, 0, 1, 0xffffffff), fc.oneof(fc.constant(0), u32), side, side, stride, pixman), { reply: true, fd: true }) },
    { weight: 2, arbitrary: call(UNIX_MAP, 'UpdateMap', 'iiii', fc.tuple(i32, i32, i32, i32)) },
    ...standard(LISTENER, path).map((arbitrary) => ({ weight: 1, arbitrary })),
  );
}

/** Voice ids: mostly a few (so calls meet a voice that exists), sometimes any 64-bit value. */
const voiceId = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(1n, 2n, 0x5611deadbeefn, 0xffffffffffffffffn) }, { weight: 1, arbitrary: u64 });

/** Init: a format QEMU would send half of the time, anything well-typed otherwise. */
const initBody = fc.oneof(
  fc
    .tuple(voiceId, fc.constantFrom(8, 16, 32), fc.boolean(), fc.boolean(), fc.constantFrom(8000, 11025, 22050, 44100, 48000, 96000), fc.constantFrom(1, 2, 6), fc.boolean())
    .map(([id, bits, signed, float, freq, ch, be]) => [id, bits, signed, float && bits === 32, freq, ch, (bits / 8) * ch, freq * (bits / 8) * ch, be]),
  fc.tuple(voiceId, byte, fc.boolean(), fc.boolean(), u32, byte, u32, u32, fc.boolean()),
);

function audioCommon(iface: string): { weight: number; arbitrary: fc.Arbitrary<FuzzCall> }[] {
  return [
    { weight: 2, arbitrary: call(iface, 'Init', 'tybbuyuub', initBody) },
    { weight: 1, arbitrary: call(iface, 'Fini', 't', fc.tuple(voiceId)) },
    { weight: 2, arbitrary: call(iface, 'SetEnabled', 'tb', fc.tuple(voiceId, fc.boolean())) },
    { weight: 2, arbitrary: call(iface, 'SetVolume', 'tbay', fc.tuple(voiceId, fc.boolean(), data(4096))) },
  ];
}

function audioOutCalls(): fc.Arbitrary<FuzzCall> {
  return fc.oneof(
    ...audioCommon(AUDIO_OUT),
    { weight: 10, arbitrary: call(AUDIO_OUT, 'Write', 'tay', fc.tuple(voiceId, data(1024 * 1024))) },
    ...standard(AUDIO_OUT, '/org/qemu/Display1/AudioOutListener').map((arbitrary) => ({ weight: 1, arbitrary })),
  );
}

function audioInCalls(): fc.Arbitrary<FuzzCall> {
  const size = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0n, 1n, 3n, 4n, 441n * 4n, 1764n, 4096n) },
    { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: 65536n }) },
    { weight: 1, arbitrary: fc.constantFrom(4n * 1024n * 1024n, 4n * 1024n * 1024n + 1n, 0x7fffffffffffffffn, 0xffffffffffffffffn) },
    { weight: 1, arbitrary: u64 },
  );
  return fc.oneof(
    ...audioCommon(AUDIO_IN),
    // QEMU waits for every Read: always with a reply.
    { weight: 10, arbitrary: call(AUDIO_IN, 'Read', 'tt', fc.tuple(voiceId, size), { reply: true }) },
    ...standard(AUDIO_IN, '/org/qemu/Display1/AudioInListener').map((arbitrary) => ({ weight: 1, arbitrary })),
  );
}

const ARBITRARIES: Record<FuzzInterface, () => fc.Arbitrary<FuzzCall>> = { console: consoleCalls, 'audio-out': audioOutCalls, 'audio-in': audioInCalls };
const built = new Map<FuzzInterface, fc.Arbitrary<FuzzCall>>();

/** Batch `batch` of the calls for `iface` under `seed`: always the same calls for the same inputs. */
export function callBatch(iface: FuzzInterface, seed: number, batch: number, size: number): FuzzCall[] {
  let arb = built.get(iface);
  if (!arb) built.set(iface, (arb = ARBITRARIES[iface]()));
  const salt = FUZZ_INTERFACES.indexOf(iface) + 1;
  // A derived 32-bit seed per (seed, interface, batch).
  const derived = (Math.imul(seed ^ (salt * 0x9e3779b1), 0x85ebca6b) + Math.imul(batch + 1, 0xc2b2ae35)) | 0;
  return fc.sample(arb, { seed: derived, numRuns: size });
}

/** The body with every DataSpec turned into bytes (`exact` sizes follow the call's geometry). */
export function materialise(c: FuzzCall): unknown[] {
  return c.body.map((v) => {
    if (!v || typeof v !== 'object' || !('kind' in v)) return v;
    const d = v as DataSpec;
    if (d.kind === 'empty') return Buffer.alloc(0);
    if (d.kind === 'bytes') return Buffer.alloc(d.length, d.fill);
    return Buffer.alloc(Math.min(Math.max(0, exactLength(c) + d.delta), 2 * 1024 * 1024), d.fill);
  });
}

/** What the geometry of the call implies for its byte array (capped by the caller). */
function exactLength(c: FuzzCall): number {
  const n = (i: number): number => Number(c.body[i]);
  switch (c.member) {
    case 'Scanout':
      return n(2) * n(1); // stride * height
    case 'Update':
      return n(4) * n(3);
    case 'CursorDefine':
      return n(0) * n(1) * 4;
    case 'Write':
      return 4096;
    default:
      return 2; // SetVolume: one byte per channel
  }
}
