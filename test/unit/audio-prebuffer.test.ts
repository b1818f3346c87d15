// The speaker's start threshold (src/audio/out/prebuffer.ts): what it follows and what overrides it.
// Pure: no clock. The stream's side (projecting the fill to the next Write) is in the playback
// contract; the Speaker's use in audio-speaker.test.ts.
import { describe, expect, it } from 'vitest';
import { MAX_BLOCK_FRAMES, MAX_LATENESS_MS, prebufferFor } from '../../src/audio/out/prebuffer';

const ms = (n: number, rate = 44100): number => Math.round((n * rate) / 1000);

describe('prebufferFor', () => {
  it('PipeWire by default: one QEMU timer period plus 2 ms beyond a request, relative to the next Write', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 0, scheduled: true });
    expect(p.scheduled).toBe(true);
    expect(p.startFrames).toBe(ms(12));
  });

  it('the threshold does not depend on the block when it follows the schedule (7.2 and 10.0 alike)', () => {
    const a = prebufferFor({ rate: 48000, blockFrames: 1024, jitterMs: 0, scheduled: true });
    const b = prebufferFor({ rate: 48000, blockFrames: 480, jitterMs: 0, scheduled: true });
    expect(b.startFrames).toBe(a.startFrames);
  });

  it('lateness measured beyond the timer period replaces it', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 30, scheduled: true });
    expect(p.startFrames).toBe(ms(32));
  });

  it('lateness below the timer period leaves the timer period', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 4, scheduled: true });
    expect(p.startFrames).toBe(ms(12));
  });

  it('the status target is the fill right after a Write: threshold plus one block', () => {
    const p = prebufferFor({ rate: 48000, blockFrames: 480, jitterMs: 0, scheduled: true });
    expect(p.targetFrames).toBe(ms(12, 48000) + 480);
  });

  it('an explicit --audio-latency overrides: latency + one block + lateness, no schedule', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 5, latencyMs: 30, scheduled: true });
    expect(p.scheduled).toBe(false);
    expect(p.startFrames).toBe(ms(30) + 1024 + ms(5));
    expect(p.latencyFrames).toBe(ms(30));
  });

  it('PulseAudio (no schedule) keeps the 20 ms default on top of one block and the lateness', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 5, scheduled: false });
    expect(p.scheduled).toBe(false);
    expect(p.startFrames).toBe(ms(20) + 1024 + ms(5));
  });

  it('lateness is covered up to MAX_LATENESS_MS, no more', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 10_000, scheduled: true });
    expect(p.startFrames).toBe(ms(MAX_LATENESS_MS + 2));
  });

  it('with an explicit --audio-latency (a fixed threshold) the ring holds that threshold, one more block and 250 ms', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 5, latencyMs: 30, scheduled: true });
    expect(p.ringFrames).toBe(p.startFrames + 1024 + ms(250));
  });

  it('an absurd block size (guest-untrusted) is capped, so the ring stays bounded', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1e9, jitterMs: 0, scheduled: false });
    expect(p.blockFrames).toBe(MAX_BLOCK_FRAMES);
    expect(p.ringFrames).toBe(ms(20) + 2 * MAX_BLOCK_FRAMES + ms(MAX_LATENESS_MS) + ms(250));
  });

  it('the ring holds the largest threshold lateness can raise, a request, one more block and 250 ms of excess', () => {
    const p = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 0, scheduled: true });
    expect(p.ringFrames).toBe(ms(MAX_LATENESS_MS + 2) + ms(20) + 1024 + 1024 + ms(250));
  });

  it('the ring does not depend on the lateness seen when the voice opened', () => {
    const calm = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 0, scheduled: false });
    const late = prebufferFor({ rate: 44100, blockFrames: 1024, jitterMs: 80, scheduled: false });
    expect(late.ringFrames).toBe(calm.ringFrames);
  });
});
