// Guest speaker -> Speaker handler -> REAL PipeWire (private daemon + WirePlumber, null sink
// vm-sink) -> monitor capture with pw-record -> analysis. Blocks are fed exactly as QEMU 7.2
// sends them (see audio-out-helpers.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectAudioBackend, PlaybackBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import { startPipeWire, PipeWire } from '../harness/pipewire';
import { channel, dominantFrequency, findDiscontinuities, findSilenceGaps, nonSilentSpan, recordSinkMonitor, rms } from '../harness/audio-capture';
import { feedTone, pcmFormat, sleep } from './audio-out-helpers';

let pw: PipeWire;
let backend: PlaybackBackend;

beforeAll(async () => {
  pw = await startPipeWire();
  const b = await selectAudioBackend('auto', { env: pw.env });
  if (!b) throw new Error('no backend');
  backend = b;
});
afterAll(async () => {
  await pw?.stop();
});

describe('speaker on PipeWire', () => {
  it('auto picks PipeWire when its socket answers', () => {
    expect(backend.kind).toBe('pipewire');
    expect(backend.where).toBe(pw.socketPath);
  });

  it('plays a guest tone with the right frequency and full duration, tail included, without discontinuity', async () => {
    const speaker = new Speaker({ vmName: 'tone vm', backend });
    const rec = recordSinkMonitor(pw);
    await rec.ready;
    const fmt = pcmFormat({ bits: 16, freq: 44100 });
    speaker.init(1n, fmt);
    speaker.setEnabled(1n, true);
    // The stream's identity as pavucontrol/Helvum show it.
    const node = await pw.waitForNode('qemu-tone-vm-speaker');
    expect(node.info?.props).toMatchObject({ 'application.name': 'QEMU tone vm', 'node.description': 'tone vm speaker', 'media.role': 'Game', 'application.icon-name': 'qemu' });
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
    expect(span).not.toBeNull();
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

  it('mute -> silence captured; the stream still runs', async () => {
    const speaker = new Speaker({ vmName: 'mute', backend });
    const rec = recordSinkMonitor(pw);
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
    expect(rms(r.samples)).toBeLessThan(1e-4);
  });

  it('volume 50 % (128/255) lowers the level by 128/255 (-6 dB)', async () => {
    const speaker = new Speaker({ vmName: 'vol', backend });
    const rec = recordSinkMonitor(pw);
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
    const span = nonSilentSpan(left, 0.01)!;
    // Windows well inside each half (the change lands within ~100 ms of the 1 s mark).
    const at = (s: number): number => span.startFrame + Math.round(s * r.rate);
    const loud = rms(left.subarray(at(0.2), at(0.7)));
    const soft = rms(left.subarray(at(1.4), at(1.9)));
    expect(loud).toBeGreaterThan(0.3);
    expect(soft / loud).toBeGreaterThan(128 / 255 - 0.02);
    expect(soft / loud).toBeLessThan(128 / 255 + 0.02);
  });
});
