// The audio-e2e bench's timing (test/harness/onset.ts) on synthetic captures whose true timing is
// known: a frame is timed from the chunk holding it (delivery delay only ever makes it later),
// skipped graph cycles elsewhere in the capture do not move it, onsets need quiet before them, and
// markers pair with the onset that follows them.
import { describe, expect, it } from 'vitest';
import { findOnsets, frameTimeMs, matchOnsets, type StampedLine, type TimedRecording } from '../harness/onset';

const RATE = 48000;
const Q = 256;
const msOf = (frames: number): number => (frames * 1000) / RATE;

/**
 * A capture of `cycles` graph cycles starting at t=1000 ms: cycle c begins at 1000 + c*Q/rate ms
 * plus the time lost in the driver's skips before it, and its chunk arrives `delay(c)` ms later.
 */
function capture(cycles: number, o: { delay?: (c: number) => number; skipMsBefore?: Record<number, number> } = {}): TimedRecording {
  const chunks: TimedRecording['chunks'] = [];
  let lost = 0;
  for (let c = 0; c < cycles; c++) {
    lost += o.skipMsBefore?.[c] ?? 0;
    const start = 1000 + msOf(c * Q) + lost;
    chunks.push({ atMs: start + (o.delay?.(c) ?? 0), endFrame: (c + 1) * Q });
  }
  return { rate: RATE, quantum: Q, left: new Int16Array(cycles * Q), chunks };
}

describe('frameTimeMs', () => {
  it('times a frame at the start of its graph cycle plus its offset in the quantum', () => {
    const rec = capture(100);
    // frame 10*Q + 100 is in cycle 10, 100 frames in
    expect(frameTimeMs(rec, 10 * Q + 100)).toBeCloseTo(1000 + msOf(10 * Q) + msOf(100), 9);
  });

  it('takes the fastest delivered chunk among those holding the frame or following it', () => {
    // cycle 10 (holding the frame) arrives 3 ms late, cycle 12 only 0.1 ms late
    const rec = capture(100, { delay: (c) => (c === 12 ? 0.1 : 3) });
    expect(frameTimeMs(rec, 10 * Q)).toBeCloseTo(1000 + msOf(10 * Q) + 0.1, 9);
  });

  it('is not moved early by cycles the driver skipped before the frame', () => {
    // 50 ms lost before cycle 40: a global estimate from the earlier chunks would be 50 ms early
    const rec = capture(100, { skipMsBefore: { 40: 50 } });
    expect(frameTimeMs(rec, 60 * Q)).toBeCloseTo(1000 + msOf(60 * Q) + 50, 9);
  });

  it('is late by at most the skips right after the frame when every chunk is delayed', () => {
    const rec = capture(100, { delay: () => 1, skipMsBefore: { 11: 20 } });
    // the chunk holding the frame (cycle 10) is the best one: only its delivery delay counts
    expect(frameTimeMs(rec, 10 * Q + 5)).toBeCloseTo(1000 + msOf(10 * Q + 5) + 1, 9);
  });

  it('fails with ENOCHUNK for a frame past the end of the capture', () => {
    const rec = capture(10);
    expect(() => frameTimeMs(rec, 10 * Q)).toThrow(expect.objectContaining({ code: 'ENOCHUNK' }));
  });
});

describe('findOnsets', () => {
  it('finds the first loud frame after enough quiet, not a restart after a short gap', () => {
    const rec = capture(200);
    const x = rec.left;
    const loud = (from: number, to: number): void => {
      for (let i = from; i < to; i++) x[i] = 10000;
    };
    loud(4800, 9600); // after 100 ms of quiet
    loud(9600 + 480, 14400); // after a 10 ms gap: part of the same sound
    loud(14400 + 4800, 24000); // after 100 ms of quiet again
    expect(findOnsets(rec, 50)).toEqual([4800, 19200]);
  });

  it('ignores sound below 1 % of full scale', () => {
    const rec = capture(50);
    rec.left.fill(300, 1000, 2000);
    expect(findOnsets(rec, 5)).toEqual([]);
  });
});

describe('matchOnsets', () => {
  const rec = capture(400); // ~2.1 s from t=1000
  const line = (text: string, atMs: number): StampedLine => ({ text, atMs });

  it('pairs each marker with the first onset after it and says which markers had none', () => {
    const onsets = [9600, 48000]; // at 1200 ms and 2000 ms
    const r = matchOnsets([line('burst 0 xruns=0', 1100), line('burst 1 xruns=1', 1900), line('burst 2 xruns=1', 2050)], rec, onsets, 500);
    expect(r.matched.map((m) => [m.burst, m.guestXruns, Math.round(m.latencyMs * 1000) / 1000])).toEqual([
      [0, 0, 100],
      [1, 1, 100],
    ]);
    expect(r.missing).toEqual([2]);
  });

  it('keeps an onset up to 20 ms before its marker (a negative latency shows the clocks are off)', () => {
    const r = matchOnsets([line('burst 0 xruns=0', 1210)], rec, [9600], 500);
    expect(r.matched[0].latencyMs).toBeCloseTo(-10, 9);
  });

  it('skips lines that are not burst markers', () => {
    const r = matchOnsets([line('hello', 1100)], rec, [9600], 500);
    expect(r).toEqual({ matched: [], missing: [] });
  });
});
