// Format matrix: every sample format QEMU can announce (U8/S8/S16/U16/S32/F32, both byte
// orders), 1/2/6 channels, 44.1 and 48 kHz, fed straight into the Speaker (as the D-Bus layer
// would deliver Init + Write) and captured from the REAL servers' null-sink monitor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectAudioBackend, PlaybackBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import type { AudioServer } from '../harness/audio-tools';
import { channel, dominantFrequency, findDiscontinuities, findSilenceGaps, nonSilentSpan, recordSinkMonitor } from '../harness/audio-capture';
import { startPipeWire, PipeWire } from '../harness/pipewire';
import { startPulseAudio, Pulse } from '../harness/pulseaudio';
import { TEST_LATENCY_MS, feedTone, pcmFormat } from './audio-out-helpers';

interface Case {
  name: string;
  bits: 8 | 16 | 32;
  isSigned: boolean;
  isFloat?: boolean;
  bigEndian?: boolean;
  nchannels: number;
  freq: number;
}

const CASES: Case[] = [
  { name: 'U8 mono 44.1k', bits: 8, isSigned: false, nchannels: 1, freq: 44100 },
  { name: 'S8 stereo 48k', bits: 8, isSigned: true, nchannels: 2, freq: 48000 },
  { name: 'S16LE stereo 48k', bits: 16, isSigned: true, nchannels: 2, freq: 48000 },
  { name: 'S16BE stereo 44.1k', bits: 16, isSigned: true, bigEndian: true, nchannels: 2, freq: 44100 },
  { name: 'U16LE stereo 44.1k', bits: 16, isSigned: false, nchannels: 2, freq: 44100 },
  { name: 'S32LE 5.1 48k', bits: 32, isSigned: true, nchannels: 6, freq: 48000 },
  { name: 'S32BE stereo 48k', bits: 32, isSigned: true, bigEndian: true, nchannels: 2, freq: 48000 },
  { name: 'F32LE stereo 44.1k', bits: 32, isSigned: true, isFloat: true, nchannels: 2, freq: 44100 },
  { name: 'F32BE mono 48k', bits: 32, isSigned: true, isFloat: true, bigEndian: true, nchannels: 1, freq: 48000 },
  { name: 'U32BE 5.1 44.1k', bits: 32, isSigned: false, bigEndian: true, nchannels: 6, freq: 44100 },
];

async function playCase(server: AudioServer, backend: PlaybackBackend, c: Case, id: bigint): Promise<void> {
  const speaker = new Speaker({ vmName: `fmt-${id}`, backend, latencyMs: TEST_LATENCY_MS });
  const rec = recordSinkMonitor(server);
  await rec.ready;
  const fmt = pcmFormat(c);
  speaker.init(id, fmt);
  speaker.setEnabled(id, true);
  // 5.1 is downmixed into the stereo sink: keep the sum of channels below full scale.
  const amplitude = c.nchannels > 2 ? 0.15 : 0.5;
  const sent = await feedTone(speaker, { id, format: fmt, seconds: 0.6, freq: 997, amplitude });
  const voice = speaker.voice(id)!.stats();
  speaker.fini(id);
  await speaker.idle();
  const r = await rec.stop();
  const left = channel(r.samples, 2, 0);
  const span = nonSilentSpan(left, 0.005);
  expect(span, `${c.name}: nothing captured (voice ${JSON.stringify(voice)})`).not.toBeNull();
  const seconds = (span!.endFrame - span!.startFrame) / r.rate;
  const gaps = findSilenceGaps(left, r.rate, { threshold: 0.005 });
  // 8-bit samples carry ~1 % quantisation noise: the sine-recurrence residual needs more slack.
  const disc = findDiscontinuities(left, r.rate, 997, { tolerance: c.bits === 8 ? 0.2 : 0.05 });
  const why = `${c.name}: ${seconds} s, gaps ${JSON.stringify(gaps)}, disc ${JSON.stringify(disc)}, voice ${JSON.stringify(voice)}`;
  expect(Math.abs(dominantFrequency(left, r.rate) - 997), why).toBeLessThan(1);
  expect(Math.abs(seconds - sent / c.freq), why).toBeLessThan(0.002);
  expect(gaps, why).toEqual([]);
  expect(disc, why).toEqual([]);
}

describe('format matrix on PipeWire', () => {
  let pw: PipeWire;
  let backend: PlaybackBackend;
  beforeAll(async () => {
    pw = await startPipeWire();
    backend = (await selectAudioBackend('pipewire', { env: pw.env }))!;
  });
  afterAll(async () => {
    await pw?.stop();
  });
  CASES.forEach((c, i) => it(c.name, () => playCase(pw, backend, c, BigInt(100 + i))));
});

describe('format matrix on PulseAudio (S8/U16/U32 converted in TS)', () => {
  let pa: Pulse;
  let backend: PlaybackBackend;
  beforeAll(async () => {
    pa = await startPulseAudio();
    backend = (await selectAudioBackend('pulse', { env: pa.env }))!;
  });
  afterAll(async () => {
    await pa?.stop();
  });
  CASES.forEach((c, i) => it(c.name, () => playCase(pa, backend, c, BigInt(200 + i))));
});
