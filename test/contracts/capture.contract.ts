// ONE contract for the microphone capture boundary (CaptureBackend.openCapture -> NativeCapture),
// run against the fake (test/fakes/capture.ts, in test/unit/capture.fake.test.ts) and the addon's
// PwCapture and PulseCapture on real servers (test/integration/capture.real.test.ts). What a
// driver supplies is only how to reach a server and how to make its source carry a signal.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureBackend } from '../../src/audio/backend';
import { CHANNEL_LAYOUTS, type NativeSampleFormat } from '../../src/audio/format';
import type { CaptureStateListener, NativeCapture, NativeCaptureOptions } from '../../src/native-api/capture';
import { micIdentity } from '../../src/stream-identity';
import { dominantFrequency } from '../harness/audio-capture';
import { waitFor } from '../harness/procs';

type CaptureStream = NativeCapture;

/** What InVoice asks of a backend (src/audio/in/voice.ts), for a request of the contract. */
export function captureOptions(backend: CaptureBackend, r: ContractRequest & { vmName: string; source?: string; remote?: string }): NativeCaptureOptions {
  const id = micIdentity(r.vmName, backend.kind, r.source);
  return {
    format: r.format,
    rate: r.rate,
    channels: r.channels,
    streamName: id.streamName,
    props: id.props,
    ...(r.source !== undefined && backend.kind === 'pulse' ? { device: r.source } : {}),
    ...(r.remote !== undefined ? { remote: r.remote } : {}),
    latencyFrames: Math.round(r.rate / 100),
    ringFrames: r.ringFrames ?? r.rate,
    ...(CHANNEL_LAYOUTS[r.channels] ? { positions: CHANNEL_LAYOUTS[r.channels] } : {}),
  };
}

export interface CaptureDriver {
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** The server under test (valid after setup). */
  backend(): CaptureBackend;
  /** The source that carries the driver's tone; undefined = the server's default. */
  source(): string | undefined;
  /**
   * Starts making the source carry a sine of `hz` for `ms` (mono or stereo, full duration),
   * and returns once the signal is flowing. `stream` is the stream under test (the fake
   * delivers into it; real drivers play into the server's virtual microphone).
   */
  startTone(stream: CaptureStream, hz: number, ms: number): Promise<{ done: Promise<void>; stop(): Promise<void> }>;
  /** Lets `ms` of (silent) source time pass: real drivers wait, the fake delivers silence. */
  idle(stream: CaptureStream, ms: number): Promise<void>;
}

export interface ContractRequest {
  format: NativeSampleFormat;
  rate: number;
  channels: number;
  ringFrames?: number;
}

/**
 * Strongest frequency of channel 0 (FFT, harness/audio-capture.ts). Unlike counting crossings it
 * does not move when the FEEDER (pw-play/paplay on a loaded machine) leaves gaps in the source.
 */
export function toneHz(samples: Float64Array, rate: number): number {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
  return dominantFrequency(pcm, rate);
}

/** Channel 0 of interleaved PCM in `format`, as floats in -1..1. */
export function decodeChannel0(format: NativeSampleFormat, data: Uint8Array, channels: number): Float64Array {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const bps = format.startsWith('U8') || format.startsWith('S8') ? 1 : format.includes('16') ? 2 : 4;
  const le = !format.endsWith('BE');
  const frame = bps * channels;
  const n = Math.floor(data.byteLength / frame);
  const out = new Float64Array(n);
  for (let f = 0; f < n; f++) {
    const i = f * frame;
    let v: number;
    switch (format) {
      case 'U8':
        v = (data[i] - 128) / 128;
        break;
      case 'S8':
        v = ((data[i] << 24) >> 24) / 128;
        break;
      case 'S16LE':
      case 'S16BE':
        v = view.getInt16(i, le) / 32768;
        break;
      case 'U16LE':
      case 'U16BE':
        v = (view.getUint16(i, le) - 32768) / 32768;
        break;
      case 'S32LE':
      case 'S32BE':
        v = view.getInt32(i, le) / 2147483648;
        break;
      case 'U32LE':
      case 'U32BE':
        v = (view.getUint32(i, le) - 2147483648) / 2147483648;
        break;
      default:
        v = view.getFloat32(i, le);
    }
    out[f] = v;
  }
  return out;
}

