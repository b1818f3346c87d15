// The level a scheduled voice holds once playing (src/audio/out/slack.ts): ScheduleSlack alone,
// then an OutVoice on a fake PipeWire stream fed the way QEMU 7.2 paces Writes, on fake clocks.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PlaybackBackend } from '../../src/audio/backend';
import { SLACK_HOLD_OFF_MS, SLACK_STALE_MS, ScheduleSlack } from '../../src/audio/out/slack';
import { Speaker } from '../../src/audio/out/speaker';
import type { NativePlaybackOptions } from '../../src/native-api/audio';
import type { PcmFormat } from '../../src/qemu/handlers';
import { FakePlayback, openSpeakerCore } from '../fakes/playback';

const RATE = 44100;
const BLOCK = 1024;
const S16: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: RATE, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: RATE * 4, bigEndian: false };
const ms = (frames: number): number => (frames / RATE) * 1000;

/** Stats of a stream that played `cycles` graph cycles of `request` frames each. */
const playing = (fillFrames: number, cycles: number, request = 235): { fillFrames: number; consumedFrames: number; cycles: number } => ({ fillFrames, consumedFrames: cycles * request, cycles });

describe('ScheduleSlack', () => {
  it('the slack is the fill projected to when the next Write is due', () => {
    const k = new ScheduleSlack(RATE);
    k.sample(playing(2000, 10), 0, 500);
    k.noteWrite(2010); // next Write due in 10 ms at the next sample
    const x = k.sample(playing(2000, 200), 2000, 500);
    expect(x?.slackFrames).toBeCloseTo(2000 - 441, 6);
  });

  it('the target is the threshold plus half the request learned from the counters', () => {
    const k = new ScheduleSlack(RATE);
    k.sample(playing(2000, 10, 941), 0, 500);
    k.noteWrite(2010);
    expect(k.sample(playing(2000, 200, 941), 2000, 500)?.targetFrames).toBe(500 + 941 / 2);
  });

  it('with a fill smoothed over the graph cycle (no request-tall sawtooth), the target is the threshold itself', () => {
    const k = new ScheduleSlack(RATE);
    k.sample(playing(2000, 10, 941), 0, 500, true);
    k.noteWrite(2010);
    expect(k.sample(playing(2000, 200, 941), 2000, 500, true)?.targetFrames).toBe(500);
  });

  it('nothing while the stream prebuffers (consumes nothing), then a hold-off from when it plays', () => {
    const k = new ScheduleSlack(RATE);
    k.noteWrite(10);
    expect(k.sample({ fillFrames: 3000, consumedFrames: 0, cycles: 5 }, 0, 500)).toBeUndefined();
    expect(k.sample(playing(3000, 6), 50, 500)).toBeUndefined(); // starts playing here
    k.noteWrite(50 + SLACK_HOLD_OFF_MS);
    expect(k.sample(playing(3000, 7), 50 + SLACK_HOLD_OFF_MS - 1, 500)).toBeUndefined();
    expect(k.sample(playing(3000, 8), 50 + SLACK_HOLD_OFF_MS, 500)).toBeDefined();
  });

  it('nothing once the next Write is overdue by more than a run gap (the guest stopped sending)', () => {
    const k = new ScheduleSlack(RATE);
    k.sample(playing(2000, 1), 0, 500);
    k.noteWrite(1000);
    expect(k.sample(playing(2000, 2), 1000 + SLACK_STALE_MS, 500)).toBeDefined();
    expect(k.sample(playing(2000, 3), 1001 + SLACK_STALE_MS, 500)).toBeUndefined();
  });

  it('reset() starts the hold-off over (the stream prebuffers again after an underrun)', () => {
    const k = new ScheduleSlack(RATE);
    k.sample(playing(2000, 1), 0, 500);
    k.noteWrite(2000);
    expect(k.sample(playing(2000, 2), 2000, 500)).toBeDefined();
    k.reset();
    expect(k.sample(playing(2000, 3), 2050, 500)).toBeUndefined();
  });
});

