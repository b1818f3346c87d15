// AudioInBridge (the AudioInHandler) against the fake capture server: stream lifetime (privacy),
// Read answers, padding, volume/mute, format conversion, latency cap, failures.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PcmFormat } from '../../src/qemu/handlers';
import { AudioInBridge } from '../../src/audio/in/audio-in-bridge';
import { FakeCaptureServer } from '../fakes/capture';
import { lineLogger } from '../fakes/logger';

const S16_STEREO: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: 44100, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: 176400, bigEndian: false };
const U8_MONO: PcmFormat = { bits: 8, isSigned: false, isFloat: false, freq: 8000, nchannels: 1, bytesPerFrame: 1, bytesPerSecond: 8000, bigEndian: false };
const ID = 94023977181808n; // QEMU voice ids are host pointers

function frames(...pairs: [number, number][]): Uint8Array {
  const b = new Uint8Array(pairs.length * 4);
  const v = new DataView(b.buffer);
  pairs.forEach(([l, r], i) => {
    v.setInt16(i * 4, l, true);
    v.setInt16(i * 4 + 2, r, true);
  });
  return b;
}

function s16(b: Uint8Array): number[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 2 <= b.byteLength; i += 2) out.push(v.getInt16(i, true));
  return out;
}

function setup(o: { source?: string; kind?: 'pipewire' | 'pulse'; maxLatencyMs?: number; targetLatencyMs?: number; prebufferMs?: number } = {}) {
  const server = new FakeCaptureServer(o.kind);
  const logs: string[] = [];
  const bridge = new AudioInBridge({
    vmName: 'win11',
    backend: server,
    log: lineLogger((line, level) => logs.push(`${level}: ${line}`)),
    ...(o.source !== undefined ? { source: o.source } : {}),
    ...(o.maxLatencyMs !== undefined ? { maxLatencyMs: o.maxLatencyMs } : {}),
    ...(o.targetLatencyMs !== undefined ? { targetLatencyMs: o.targetLatencyMs } : {}),
    // Most tests look at single frames: no jitter buffer unless the test is about it.
    prebufferMs: o.prebufferMs ?? 0,
  });
  return { server, bridge, logs };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('AudioInBridge: no microphone open while the guest is not recording', () => {
  it('opens nothing on Init, opens on SetEnabled(true), closes on SetEnabled(false) and Fini', () => {
    const { server, bridge } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, false); // QEMU replays Init + SetEnabled(false) at registration
    expect(server.opened).toHaveLength(0);
    expect(bridge.capturing).toBe(false);
    bridge.setEnabled(ID, true);
    expect(server.live).toHaveLength(1);
    expect(bridge.capturing).toBe(true);
    bridge.setEnabled(ID, true); // repeated: still one stream
    expect(server.opened).toHaveLength(1);
    bridge.setEnabled(ID, false);
    expect(server.live).toHaveLength(0);
    expect(bridge.capturing).toBe(false);
    bridge.setEnabled(ID, true);
    expect(server.live).toHaveLength(1);
    bridge.fini(ID);
    expect(server.live).toHaveLength(0);
    bridge.setEnabled(ID, true); // after Fini: unknown voice, nothing opens
    expect(server.live).toHaveLength(0);
  });

  it('a second Init of the same id closes the old stream; close() closes everything', () => {
    const { server, bridge } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    bridge.init(ID, S16_STEREO);
    expect(server.live).toHaveLength(0);
    bridge.setEnabled(ID, true);
    bridge.init(2n, U8_MONO);
    bridge.setEnabled(2n, true);
    expect(server.live).toHaveLength(2);
    bridge.close();
    expect(server.live).toHaveLength(0);
    expect(bridge.capturing).toBe(false);
  });

  it('opens in the guest format with the VM names, the chosen source and a ~10 ms period (PipeWire: target.object)', () => {
    const { server, bridge } = setup({ source: 'alsa_input.usb-mic' });
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    const req = server.opened[0].request;
    expect(req).toMatchObject({ format: 'S16LE', rate: 44100, channels: 2, streamName: 'qemu-win11-mic', latencyFrames: 441, positions: ['FL', 'FR'] });
    expect(req.props).toMatchObject({ 'node.name': 'qemu-win11-mic', 'node.description': 'win11 microphone', 'media.role': 'Communication', 'target.object': 'alsa_input.usb-mic' });
    expect(req.device).toBeUndefined();
    expect(req.ringFrames).toBeGreaterThanOrEqual(44100 / 4);
  });

  it('PulseAudio: the source is the stream device and the role is "phone"', () => {
    const { server, bridge } = setup({ source: 'alsa_input.usb-mic', kind: 'pulse' });
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    const req = server.opened[0].request;
    expect(req.device).toBe('alsa_input.usb-mic');
    expect(req.props).toMatchObject({ 'media.role': 'phone', 'node.name': 'qemu-win11-mic' });
    expect(req.props['target.object']).toBeUndefined();
  });
});

