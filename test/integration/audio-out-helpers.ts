// Feeding a Speaker exactly like QEMU 7.2 does (1024-frame Write blocks released on a 10 ms
// timer by a rate limiter on QEMU's clock), in any QEMU sample format, for the real-component
// tests of the speaker path.
import type { PlaybackBackend } from '../../src/audio/backend';
import { Speaker, type SpeakerOptions } from '../../src/audio/out/speaker';
import { QemuVm } from '../../src/qemu';
import type { AudioOutHandler, PcmFormat } from '../../src/qemu/handlers';
import { FakeQemuPeer, type FakeListenerPeer } from '../fakes/qemu-peer';
import { waitFor } from '../harness/procs';
import { DEFAULT_MAX_RATE_ADJUST } from '../../src/audio/drift';

/**
 * Latency target the real-component tests run with. The feeder is a JS timer on a machine
 * shared with QEMU TCG guests and other test runs (load 4 on 2 cores): it is sometimes 30-50 ms
 * late, which at the product default of 20 ms underruns (as real QEMU would, starved like that).
 * These tests check correctness (formats, tail, volume), so they buy headroom; latency itself
 * is measured in bench/audio.bench.ts.
 */
export const TEST_LATENCY_MS = 60;

/**
 * How far a captured tone may sit from the frequency sent: the drift controller may legitimately
 * run the stream up to DEFAULT_MAX_RATE_ADJUST off nominal (a loaded machine makes it work), which
 * moves the pitch by as much; plus the FFT's own 0.5 Hz.
 */
export function pitchToleranceHz(hz: number): number {
  return hz * DEFAULT_MAX_RATE_ADJUST + 0.5;
}

/** One Write as a test saw it arrive: when (performance.now()), how many bytes, whether it carried sound. */
export interface WriteSeen {
  at: number;
  bytes: number;
  loud: boolean;
}

/**
 * How late the Writes of one sound came, ms, against a steady stream from its first loud block
 * (re-anchored when one came early): the prebuffer a voice needs beyond one block to play it through.
 */
export function maxLateMs(ws: WriteSeen[]): number {
  const tone = ws.slice(ws.findIndex((w) => w.loud), ws.length - [...ws].reverse().findIndex((w) => w.loud));
  let origin = tone[0]?.at ?? 0;
  let sent = 0;
  let max = 0;
  for (const w of tone) {
    const late = w.at - origin - (sent * 1000) / 44100;
    if (late < 0) origin += late;
    else max = Math.max(max, late);
    sent += w.bytes / 4;
  }
  return max;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function pcmFormat(o: { bits: 8 | 16 | 32; isSigned?: boolean; isFloat?: boolean; freq?: number; nchannels?: number; bigEndian?: boolean }): PcmFormat {
  const nchannels = o.nchannels ?? 2;
  const freq = o.freq ?? 44100;
  const bytesPerFrame = (o.bits / 8) * nchannels;
  return {
    bits: o.bits,
    isSigned: o.isSigned ?? true,
    isFloat: o.isFloat ?? false,
    freq,
    nchannels,
    bytesPerFrame,
    bytesPerSecond: bytesPerFrame * freq,
    bigEndian: o.bigEndian ?? false,
  };
}

/** Encodes one sample value in [-1, 1) into `out` at `off` in format f. */
function encode(f: PcmFormat, v: number, out: DataView, off: number): void {
  const le = !f.bigEndian;
  if (f.isFloat) return out.setFloat32(off, v, le);
  if (f.bits === 8) {
    const s = Math.max(-128, Math.min(127, Math.round(v * 127)));
    return f.isSigned ? out.setInt8(off, s) : out.setUint8(off, s + 128);
  }
  if (f.bits === 16) {
    const s = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
    return f.isSigned ? out.setInt16(off, s, le) : out.setUint16(off, s + 32768, le);
  }
  const s = Math.max(-2147483648, Math.min(2147483647, Math.round(v * 2147483647)));
  return f.isSigned ? out.setInt32(off, s, le) : out.setUint32(off, s + 2147483648, le);
}

export interface FeedOptions {
  id: bigint;
  format: PcmFormat;
  seconds: number;
  freq: number;
  amplitude: number;
  /** QEMU's clock relative to real time: +0.003 = QEMU 0.3 % fast. */
  drift?: number;
  blockFrames?: number;
  /** Called after each Write with the frame count sent so far (drift tests sample stats here). */
  onBlock?: (sentFrames: number) => void;
  /** Changes amplitude at a given second (volume test uses one tone at fixed amplitude instead). */
}

/**
 * Writes a sine of `freq` for `seconds` in QEMU's pacing. The last block is partial (whatever is
 * left), which QEMU itself would keep back (see src/audio/out/voice.ts): the point is that every
 * frame the bridge receives must be heard.
 */
export async function feedTone(h: AudioOutHandler, o: FeedOptions): Promise<number> {
  const f = o.format;
  const block = o.blockFrames ?? 1024;
  const total = Math.round(o.seconds * f.freq);
  const bps = f.bits / 8;
  const buf = new ArrayBuffer(block * f.bytesPerFrame);
  const view = new DataView(buf);
  const t0 = performance.now();
  let sent = 0;
  let tick = 0;
  while (sent < total) {
    tick++;
    const due = t0 + tick * 10;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const allowed = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * f.freq * (1 + (o.drift ?? 0))));
    while (sent < total && (allowed - sent >= block || (allowed === total && sent < total))) {
      const n = Math.min(block, total - sent);
      for (let i = 0; i < n; i++) {
        const v = o.amplitude * Math.sin((2 * Math.PI * o.freq * (sent + i)) / f.freq);
        for (let c = 0; c < f.nchannels; c++) encode(f, v, view, (i * f.nchannels + c) * bps);
      }
      h.write(o.id, new Uint8Array(buf, 0, n * f.bytesPerFrame));
      sent += n;
      o.onBlock?.(sent);
    }
  }
  return sent;
}