describe('OutVoice on a schedule: the level before each Write is what the threshold asks', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  interface Run {
    /** Fill right before each Write in the last 3 s, frames. */
    levels: number[];
    startFrames: number;
    underruns: number;
    ratios: number[];
  }

  /**
   * QEMU 7.2 pacing on fake clocks: a 10 ms timer, 1024-frame blocks as the clock allows; the
   * first `burst` blocks leave together (a late start: the stream starts with that much queued).
   * QEMU's clock runs `drift` fast (0.003 = 0.3 %).
   */
  async function run(seconds: number, burst: number, drift = 0): Promise<Run> {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'performance'] });
    const opened: FakePlayback[] = [];
    const backend: PlaybackBackend = {
      kind: 'pipewire',
      where: '/fake/pipewire-0',
    openSpeakerCore,
      openPlayback: (o: NativePlaybackOptions) => {
        const p = new FakePlayback(o, 5); // a 5 ms graph cycle: 220 frames per request
        opened.push(p);
        return p;
      },
    };
    const s = new Speaker({ vmName: 'v', backend });
    s.init(1n, S16);
    s.setEnabled(1n, true);
    const p = opened[0];
    const block = new Uint8Array(BLOCK * 4);
    const levels: number[] = [];
    let sent = 0;
    for (let t = 10; t <= seconds * 1000; t += 10) {
      await vi.advanceTimersByTimeAsync(10);
      const allowed = Math.floor((t / 1000) * RATE * (1 + drift));
      if (sent === 0 && allowed < burst * BLOCK) continue;
      while (allowed - sent >= BLOCK) {
        if (t > (seconds - 3) * 1000) levels.push(p.stats().fillFrames);
        s.write(1n, block);
        sent += BLOCK;
      }
    }
    const voice = s.voice(1n)!;
    const r = { levels, startFrames: voice.startFrames, underruns: voice.stats().underruns, ratios: p.rates };
    voice.abort();
    return r;
  }

  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('a start two blocks late is trimmed: the level before a Write comes down to the threshold + one request, minus the tick lateness', async () => {
    const r = await run(15, 3);
    const why = `mean level before a Write ${ms(mean(r.levels)).toFixed(1)} ms, min ${ms(Math.min(...r.levels)).toFixed(1)} ms, threshold ${ms(r.startFrames).toFixed(1)} ms, underruns ${r.underruns}`;
    // Writes leave 0-10 ms after they are due (5 on average): the level before one is the
    // threshold + one request (5 ms) less that, on average; before the trim it was 2 blocks more.
    expect(ms(mean(r.levels)), why).toBeLessThan(ms(r.startFrames) + 5 + 2);
    expect(r.underruns, why).toBe(0);
  });

  it('trims by playing up to 0.5 % faster than the stream rate (inaudible), no more', async () => {
    const r = await run(6, 3);
    expect(Math.max(...r.ratios)).toBeLessThanOrEqual(1.005);
    expect(Math.max(...r.ratios)).toBeGreaterThan(1.004);
  });

  it('a start on time is left alone: the level stays at the threshold, no underrun', async () => {
    const r = await run(15, 1);
    const why = `mean level before a Write ${ms(mean(r.levels)).toFixed(1)} ms, min ${ms(Math.min(...r.levels)).toFixed(1)} ms, threshold ${ms(r.startFrames).toFixed(1)} ms`;
    expect(ms(mean(r.levels)), why).toBeGreaterThan(ms(r.startFrames) - 5);
    expect(ms(Math.min(...r.levels)), why).toBeGreaterThan(0);
    expect(r.underruns, why).toBe(0);
  });

  it("QEMU's clock 0.3 % fast: the schedule re-anchors earlier, and the level stays where the threshold asks", async () => {
    const r = await run(20, 1, 0.003);
    const why = `mean level before a Write ${ms(mean(r.levels)).toFixed(1)} ms, threshold ${ms(r.startFrames).toFixed(1)} ms, underruns ${r.underruns}`;
    // Uncontrolled, 20 s at +0.3 % would add 60 ms.
    expect(ms(mean(r.levels)), why).toBeLessThan(ms(r.startFrames) + 5 + 2);
    expect(r.underruns, why).toBe(0);
  });
});