describe('AudioInBridge: Read', () => {
  it('returns exactly `size` bytes at once: queued audio first, then silence, padding counted', () => {
    const { server, bridge } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    server.opened[0].deliver(frames([1, 2], [3, 4]));
    const r = bridge.read(ID, 16);
    expect(r.byteLength).toBe(16);
    expect(s16(r)).toEqual([1, 2, 3, 4, 0, 0, 0, 0]);
    const st = bridge.stats()[0];
    expect(st).toMatchObject({ reads: 1, requestedBytes: 16, capturedBytes: 8, paddedBytes: 8, paddedReads: 1, underruns: 1, startupPaddedBytes: 0 });
    server.opened[0].deliver(frames([5, 6], [7, 8]));
    expect(s16(bridge.read(ID, 8))).toEqual([5, 6, 7, 8]);
    expect(bridge.stats()[0].paddedReads).toBe(1);
  });

  it('jitter buffer: silence until prebufferMs is queued, at the start and again after each underrun', () => {
    const { server, bridge } = setup({ prebufferMs: 10 }); // U8 8000 Hz: 80 bytes
    bridge.init(ID, U8_MONO);
    bridge.setEnabled(ID, true);
    const mic = server.opened[0];
    mic.deliver(new Uint8Array(79).fill(1));
    expect([...bridge.read(ID, 4)]).toEqual([0x80, 0x80, 0x80, 0x80]); // 79 < 80 queued
    mic.deliver(Uint8Array.from([2]));
    expect([...bridge.read(ID, 4)]).toEqual([1, 1, 1, 1]);
    expect([...bridge.read(ID, 80)].filter((b) => b === 0x80)).toHaveLength(4); // ran dry: 76 + 4 padding
    expect(bridge.stats()[0]).toMatchObject({ underruns: 1, startupPaddedBytes: 4, paddedBytes: 4 });
    mic.deliver(new Uint8Array(40).fill(3));
    expect([...bridge.read(ID, 4)]).toEqual([0x80, 0x80, 0x80, 0x80]); // refilling: one gap, not many
    mic.deliver(new Uint8Array(40).fill(3));
    expect([...bridge.read(ID, 4)]).toEqual([3, 3, 3, 3]);
    expect(bridge.stats()[0]).toMatchObject({ underruns: 1, paddedBytes: 8, paddedReads: 2 });
  });

  it('counts silence before the first microphone byte as start-up padding, not steady-state padding', () => {
    const { server, bridge } = setup();
    server.autoStart = false;
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    expect(s16(bridge.read(ID, 8))).toEqual([0, 0, 0, 0]);
    expect(bridge.stats()[0]).toMatchObject({ startupPaddedBytes: 8, paddedBytes: 0 });
  });

  it('answers a size that is not a whole number of frames with whole frames plus silence', () => {
    const { server, bridge } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    server.opened[0].deliver(frames([1, 2], [3, 4]));
    const r = bridge.read(ID, 6);
    expect(r.byteLength).toBe(6);
    expect(s16(r)).toEqual([1, 2, 0]);
    expect(s16(bridge.read(ID, 4))).toEqual([3, 4]);
  });

  it('pads unsigned 8-bit with 0x80, not 0', () => {
    const { server, bridge } = setup();
    bridge.init(ID, U8_MONO);
    bridge.setEnabled(ID, true);
    server.opened[0].deliver(Uint8Array.from([0x90, 0x70]));
    expect([...bridge.read(ID, 5)]).toEqual([0x90, 0x70, 0x80, 0x80, 0x80]);
  });

  it('answers silence while disabled and for unknown voices (warned once)', () => {
    const { bridge, logs } = setup();
    bridge.init(ID, U8_MONO);
    expect([...bridge.read(ID, 3)]).toEqual([0x80, 0x80, 0x80]);
    expect(bridge.stats()[0].paddedBytes).toBe(0); // not recording: not padding
    expect([...bridge.read(7n, 2)]).toEqual([0, 0]);
    bridge.read(7n, 2);
    expect(logs.filter((l) => l.includes('unknown voice'))).toHaveLength(1);
  });

  it('converts S8 guests from the U8 capture (sign bit flipped)', () => {
    const { server, bridge } = setup();
    bridge.init(ID, { ...U8_MONO, isSigned: true });
    bridge.setEnabled(ID, true);
    expect(server.opened[0].request.format).toBe('U8');
    server.opened[0].deliver(Uint8Array.from([0x80, 0xff, 0x00]));
    expect([...bridge.read(ID, 4)]).toEqual([0x00, 0x7f, 0x80, 0x00]);
  });

  it('drops the oldest audio when more than maxLatencyMs is queued, keeping targetLatencyMs', () => {
    const { server, bridge } = setup({ maxLatencyMs: 100, targetLatencyMs: 20 });
    bridge.init(ID, U8_MONO); // 8000 Hz: 100 ms = 800 bytes, 20 ms = 160 bytes
    bridge.setEnabled(ID, true);
    const old = new Uint8Array(1000).fill(1);
    const recent = new Uint8Array(160).fill(2);
    server.opened[0].deliver(old);
    server.opened[0].deliver(recent);
    const r = bridge.read(ID, 160);
    expect([...r].every((b) => b === 2)).toBe(true);
    expect(bridge.stats()[0].discardedBytes).toBe(1000);
  });

  it('returns a view of at most `size` bytes even after a bigger read grew the buffer', () => {
    const { bridge } = setup();
    bridge.init(ID, S16_STEREO);
    expect(bridge.read(ID, 20000).byteLength).toBe(20000);
    expect(bridge.read(ID, 4).byteLength).toBe(4);
  });
});

