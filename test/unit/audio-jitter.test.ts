// WriteJitter (how late QEMU's Writes come, learned across voices) and the Speaker's use of it and
// of the block size it sees: the prebuffer of a NEW voice covers both (src/audio/out/jitter.ts).
import { describe, expect, it } from 'vitest';
import type { PlaybackBackend } from '../../src/audio/backend';
import { FakePlayback } from '../../src/audio/out/fake-playback';
import { WriteJitter } from '../../src/audio/out/jitter';
import { Speaker } from '../../src/audio/out/speaker';
import type { NativePlaybackOptions } from '../../src/native-api/audio';
import type { PcmFormat } from '../../src/qemu/handlers';

const S16: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: 48000, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: 192000, bigEndian: false };

function fakeBackend(): PlaybackBackend & { opened: FakePlayback[] } {
  const b = {
    kind: 'pipewire' as const,
    where: '/fake/pipewire-0',
    opened: [] as FakePlayback[],
    openPlayback(o: NativePlaybackOptions): FakePlayback {
      const p = new FakePlayback(o, 5);
      b.opened.push(p);
      return p;
    },
  };
  return b;
}

describe('WriteJitter', () => {
  it('Writes exactly on time are not late', () => {
    const j = new WriteJitter();
    for (let i = 0; i < 100; i++) j.note(10, i * 10);
    expect(j.lateMs(1000)).toBe(0);
  });

  it('timer jitter counts from the earliest Write: every other one 3 ms early is 3 ms of lateness', () => {
    const j = new WriteJitter();
    for (let i = 0; i < 100; i++) j.note(10, i * 10 + (i % 2 ? -3 : 0));
    expect(j.lateMs(1000)).toBeCloseTo(3, 1);
  });

  it('a stall followed by a burst counts as late by the stall minus the audio already received', () => {
    const j = new WriteJitter();
    for (let i = 0; i < 6; i++) j.note(10, i * 10); // 60 ms of audio by t = 50
    for (let i = 0; i < 5; i++) j.note(10, 104); // 54 ms pause, then the catch-up burst
    expect(j.lateMs(104)).toBeCloseTo(44, 6); // the 7th block was due at 60, came at 104
  });

  it('a pause longer than runGapMs starts a new run instead of counting as late', () => {
    const j = new WriteJitter({ runGapMs: 250 });
    j.note(10, 0);
    j.note(10, 5000);
    j.note(10, 5010);
    expect(j.lateMs(5010)).toBe(0);
  });

  it('the remembered lateness halves every halfLifeMs and is capped at maxMs', () => {
    const j = new WriteJitter({ halfLifeMs: 1000, maxMs: 120 });
    j.note(10, 0);
    j.note(10, 200); // 190 ms late, capped
    expect(j.lateMs(200)).toBe(120);
    expect(j.lateMs(1200)).toBeCloseTo(60, 6);
  });
});

describe('Speaker prebuffer', () => {
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
});