/**
 * One sound the way QEMU 7.2 plays it on a registered AudioOutListener (`qemu` is the fake
 * peer's side, FakeListenerPeer.audioOut()): Init, SetEnabled(true), SetVolume at full scale,
 * 1024-frame Writes paced on QEMU's clock (`drift`), then, once the guest stopped,
 * SetEnabled(false) and Fini. `onFed` runs after the last Write, before SetEnabled(false).
 */
export async function playLikeQemu(qemu: AudioOutHandler, o: FeedOptions & { onFed?: () => void }): Promise<number> {
  qemu.init(o.id, o.format);
  qemu.setEnabled(o.id, true);
  qemu.setVolume(o.id, false, new Uint8Array(o.format.nchannels).fill(255));
  const sent = await feedTone(qemu, o);
  o.onFed?.();
  qemu.setEnabled(o.id, false);
  qemu.fini(o.id);
  return sent;
}

/**
 * A fake QEMU 7.2 on a real (private) bus with the bridge attached the product's way:
 * QemuVm.connect + addAudioOutListener(Speaker), i.e. RegisterOutListener and a p2p
 * AudioOutListener socket. `qemu` makes QEMU's calls on that socket.
 */
export interface PeerRig {
  fake: FakeQemuPeer;
  vm: QemuVm;
  speaker: Speaker;
  listener: FakeListenerPeer;
  qemu: AudioOutHandler;
  /** voice ids whose Fini the listener has delivered to the speaker */
  readonly finis: Set<bigint>;
  close(): Promise<void>;
}

export async function startPeerRig(busAddress: string, name: string, backend: PlaybackBackend, opts: Omit<SpeakerOptions, 'backend' | 'vmName'>): Promise<PeerRig> {
  const fake = await FakeQemuPeer.start({ busAddress, name });
  // No greeting voice on the audio listener: the test's own Init/Write/Fini are all it gets.
  fake.onListener = async (l) => {
    if (l.kind !== 'audio-out') await fake.greet(l);
  };
  const vm = await QemuVm.connect({ busAddress, name });
  const speaker = new Speaker({ vmName: name, backend, ...opts });
  // Fini is one-way (NO_REPLY_EXPECTED): the only way to know it arrived is to see it arrive.
  const finis = new Set<bigint>();
  const handler: AudioOutHandler = {
    init: (id, f) => speaker.init(id, f),
    setEnabled: (id, on) => speaker.setEnabled(id, on),
    setVolume: (id, mute, v) => speaker.setVolume(id, mute, v),
    write: (id, data) => speaker.write(id, data),
    fini: (id) => {
      speaker.fini(id);
      finis.add(id);
    },
  };
  try {
    await vm.addAudioOutListener(handler);
    const listener = await fake.waitForListener('audio-out', 20_000);
    return {
      fake,
      vm,
      speaker,
      listener,
      qemu: listener.audioOut(),
      finis,
      async close() {
        await vm.close();
        await speaker.close();
        await fake.stop();
      },
    };
  } catch (err) {
    await vm.close();
    await speaker.close();
    await fake.stop();
    throw err;
  }
}

/** Fini is a one-way call: waits until the listener handed it to the speaker, then for the drain. */
export async function finiReached(rig: PeerRig, id: bigint, what: string): Promise<void> {
  await waitFor(`${what}: Fini of voice ${id} reaching the speaker`, 20_000, () => rig.finis.has(id));
  await rig.speaker.idle();
}

/** The Speaker as QEMU's AudioOutHandler, with every Write shown to `onWrite` first (tests record them). */
export function watchedSpeaker(speaker: Speaker, onWrite: (id: bigint, data: Uint8Array) => void): AudioOutHandler {
  return {
    init: speaker.init.bind(speaker),
    fini: speaker.fini.bind(speaker),
    setEnabled: speaker.setEnabled.bind(speaker),
    setVolume: speaker.setVolume.bind(speaker),
    write: (id: bigint, data: Uint8Array) => {
      onWrite(id, data);
      speaker.write(id, data);
    },
  };
}