describe('AudioInBridge: guest volume and mute apply to what the guest receives', () => {
  it('scales per channel (vol/255) and mutes to silence while still consuming the ring', () => {
    const { server, bridge } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    bridge.setVolume(ID, false, Uint8Array.from([255, 51]));
    server.opened[0].deliver(frames([1000, 1000]));
    expect(s16(bridge.read(ID, 4))).toEqual([1000, 200]);
    bridge.setVolume(ID, true, Uint8Array.from([255, 255]));
    server.opened[0].deliver(frames([1000, 1000]));
    expect(s16(bridge.read(ID, 4))).toEqual([0, 0]);
    expect(server.opened[0].available()).toBe(0);
    bridge.setVolume(ID, false, Uint8Array.from([255, 255]));
    server.opened[0].deliver(frames([-7, 7]));
    expect(s16(bridge.read(ID, 4))).toEqual([-7, 7]);
  });

  it('mutes unsigned 8-bit to 0x80', () => {
    const { server, bridge } = setup();
    bridge.init(ID, U8_MONO);
    bridge.setEnabled(ID, true);
    bridge.setVolume(ID, true, Uint8Array.from([255]));
    server.opened[0].deliver(Uint8Array.from([0xff, 0x00]));
    expect([...bridge.read(ID, 2)]).toEqual([0x80, 0x80]);
  });
});

