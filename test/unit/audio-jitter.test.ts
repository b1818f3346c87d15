// The Speaker's WriteJitter: how late QEMU's Writes come, learned across voices
// (native/write_jitter.h), driven here through the speaker core's one Write path on the test's own
// clock. A voice at 1000 Hz mono S16 makes a frame a millisecond: a Write of `ms` frames carries
// `ms` of audio. The Speaker's use of it is in audio-speaker.test.ts.
import { describe, expect, it } from 'vitest';
import type { NativeSpeakerCore } from '../../src/native-api/audio';
import { openSpeakerCore } from '../fakes/playback';

const T0 = 1_000_000; // the clock passed must be positive: every time below is T0 + ms

/** A core with voice 1 (no stream: Writes are counted and dropped, the jitter notes them all). */
function jitter(o: { runGapMs?: number; halfLifeMs?: number; maxMs?: number } = {}): { note(ms: number, at: number): void; lateMs(at: number): number; nextDueMs(): number | undefined } {
  const core: NativeSpeakerCore = openSpeakerCore({ runGapMs: o.runGapMs ?? 250, halfLifeMs: o.halfLifeMs ?? 600_000, maxMs: o.maxMs ?? 120 });
  core.addVoice(1n, { format: 'S16LE', channels: 1, rate: 1000, convert: false, scheduled: true });
  let last = T0;
  return {
    note: (ms, at) => {
      last = T0 + at;
      core.write(1n, new Uint8Array(ms * 2), last);
    },
    lateMs: (at) => core.jitter(T0 + at).lateMs,
    nextDueMs: () => {
      const d = core.jitter(last).nextDueMs;
      return d === undefined ? undefined : d - T0;
    },
  };
}

describe('WriteJitter (native, through SpeakerCore.write)', () => {
  it('Writes exactly on time are not late', () => {
    const j = jitter();
    for (let i = 0; i < 100; i++) j.note(10, i * 10);
    expect(j.lateMs(1000)).toBe(0);
  });

  it('timer jitter counts from the earliest Write: every other one 3 ms early is 3 ms of lateness', () => {
    const j = jitter();
    for (let i = 0; i < 100; i++) j.note(10, i * 10 + (i % 2 ? -3 : 0));
    expect(j.lateMs(1000)).toBeCloseTo(3, 1);
  });

  it('a stall followed by a burst counts as late by the stall minus the audio already received', () => {
    const j = jitter();
    for (let i = 0; i < 6; i++) j.note(10, i * 10); // 60 ms of audio by t = 50
    for (let i = 0; i < 5; i++) j.note(10, 104); // 54 ms pause, then the catch-up burst
    expect(j.lateMs(104)).toBeCloseTo(44, 6); // the 7th block was due at 60, came at 104
  });

  it('a pause longer than runGapMs starts a new run instead of counting as late', () => {
    const j = jitter({ runGapMs: 250 });
    j.note(10, 0);
    j.note(10, 5000);
    j.note(10, 5010);
    expect(j.lateMs(5010)).toBe(0);
  });

  it('the remembered lateness halves every halfLifeMs and is capped at maxMs', () => {
    const j = jitter({ halfLifeMs: 1000, maxMs: 120 });
    j.note(10, 0);
    j.note(10, 200); // 190 ms late, capped
    expect(j.lateMs(200)).toBe(120);
    expect(j.lateMs(1200)).toBeCloseTo(60, 6);
  });

  it('no Write yet: no schedule', () => {
    expect(jitter().nextDueMs()).toBeUndefined();
  });

  it('the next Write is due when the audio received so far runs out, from the earliest-anchored start', () => {
    const j = jitter();
    j.note(23, 100);
    j.note(23, 130); // 7 ms late: the schedule keeps its origin
    expect(j.nextDueMs()).toBe(146);
  });

  it('an early Write moves the schedule earlier (it is never later than a Write came)', () => {
    const j = jitter();
    j.note(10, 100);
    j.note(10, 105); // 5 ms early
    expect(j.nextDueMs()).toBe(115);
  });

  it('a new run after a pause starts its schedule at its first Write', () => {
    const j = jitter({ runGapMs: 250 });
    j.note(10, 0);
    j.note(10, 1000);
    expect(j.nextDueMs()).toBe(1010);
  });
});
