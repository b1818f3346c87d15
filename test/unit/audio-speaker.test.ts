// Speaker / OutVoice policy over FakePlayback: reconnect, volume mapping, cork after play-out,
// drain on Fini, formats it cannot play.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PlaybackBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import { smoothFill } from '../../src/audio/out/voice';
import type { NativePlaybackOptions, NativePlaybackStats } from '../../src/native-api/audio';
import type { PcmFormat } from '../../src/qemu/handlers';
import { FakePlayback, openSpeakerCore } from '../fakes/playback';

const S16: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: 48000, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: 192000, bigEndian: false };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A block of S16 stereo frames, every sample `value`. */
function s16Block(frames: number, value: number): Uint8Array {
  const b = new Uint8Array(frames * 4);
  const v = new DataView(b.buffer);
  for (let i = 0; i < frames * 2; i++) v.setInt16(i * 2, value, true);
  return b;
}

/** The blocks the voice handed to the stream (copies). */
function spyWrites(p: FakePlayback): Uint8Array[] {
  const seen: Uint8Array[] = [];
  const write = p.write.bind(p);
  p.write = (d: Uint8Array) => {
    seen.push(Uint8Array.from(d));
    return write(d);
  };
  return seen;
}

/** The nextDueInNs the voice passed with each write (undefined: no schedule). */
function spyDues(p: FakePlayback): Array<number | undefined> {
  const dues: Array<number | undefined> = [];
  const write = p.write.bind(p);
  p.write = (d: Uint8Array, due?: number) => (dues.push(due), write(d, due));
  return dues;
}

/** A Speaker with voice 1 open and enabled on a fake PipeWire stream. */
function openSpeaker(latencyMs?: number): { s: Speaker; p: FakePlayback } {
  const backend = fakeBackend();
  const s = new Speaker({ vmName: 'v', backend, latencyMs });
  s.init(1n, S16);
  s.setEnabled(1n, true);
  return { s, p: backend.opened[0] };
}

/** Two 10 ms Writes, the second ~40 ms late (busy-waited: the clock is real). */
function writeLateBlock(s: Speaker): void {
  const block = new Uint8Array(480 * 4);
  const t0 = performance.now();
  s.write(1n, block);
  while (performance.now() - t0 < 50);
  s.write(1n, block);
}

function fakeBackend(): PlaybackBackend & { opened: FakePlayback[]; failNext: number } {
  const b = {
    kind: 'pipewire' as const,
    where: '/fake/pipewire-0',
    openSpeakerCore,
    opened: [] as FakePlayback[],
    failNext: 0,
    openPlayback(o: NativePlaybackOptions): FakePlayback {
      if (b.failNext > 0) {
        b.failNext--;
        throw Object.assign(new Error('cannot connect'), { code: 'EPIPEWIRE' });
      }
      const p = new FakePlayback(o, 5);
      b.opened.push(p);
      return p;
    },
  };
  return b;
}