describe('AudioInBridge: failures', () => {
  it('an unreachable server: one clear error, silence to the guest, retried while enabled', () => {
    vi.useFakeTimers();
    const { server, bridge, logs } = setup();
    server.failNextOpen = Object.assign(new Error('cannot connect to PipeWire'), { code: 'EPIPEWIRE' });
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    expect(logs).toEqual([expect.stringMatching(/^error: cannot open the microphone: cannot connect to PipeWire/)]);
    expect(s16(bridge.read(ID, 4))).toEqual([0, 0]);
    expect(bridge.stats()[0]).toMatchObject({ state: 'error', openErrors: 1 });
    vi.advanceTimersByTime(1000);
    expect(server.live).toHaveLength(1);
    expect(bridge.stats()[0]).toMatchObject({ state: 'streaming', opens: 2 });
  });

  it('a stream the server fails is closed and reopened; no retry once the guest stops recording', () => {
    vi.useFakeTimers();
    const { server, bridge, logs } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    server.opened[0].fail('target vm-mic not found');
    expect(server.opened[0].closed).toBe(true);
    expect(logs.some((l) => l.includes('target vm-mic not found'))).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(server.live).toHaveLength(1);
    server.opened[1].fail('again');
    bridge.setEnabled(ID, false);
    vi.advanceTimersByTime(20_000);
    expect(server.live).toHaveLength(0);
    expect(server.opened).toHaveLength(2);
  });

  it('ignores late state events from a stream it already closed', () => {
    const { server, bridge } = setup();
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    const first = server.opened[0];
    bridge.setEnabled(ID, false);
    bridge.setEnabled(ID, true);
    first.onState('error', 'stale');
    expect(server.live).toHaveLength(1);
    expect(bridge.stats()[0].state).toBe('streaming');
  });

  it('an Init format it cannot serve: error logged, the guest records silence, nothing opened', () => {
    const { server, bridge, logs } = setup();
    bridge.init(ID, { ...S16_STEREO, isFloat: true });
    bridge.setEnabled(ID, true);
    expect(server.opened).toHaveLength(0);
    expect(s16(bridge.read(ID, 4))).toEqual([0, 0]);
    expect(logs[0]).toMatch(/16-bit float/);
  });
});

describe('AudioInBridge: a hostile Read size', () => {
  it('takes at most a ring of microphone audio per Read and answers the rest of the size with silence', () => {
    const { server, bridge } = setup({ maxLatencyMs: 1000, targetLatencyMs: 1000 }); // no latency trim
    bridge.init(ID, S16_STEREO);
    bridge.setEnabled(ID, true);
    const stream = server.live[0];
    stream.deliver(new Uint8Array(stream.capacity).fill(0x11)); // a full ring of non-silence
    const asked: number[] = [];
    const read = stream.read.bind(stream);
    stream.read = (into: Uint8Array, offset?: number, length?: number) => {
      asked.push(length ?? into.byteLength);
      return read(into, offset, length);
    };
    const size = 4 * 1024 * 1024; // the largest Read the D-Bus layer lets through
    const out = bridge.read(ID, size);
    expect(asked).toEqual([stream.capacity]);
    expect(out.byteLength).toBe(size);
    expect(out[0]).toBe(0x11);
    expect(out[stream.capacity - 1]).toBe(0x11);
    expect(out.subarray(stream.capacity).every((b) => b === 0)).toBe(true);
    expect(bridge.stats()[0]).toMatchObject({ capturedBytes: stream.capacity, paddedBytes: size - stream.capacity, underruns: 0 });
  });
});