export function captureContract(name: string, driver: CaptureDriver): void {
  describe(`capture contract: ${name}`, () => {
    const open: CaptureStream[] = [];
    const states: string[][] = [];

    beforeAll(() => driver.setup());
    afterAll(() => driver.teardown());
    afterEach(() => {
      for (const s of open.splice(0)) s.close();
    });

    function openStream(r: ContractRequest): { stream: CaptureStream; states: string[] } {
      const log: string[] = [];
      states.push(log);
      const backend = driver.backend();
      const source = driver.source();
      const onState: CaptureStateListener = (state, message) => log.push(message ? `${state}: ${message}` : state);
      const stream = backend.openCapture(captureOptions(backend, { ...r, vmName: 'contract', ...(source !== undefined ? { source } : {}) }), onState);
      open.push(stream);
      return { stream, states: log };
    }

    async function streaming(s: { stream: CaptureStream; states: string[] }): Promise<void> {
      await waitFor(`the capture stream to report streaming (states so far: ${s.states.join(', ')})`, 20_000, () => {
        const bad = s.states.find((x) => x.startsWith('error'));
        if (bad) throw new Error(bad);
        return s.states.includes('streaming');
      });
    }

    /** Reads everything that arrives during the tone (all that is queued, every few ms). */
    async function recordTone(stream: CaptureStream, frameBytes: number, hz: number, ms: number): Promise<Uint8Array> {
      const out = new Uint8Array(Math.ceil(((ms + 2000) / 1000) * 200_000 * 4));
      let got = 0;
      stream.discard(stream.available());
      const tone = await driver.startTone(stream, hz, ms);
      let finished = false;
      void tone.done.then(
        () => (finished = true),
        () => (finished = true),
      );
      const deadline = Date.now() + ms + 15_000;
      while (!finished && Date.now() < deadline) {
        const room = out.byteLength - got;
        const n = stream.read(out, got, room - (room % frameBytes));
        expect(n % frameBytes).toBe(0);
        got += n;
        await new Promise((r) => setTimeout(r, 5));
      }
      await tone.stop();
      got += stream.read(out, got, out.byteLength - got - ((out.byteLength - got) % frameBytes));
      return out.subarray(0, got);
    }

    it('reports streaming once connected, and delivers a tone played into the source at its frequency (S16LE stereo 44100)', async () => {
      // A 4 s ring: a loaded machine may not read for a while, and an overrun would cut periods.
      const s = openStream({ format: 'S16LE', rate: 44100, channels: 2, ringFrames: 4 * 44100 });
      await streaming(s);
      const data = await recordTone(s.stream, 4, 1000, 1200);
      expect(s.stream.stats().overrunBytes).toBe(0);
      const hz = toneHz(decodeChannel0('S16LE', data, 2), 44100);
      expect(data.byteLength, 'bytes captured during the tone').toBeGreaterThan(44100 * 4 * 0.2);
      expect(hz).toBeGreaterThan(990);
      expect(hz).toBeLessThan(1010);
      const st = s.stream.stats();
      expect(st.state).toBe('streaming');
      expect(st.capturedBytes).toBeGreaterThan(0);
      expect(st.callbacks).toBeGreaterThan(0);
    });

    it('is opened in the requested format and the server converts: U8 mono 22050 keeps a 440 Hz tone', async () => {
      const s = openStream({ format: 'U8', rate: 22050, channels: 1, ringFrames: 4 * 22050 });
      await streaming(s);
      const data = await recordTone(s.stream, 1, 440, 1200);
      expect(s.stream.stats().overrunBytes).toBe(0);
      expect(data.byteLength).toBeGreaterThan(22050 * 0.2);
      const x = decodeChannel0('U8', data, 1);
      const hz = toneHz(x, 22050);
      expect(hz).toBeGreaterThan(430);
      expect(hz).toBeLessThan(450);
    });

    it('opens a 6-channel (5.1, WAVE order) stream; the front-left channel carries the tone', async () => {
      const s = openStream({ format: 'S16LE', rate: 48000, channels: 6, ringFrames: 4 * 48000 });
      await streaming(s);
      const data = await recordTone(s.stream, 12, 1000, 1200);
      expect(data.byteLength % 12).toBe(0);
      const hz = toneHz(decodeChannel0('S16LE', data, 6), 48000);
      expect(hz).toBeGreaterThan(990);
      expect(hz).toBeLessThan(1010);
    });

    it('read copies whole frames only, inside [offset, offset+length), and never more than queued', async () => {
      const s = openStream({ format: 'S16LE', rate: 48000, channels: 2 });
      await streaming(s);
      await driver.idle(s.stream, 200);
      await waitFor('audio queued in the ring', 10_000, () => s.stream.available() >= 64);
      const buf = new Uint8Array(64).fill(0xaa);
      const n = s.stream.read(buf, 4, 7);
      expect(n).toBe(4);
      expect([...buf.subarray(0, 4)]).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
      expect([...buf.subarray(8)].every((b) => b === 0xaa)).toBe(true);
      expect(s.stream.read(buf, 0, 3)).toBe(0); // less than one frame
      const before = s.stream.available();
      const dropped = s.stream.discard(10);
      expect(dropped).toBe(8);
      expect(s.stream.available()).toBeGreaterThanOrEqual(before - 8);
      const big = new Uint8Array(1 << 20);
      const all = s.stream.read(big);
      expect(all % 4).toBe(0);
      expect(all).toBeLessThanOrEqual(s.stream.stats().capacity);
    });

    it('rejects a read target that is not a Uint8Array, out-of-range offsets and a negative discard with EINVAL, without crashing', () => {
      const s = openStream({ format: 'S16LE', rate: 48000, channels: 2 });
      const einval = expect.objectContaining({ code: 'EINVAL' }) as Error;
      expect(() => s.stream.read([] as unknown as Uint8Array)).toThrow(einval);
      expect(() => s.stream.read(new Uint8Array(8), 9)).toThrow(einval);
      expect(() => s.stream.read(new Uint8Array(8), 4, 5)).toThrow(einval);
      expect(() => s.stream.discard(-1)).toThrow(einval);
    });

    it('keeps only the newest ringFrames when nobody reads, counting the overrun', async () => {
      const s = openStream({ format: 'S16LE', rate: 48000, channels: 2, ringFrames: 480 });
      await streaming(s);
      await driver.idle(s.stream, 300);
      await waitFor('the ring to overrun', 10_000, () => s.stream.stats().overrunBytes > 0);
      const st = s.stream.stats();
      expect(st.capacity).toBe(480 * 4);
      expect(st.available).toBeLessThanOrEqual(st.capacity);
      expect(st.capturedBytes).toBeGreaterThan(st.capacity);
    });

    it('close() is idempotent and leaves a closed stream that reads nothing new', async () => {
      const s = openStream({ format: 'S16LE', rate: 48000, channels: 2 });
      await streaming(s);
      s.stream.close();
      s.stream.close();
      expect(s.stream.stats().state).toBe('closed');
      const captured = s.stream.stats().capturedBytes;
      await driver.idle(s.stream, 100);
      expect(s.stream.stats().capturedBytes).toBe(captured);
    });

    it('rejects an unknown sample format and a channel count it cannot hold with EINVAL', () => {
      const einval = expect.objectContaining({ code: 'EINVAL' }) as Error;
      expect(() => openStream({ format: 'S24LE' as NativeSampleFormat, rate: 48000, channels: 2 })).toThrow(einval);
      expect(() => openStream({ format: 'S16LE', rate: 48000, channels: 0 })).toThrow(einval);
    });
  });
}