describe('Speaker', () => {
  it('opens one stream per voice with the identity and latency asked for', () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'vm1', backend, latencyMs: 20, sink: 'hdmi' });
    s.init(1n, S16);
    s.init(2n, { ...S16, nchannels: 1, bytesPerFrame: 2 });
    expect(backend.opened).toHaveLength(2);
    const o = backend.opened[0].opts;
    expect(o).toMatchObject({ format: 'S16LE', rate: 48000, channels: 2, latencyFrames: 960, startFrames: 960 + 1024, device: 'hdmi' });
    expect(o.props).toMatchObject({ 'node.name': 'qemu-vm1-speaker', 'target.object': 'hdmi' });
    expect(backend.opened[1].opts.positions).toEqual(['MONO']);
    s.stats();
    void s.close();
  });

  it('maps SetVolume bytes to per-channel gains, the last byte for the channels beyond (channel count from the stream)', () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend });
    s.init(1n, { ...S16, nchannels: 6, bytesPerFrame: 12 });
    s.setEnabled(1n, true);
    const seen = spyWrites(backend.opened[0]);
    s.setVolume(1n, false, new Uint8Array([255, 51]));
    s.write(1n, s16Block(6, 10000)); // 6 frames of 2 samples = 2 frames of 6 channels
    const v = new DataView(seen[0].buffer);
    expect([0, 1, 2, 3, 4, 5].map((c) => v.getInt16(c * 2, true))).toEqual([10000, 2000, 2000, 2000, 2000, 2000]);
    void s.close();
  });

  it('plays every frame it received: Fini drains before closing', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    const block = new Uint8Array(1000 * 4).fill(7);
    for (let i = 0; i < 5; i++) s.write(1n, block);
    s.fini(1n);
    await s.idle();
    const p = backend.opened[0];
    expect(p.played.filter((b) => b === 7)).toHaveLength(5000 * 4);
    expect(p.stats().consumedFrames).toBe(5000);
  });

  it('corks only after the ring has played out when the guest disables the voice', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend, pollMs: 10 });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    s.write(1n, new Uint8Array(4800 * 4).fill(9)); // 100 ms, above the start threshold
    s.setEnabled(1n, false);
    const p = backend.opened[0];
    await sleep(40);
    expect(p.stats().state).toBe('streaming'); // still playing the tail
    const t0 = Date.now();
    while (p.stats().state !== 'paused' && Date.now() - t0 < 3000) await sleep(10);
    expect(p.stats().state).toBe('paused');
    expect(p.played.filter((b) => b === 9)).toHaveLength(4800 * 4);
    // Underruns while disabled are not the guest's problem and are not reported.
    expect(s.voice(1n)!.stats().underruns).toBe(0);
    s.setEnabled(1n, true);
    expect(p.stats().state).toBe('streaming');
    await s.close();
  });

  it('reopens the stream with backoff when the server goes away, and re-applies volume', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend, pollMs: 10 });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    s.setVolume(1n, false, new Uint8Array([128, 128]));
    backend.failNext = 2; // the server is not back at once
    backend.opened[0].fail('server died');
    const t0 = Date.now();
    while (backend.opened.length < 2 && Date.now() - t0 < 5000) await sleep(10);
    expect(backend.opened).toHaveLength(2);
    const st = s.voice(1n)!.stats();
    expect(st.reconnects).toBe(3);
    expect(st.lastError).toMatch(/cannot connect|server died/);
    // The guest's volume outlives the stream: the new stream gets samples scaled by 128/255.
    const seen = spyWrites(backend.opened[1]);
    s.write(1n, s16Block(16, 10000));
    expect(new DataView(seen[0].buffer).getInt16(0, true)).toBe(Math.round((10000 * 128) / 255));
    // Blocks arriving while no stream was open are counted, not queued forever.
    await s.close();
  });

  it('applies the guest volume to the samples, per channel, and mute writes silence', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    const seen = spyWrites(backend.opened[0]);
    const block = s16Block(16, 10000);
    s.write(1n, block);
    s.setVolume(1n, false, new Uint8Array([255, 51]));
    s.write(1n, block);
    s.setVolume(1n, true, new Uint8Array([255, 255]));
    s.write(1n, block);
    const first = (b: Uint8Array): number[] => [new DataView(b.buffer).getInt16(0, true), new DataView(b.buffer).getInt16(2, true)];
    expect(first(seen[0])).toEqual([10000, 10000]);
    expect(first(seen[1])).toEqual([10000, 2000]);
    expect(seen[2].every((b) => b === 0)).toBe(true);
    // The caller's buffer (QEMU's message) is never modified.
    expect(first(block)).toEqual([10000, 10000]);
    await s.close();
  });

  it('ignores a format no server can play (logged), counts Writes to unknown voices', () => {
    const backend = fakeBackend();
    const lines: string[] = [];
    const log = { error: (m: string) => lines.push(m), warn: () => {}, info: () => {}, debug: () => {}, child: () => log };
    const s = new Speaker({ vmName: 'v', backend, log });
    s.init(1n, { ...S16, nchannels: 12, bytesPerFrame: 24 });
    expect(backend.opened).toHaveLength(0);
    expect(lines[0]).toMatch(/12 channels/);
    s.write(1n, new Uint8Array(8));
    expect(s.stats().unknownWrites).toBe(1);
  });

  it('reports an unplayable format once however often QEMU repeats its Init, and each other one once', () => {
    const backend = fakeBackend();
    const lines: string[] = [];
    const log = { error: (m: string) => lines.push(m), warn: () => {}, info: () => {}, debug: () => {}, child: () => log };
    const s = new Speaker({ vmName: 'v', backend, log });
    for (let i = 0; i < 5; i++) s.init(BigInt(i), { ...S16, nchannels: 12, bytesPerFrame: 24 });
    s.init(9n, { ...S16, nchannels: 11, bytesPerFrame: 22 });
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/11 channels/);
  });

  it('replaces a voice re-initialised with the same id (QEMU replays Init on re-registration)', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend });
    s.init(1n, S16);
    s.init(1n, S16);
    expect(backend.opened).toHaveLength(2);
    await s.close();
    expect(() => backend.opened[0].write(new Uint8Array(4))).toThrow();
  });

  it('a voice re-initialised with a format no server can play is gone: its Writes are unknown, none reach the old stream', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    const old = spyWrites(backend.opened[0]);
    s.init(1n, { ...S16, nchannels: 12, bytesPerFrame: 24 });
    await s.idle(); // the old voice has played out and closed its stream
    s.write(1n, s16Block(480, 1000));
    expect(old).toHaveLength(0);
    expect(s.stats().unknownWrites).toBe(1);
    expect(backend.opened).toHaveLength(1);
  });

  it('a new voice starts with the block size QEMU really sent and the lateness seen so far', () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend, latencyMs: 20, blockFrames: 1024 });
    s.init(1n, S16);
    expect(backend.opened[0].opts.startFrames).toBe(960 + 1024); // the announced block before any Write
    s.setEnabled(1n, true);
    const block = new Uint8Array(480 * 4); // 10 ms at 48 kHz, as QEMU 10.0 sends (NSamples = 480)
    const t0 = performance.now();
    s.write(1n, block);
    s.write(1n, block);
    while (performance.now() - t0 < 60); // the next block is ~40 ms late
    s.write(1n, block);
    s.fini(1n);
    s.init(2n, S16);
    const late = backend.opened[1].opts.startFrames - 960 - 480;
    expect(late).toBeGreaterThanOrEqual(Math.round(0.04 * 48000));
    expect(late).toBeLessThan(Math.round(0.12 * 48000));
    void s.close();
  });

  it('the guest disabling a voice plays out a tail shorter than the start threshold', async () => {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend, pollMs: 10 });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    s.write(1n, s16Block(240, 1234)); // 5 ms: below the 12 ms threshold, the stream waits
    const p = backend.opened[0];
    await sleep(50);
    expect(p.stats().consumedFrames).toBe(0);
    s.setEnabled(1n, false);
    const t0 = Date.now();
    while (p.stats().consumedFrames < 240 && Date.now() - t0 < 3000) await sleep(10);
    expect(p.stats().consumedFrames).toBe(240);
    await s.close();
  });

  it('on PipeWire each Write tells the stream when the next one is due, from now', () => {
    const { s, p } = openSpeaker();
    const dues = spyDues(p);
    s.write(1n, new Uint8Array(480 * 4)); // 10 ms of audio: the next Write is due 10 ms from now
    expect(dues[0]).toBeGreaterThan(9e6);
    expect(dues[0]).toBeLessThanOrEqual(10e6);
    void s.close();
  });

  it('an explicit --audio-latency Writes without a schedule (the plain threshold applies)', () => {
    const { s, p } = openSpeaker(20);
    const dues = spyDues(p);
    s.write(1n, new Uint8Array(480 * 4));
    expect(dues).toEqual([undefined]);
    void s.close();
  });

  it('lateness seen while a voice plays raises its threshold for the next prebuffer', () => {
    const { s, p } = openSpeaker();
    writeLateBlock(s);
    const set = p.startFramesSet;
    expect(set).toHaveLength(1);
    expect(set[0]).toBeGreaterThanOrEqual(Math.round(0.042 * 48000));
    // At most the cap (MAX_LATENESS_MS + the loop margin): a loaded host may stretch the 40 ms.
    expect(set[0]).toBeLessThanOrEqual(Math.round(0.122 * 48000));
    void s.close();
  });

  it('with an explicit --audio-latency the threshold stays what it was when the voice opened', () => {
    const { s, p } = openSpeaker(20);
    writeLateBlock(s);
    expect(p.startFramesSet).toEqual([]);
    void s.close();
  });
});

