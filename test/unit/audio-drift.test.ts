// DriftController against a simulated QEMU producer (1024-frame Writes on a 10 ms timer, its
// clock off by ±0.3 %) and a simulated sink pulling one graph quantum at a time.
import { describe, expect, it } from 'vitest';
import { DriftController } from '../../src/audio/drift';

interface SimResult {
  minFillAfterStart: number;
  maxFill: number;
  underruns: number;
  meanFillLast10s: number;
  meanRatioLast10s: number;
  learnedTarget: number;
}

function simulate(opts: { drift: number; seconds: number; control: boolean; rate?: number }): SimResult {
  const rate = opts.rate ?? 44100;
  const block = 1024;
  const graphRate = 48000;
  const quantum = 1024;
  // As OutVoice: playback starts at latency + one block; the floor the controller may settle
  // at is latency + half a block (the polled fill is a sawtooth one block tall).
  const start = Math.round(0.02 * rate) + block;
  const ctl = new DriftController({ rate, targetFrames: start - block / 2 });
  let fill = 0;
  let produced = 0; // fractional frames accumulated by QEMU's rate limiter
  let pendingBlockFrames = 0;
  let consumerAcc = 0;
  let playing = false;
  let ratio = 1;
  let underruns = 0;
  let minFill = Infinity;
  let maxFill = 0;
  let lastSum = 0;
  let lastN = 0;
  let ratioSum = 0;
  const quantumMs = (quantum / graphRate) * 1000;
  // JS timers do not fire in phase with QEMU's 10 ms ticks: poll at pseudo-random offsets.
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  let nextPoll = 100;
  let nextQuantum = quantumMs;
  for (let ms = 1; ms <= opts.seconds * 1000; ms++) {
    // QEMU: every 10 ms tick, its clock (off by drift) allows more frames; full blocks are written.
    if (ms % 10 === 0) {
      produced += (10 / 1000) * rate * (1 + opts.drift);
      pendingBlockFrames += Math.floor(produced);
      produced -= Math.floor(produced);
      while (pendingBlockFrames >= block) {
        pendingBlockFrames -= block;
        fill += block;
      }
    }
    // Sink: one quantum of graph time consumes quantum*rate/graphRate stream frames, scaled by ratio.
    if (ms >= nextQuantum) {
      nextQuantum += quantumMs;
      if (!playing && fill >= start) playing = true;
      if (playing) {
        consumerAcc += (quantum * rate * ratio) / graphRate;
        const want = Math.floor(consumerAcc);
        consumerAcc -= want;
        if (fill < want) {
          underruns++;
          fill = 0;
          playing = false;
        } else fill -= want;
        minFill = Math.min(minFill, fill);
      }
    }
    maxFill = Math.max(maxFill, fill);
    if (ms >= nextPoll) {
      nextPoll = ms + 80 + Math.floor(rand() * 40);
      if (playing && opts.control) ratio = ctl.update(fill, ms);
    }
    if (ms > (opts.seconds - 10) * 1000) {
      lastSum += fill;
      ratioSum += ratio;
      lastN++;
    }
  }
  return { minFillAfterStart: minFill, maxFill, underruns, meanFillLast10s: lastSum / lastN, meanRatioLast10s: ratioSum / lastN, learnedTarget: ctl.targetFrames };
}

describe('DriftController', () => {
  for (const drift of [0.003, -0.003]) {
    it(`holds the fill near the target with QEMU ${drift > 0 ? 'fast' : 'slow'} by 0.3 % for 60 s, no underrun`, () => {
      const r = simulate({ drift, seconds: 60, control: true });
      const target = r.learnedTarget;
      expect(r.underruns).toBe(0);
      // The learned target is the level the stream started at: start threshold .. + one block.
      expect(target).toBeGreaterThan(Math.round(0.02 * 44100));
      expect(target).toBeLessThan(Math.round(0.02 * 44100) + 2 * 1024);
      // Mean fill within the 8 ms deadband (+5 ms) of the target once settled; bounded overall.
      expect(Math.abs(r.meanFillLast10s - target)).toBeLessThan(0.013 * 44100);
      expect(r.maxFill).toBeLessThan(target + 2 * 1024 + 0.02 * 44100);
      // The steady ratio compensates the drift (consumer speeds up when QEMU is fast).
      expect(Math.abs(r.meanRatioLast10s - 1 - drift)).toBeLessThan(0.0005);
    });
  }

  it('without control the same drift makes the fill grow (fast) or underrun (slow): the simulation can fail', () => {
    const fast = simulate({ drift: 0.003, seconds: 60, control: false });
    expect(fast.meanFillLast10s - (Math.round(0.02 * 44100) + 1024)).toBeGreaterThan(0.1 * 44100);
    const slow = simulate({ drift: -0.003, seconds: 60, control: false });
    expect(slow.underruns).toBeGreaterThan(0);
  });

  it('clamps the ratio and resets', () => {
    const c = new DriftController({ rate: 48000, targetFrames: 1000, maxAdjust: 0.002, deadbandS: 0, learnS: 0 });
    c.update(1000, 0);
    let r = 1;
    for (let t = 100; t < 5000; t += 100) r = c.update(48000, t);
    expect(r).toBeCloseTo(1.002, 6);
    for (let t = 5000; t < 10000; t += 100) r = c.update(0, t);
    expect(r).toBeCloseTo(0.998, 6);
    c.reset();
    expect(c.ratio).toBe(1);
    expect(c.averageFill).toBeUndefined();
  });

  it('keeps the ratio within 0.05 % of 1 with equal clocks (a 1.5 s clip changes by < 0.75 ms)', () => {
    const r = simulate({ drift: 0, seconds: 20, control: true });
    expect(Math.abs(r.meanRatioLast10s - 1)).toBeLessThan(5e-4);
    expect(r.underruns).toBe(0);
  });

  it('ignores history across a long gap', () => {
    const c = new DriftController({ rate: 48000, targetFrames: 1000 });
    c.update(1000, 0);
    c.update(1000, 100);
    c.update(40000, 10_000);
    expect(c.averageFill).toBe(40000);
  });

  it('rejects nonsense options', () => {
    expect(() => new DriftController({ rate: 0, targetFrames: 10 })).toThrow(RangeError);
  });
});
