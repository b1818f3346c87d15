// Speaker (AudioOutHandler) against a REAL sound server: fed exactly as QEMU 7.2 feeds it,
// captured from the null sink's monitor, analysed. Shared by audio-out-pipewire.test.ts and
// audio-out-pulse.test.ts so both backends meet the same bar.
import { expect, it } from 'vitest';
import type { PlaybackBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import type { AudioServer } from '../harness/audio-tools';
import { channel, dominantFrequency, findDiscontinuities, findSilenceGaps, nonSilentSpan, recordSinkMonitor, rms } from '../harness/audio-capture';
import { TEST_LATENCY_MS, feedTone, pcmFormat, sleep } from './audio-out-helpers';

export interface SpeakerSuiteContext {
  server(): AudioServer;
  backend(): PlaybackBackend;
  /** Properties of the speaker stream as the server lists them (pw-dump node / pactl sink-input). */
  streamProps(nodeName: string): Promise<Record<string, unknown>>;
  expectedProps(vm: string): Record<string, string>;
  /** Creates another null sink named `name` on the server (for the --audio-sink test). */
  addSink(name: string): Promise<void>;
}

export function speakerSuite(ctx: SpeakerSuiteContext): void {
  it('plays a guest tone with the right frequency and full duration, tail included, without discontinuity', async () => {
    const speaker = new Speaker({ vmName: 'tone vm', backend: ctx.backend(), latencyMs: TEST_LATENCY_MS });
    const rec = recordSinkMonitor(ctx.server());
    await rec.ready;
    const fmt = pcmFormat({ bits: 16, freq: 44100 });
    speaker.init(1n, fmt);
    speaker.setEnabled(1n, true);
    const props = await ctx.streamProps('qemu-tone-vm-speaker');
    expect(props).toMatchObject(ctx.expectedProps('tone vm'));
    const sent = await feedTone(speaker, { id: 1n, format: fmt, seconds: 1.5, freq: 997, amplitude: 0.5 });
    expect(sent % 1024).not.toBe(0); // the last block is partial: it must still be heard
    const voiceStats = speaker.voice(1n)!.stats();
    speaker.setEnabled(1n, false);
    speaker.fini(1n);
    await speaker.idle();
    await sleep(300);
    const r = await rec.stop();
    const left = channel(r.samples, 2, 0);
    const span = nonSilentSpan(left, 0.01);
    expect(span, 'nothing was captured').not.toBeNull();
    const seconds = (span!.endFrame - span!.startFrame) / r.rate;
    const gaps = findSilenceGaps(left, r.rate);
    const disc = findDiscontinuities(left, r.rate, 997);
    const why = `captured ${seconds} s, gaps ${JSON.stringify(gaps)}, discontinuities ${JSON.stringify(disc)}, voice ${JSON.stringify(voiceStats)}`;
    // 66150 frames at 44.1 kHz = 1.5 s; allow 1 ms for the resampler's edges.
    expect(Math.abs(seconds - sent / 44100), why).toBeLessThan(0.001);
    expect(dominantFrequency(left, r.rate)).toBeCloseTo(997, 0);
    expect(disc, why).toEqual([]);
    expect(gaps, why).toEqual([]);
    expect(voiceStats.underruns, why).toBe(0);
    await speaker.close();
  });

  it('a sound shorter than the start threshold is heard when the guest stops it, then the stream corks', async () => {
    // Default policy (no --audio-latency). The tail of a sound after an underrun or an uncork is
    // such a sound: it used to wait in the ring for the next one (seen on QEMU 10.0: 960 frames).
    const speaker = new Speaker({ vmName: 'tail', backend: ctx.backend(), pollMs: 10 });
    const rec = recordSinkMonitor(ctx.server());
    await rec.ready;
    const fmt = pcmFormat({ bits: 16, freq: 44100 });
    speaker.init(5n, fmt);
    speaker.setEnabled(5n, true);
    const frames = 441; // 10 ms, below the threshold on either server
    const pcm = new Int16Array(frames * 2);
    for (let i = 0; i < frames; i++) pcm[2 * i] = pcm[2 * i + 1] = Math.round(16000 * Math.sin((2 * Math.PI * 997 * i) / 44100));
    speaker.write(5n, new Uint8Array(pcm.buffer));
    await sleep(200);
    const voice = speaker.voice(5n)!;
    // Still queued (PulseAudio: in the server's buffer, which fillFrames counts).
    const waiting = voice.nativeStats()!.fillFrames;
    speaker.setEnabled(5n, false);
    const t0 = Date.now();
    while (voice.nativeStats()?.state !== 'paused' && Date.now() - t0 < 5000) await sleep(10);
    const st = voice.nativeStats()!;
    await sleep(300);
    const r = await rec.stop();
    const span = nonSilentSpan(channel(r.samples, 2, 0), 0.01);
    const why = `queued before the stop ${waiting}, stats ${JSON.stringify(st)}, span ${JSON.stringify(span)}`;
    expect(waiting, why).toBe(frames); // below the threshold: the stream waited
    expect(st.fillFrames, why).toBe(0);
    expect(st.state, why).toBe('paused');
    expect(span, why).not.toBeNull();
    // Heard whole (1 ms for the resampler's edges).
    expect(Math.abs((span!.endFrame - span!.startFrame) / r.rate - frames / 44100), why).toBeLessThan(0.001);
    await speaker.close();
  });

  it('mute -> silence captured while the stream runs', async () => {
    const speaker = new Speaker({ vmName: 'mute', backend: ctx.backend(), latencyMs: TEST_LATENCY_MS });
    const rec = recordSinkMonitor(ctx.server());
    await rec.ready;
    const fmt = pcmFormat({ bits: 16, freq: 48000 });
    speaker.init(2n, fmt);
    speaker.setEnabled(2n, true);
    speaker.setVolume(2n, true, new Uint8Array([255, 255]));
    await feedTone(speaker, { id: 2n, format: fmt, seconds: 1, freq: 997, amplitude: 0.5 });
    const consumed = speaker.voice(2n)!.nativeStats()!.consumedFrames;
    speaker.fini(2n);
    await speaker.idle();
    const r = await rec.stop();
    expect(consumed).toBeGreaterThan(40000);
    expect(r.frames).toBeGreaterThan(24000);
    expect(rms(r.samples)).toBeLessThan(1e-4);
  });

  it('volume 128/255 lowers the level to 128/255 (-6 dB)', async () => {
    const speaker = new Speaker({ vmName: 'vol', backend: ctx.backend(), latencyMs: TEST_LATENCY_MS });
    const rec = recordSinkMonitor(ctx.server());
    await rec.ready;
    const fmt = pcmFormat({ bits: 16, freq: 48000 });
    speaker.init(3n, fmt);
    speaker.setEnabled(3n, true);
    speaker.setVolume(3n, false, new Uint8Array([255, 255]));
    const feeding = feedTone(speaker, { id: 3n, format: fmt, seconds: 2, freq: 997, amplitude: 0.5 });
    await sleep(1000);
    speaker.setVolume(3n, false, new Uint8Array([128, 128]));
    await feeding;
    speaker.fini(3n);
    await speaker.idle();
    const r = await rec.stop();
    const left = channel(r.samples, 2, 0);
    const span = nonSilentSpan(left, 0.01);
    expect(span, 'nothing was captured').not.toBeNull();
    // Windows well inside each half (the change lands within ~100 ms of the 1 s mark).
    const at = (s: number): number => span!.startFrame + Math.round(s * r.rate);
    const loud = rms(left.subarray(at(0.2), at(0.7)));
    const soft = rms(left.subarray(at(1.4), at(1.9)));
    expect(loud).toBeGreaterThan(0.3);
    expect(soft / loud).toBeGreaterThan(128 / 255 - 0.02);
    expect(soft / loud).toBeLessThan(128 / 255 + 0.02);
  });

  it('plays to the sink asked for (--audio-sink), not the default', async () => {
    await ctx.addSink('other-sink');
    const speaker = new Speaker({ vmName: 'target', backend: ctx.backend(), latencyMs: TEST_LATENCY_MS, sink: 'other-sink' });
    const onOther = recordSinkMonitor(ctx.server(), { sink: 'other-sink' });
    const onDefault = recordSinkMonitor(ctx.server());
    await Promise.all([onOther.ready, onDefault.ready]);
    const fmt = pcmFormat({ bits: 16, freq: 48000 });
    speaker.init(4n, fmt);
    speaker.setEnabled(4n, true);
    await feedTone(speaker, { id: 4n, format: fmt, seconds: 1, freq: 997, amplitude: 0.5 });
    speaker.fini(4n);
    await speaker.idle();
    const [other, dflt] = await Promise.all([onOther.stop(), onDefault.stop()]);
    expect(rms(channel(other.samples, 2, 0))).toBeGreaterThan(0.1);
    expect(dominantFrequency(channel(other.samples, 2, 0), other.rate)).toBeCloseTo(997, 0);
    expect(rms(dflt.samples)).toBeLessThan(1e-4);
  });
}