describe('OutVoice timers never throw into the event loop', () => {
  it('an exception in the poll timer: counted, told once, the voice keeps polling and playing', async () => {
    const backend = fakeBackend();
    const warnings: string[] = [];
    const log = { warn: (m: string) => warnings.push(m), info: () => undefined, error: (m: string) => warnings.push(m), debug: () => undefined, child: () => log };
    const s = new Speaker({ vmName: 'v', backend, pollMs: 5, log });
    s.init(1n, S16);
    // Whatever poll() meets (a native call throwing, a policy bug): it runs on a timer.
    const voice = s.voice(1n)!;
    (voice as unknown as { poll(): void }).poll = () => {
      throw new RangeError('poll exploded');
    };
    await sleep(60);
    expect(voice.stats().timerErrors).toBeGreaterThanOrEqual(2);
    expect(warnings).toEqual(['audio voice: poll exploded']);
    s.write(1n, new Uint8Array(4096));
    expect(voice.stats().writtenFrames).toBe(1024);
    await s.close();
  });
});

describe('OutVoice when the sink takes less than QEMU sends', () => {
  /**
   * A Speaker whose stream reports 0 frames queued through the settling time after a start
   * (2 s of polls every 5 ms), then `fillFrames` (a sink fallen behind QEMU's clock).
   */
  async function behindBy(fillFrames: number, learnMs = 2300): Promise<{ s: Speaker; seen: Uint8Array[] }> {
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend, pollMs: 5 });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    const p = backend.opened[0];
    const stats = p.stats.bind(p);
    let fill = 0;
    p.stats = () => ({ ...stats(), state: 'streaming', fillFrames: fill, ringFillFrames: fill });
    await sleep(learnMs);
    fill = fillFrames;
    await sleep(30); // a few polls
    return { s, seen: spyWrites(p) };
  }

  it('a ring a second above what it needs: a Write of digital silence is not queued, and is counted', async () => {
    const { s, seen } = await behindBy(48000);
    s.write(1n, s16Block(480, 0));
    expect(seen).toHaveLength(0);
    expect(s.voice(1n)!.stats().silenceSkippedFrames).toBe(480);
    expect(s.voice(1n)!.stats().writtenFrames).toBe(480);
    await s.close();
  });

  it('a ring a second above what it needs: a Write with sound in it is queued whole', async () => {
    const { s, seen } = await behindBy(48000);
    const block = s16Block(480, 0);
    block[958] = 1; // one sample of the 960 is 1 LSB
    s.write(1n, block);
    expect(seen).toEqual([block]);
    expect(s.voice(1n)!.stats().silenceSkippedFrames).toBe(0);
    await s.close();
  });

  it('a ring at its level: silence is queued like any audio', async () => {
    const { s, seen } = await behindBy(0);
    s.write(1n, s16Block(480, 0));
    expect(seen).toEqual([s16Block(480, 0)]);
    expect(s.voice(1n)!.stats().silenceSkippedFrames).toBe(0);
    await s.close();
  });

  it('in the first 2 s after enabling (the level may still overshoot), silence is queued however full the ring', async () => {
    const { s, seen } = await behindBy(48000, 0);
    s.write(1n, s16Block(480, 0));
    expect(seen).toEqual([s16Block(480, 0)]);
    expect(s.voice(1n)!.stats().silenceSkippedFrames).toBe(0);
    await s.close();
  });
});

describe('OutVoice polls from the Writes while they flow (issue 17: CPU of ten bridges)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('while Writes come every 10 ms, one of them polls every 50 ms and the timer wakes twice a second; it polls again when they stop', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const backend = fakeBackend();
    const s = new Speaker({ vmName: 'v', backend, pollMs: 50 });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    const p = backend.opened[0];
    let inWrite = false;
    const polls = { fromWrites: 0, fromTimer: 0 };
    const stats = p.stats.bind(p);
    p.stats = () => {
      if (inWrite) polls.fromWrites++;
      else polls.fromTimer++;
      return stats();
    };
    const block = new Uint8Array(480 * 4);
    // Every timer wakeup of the voice re-arms its timer: counting the arming counts the wakeups.
    const arming = vi.spyOn(globalThis, 'setTimeout');
    for (let i = 0; i < 100; i++) {
      inWrite = true;
      s.write(1n, block);
      inWrite = false;
      vi.advanceTimersByTime(10);
    }
    // One second of Writes: a poll every 50 ms (at 0, 50, ... 950 ms), none from the timer,
    // which woke twice (at 50 and 550 ms) to see that the Writes still come.
    expect(polls).toEqual({ fromWrites: 20, fromTimer: 0 });
    expect(arming).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(100); // the guest stopped sending: the timer polls again
    expect(polls).toEqual({ fromWrites: 20, fromTimer: 2 });
    void s.close();
  });
});

describe('smoothFill: the fill drift control sees, free of the graph quantum step', () => {
  const st = { fillFrames: 992, nowNs: 5_010_000_000, timeNs: 5_000_000_000 } as NativePlaybackStats;

  it('takes off what the graph used since its last cycle began (10 ms at 48 kHz: 480 frames)', () => {
    expect(smoothFill(st, 48000)).toBe(512);
  });

  it('returns the fill as is without a cycle time (PulseAudio), or a cycle more than 100 ms old (a stalled graph) or in the future', () => {
    expect(smoothFill({ ...st, timeNs: undefined }, 48000)).toBe(992);
    expect(smoothFill({ ...st, timeNs: st.nowNs - 100_000_001 }, 48000)).toBe(992);
    expect(smoothFill({ ...st, timeNs: st.nowNs + 1 }, 48000)).toBe(992);
  });
});
