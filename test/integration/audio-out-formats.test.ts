// Format matrix through the real D-Bus path: a fake QEMU 7.2 Display1 peer on a private
// dbus-daemon plays each format the way QEMU does (Init, SetEnabled, SetVolume, 1024-frame Writes
// paced on its clock, SetEnabled(false), Fini) on the AudioOutListener the bridge registered
// (QemuVm.addAudioOutListener -> src/qemu listener -> Speaker), into the REAL servers' null sink;
// the sink monitor is captured and checked for frequency, duration (tail included) and
// discontinuities. Every format QEMU can announce (U8/S8/S16/U16/S32/F32, both byte orders),
// 1/2/6 channels, 44.1 and 48 kHz. PipeWire and PulseAudio (where S8/U16/U32 are converted in
// TS) play each case at the same time, each on its own server, bus peer and speaker: the matrix
// costs one server's time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectAudioBackend } from '../../src/audio/backend';
import type { AudioServer } from '../harness/audio-tools';
import { channel, dominantFrequency, findDiscontinuities, findSilenceGaps, nonSilentSpan, recordSinkMonitor } from '../harness/audio-capture';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { startPulseAudio, type Pulse } from '../harness/pulseaudio';
import type { VoiceStats } from '../../src/audio/out/voice';
import { TEST_LATENCY_MS, finiReached, pcmFormat, playLikeQemu, startPeerRig, type PeerRig } from './audio-out-helpers';

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

interface Side {
  label: string;
  server: AudioServer;
  rig: PeerRig;
}

async function playCase(side: Side, c: Case, id: bigint): Promise<void> {
  const { rig, server } = side;
  const rec = recordSinkMonitor(server);
  await rec.ready;
  const fmt = pcmFormat(c);
  // Last stats the voice showed before Fini took it away (diagnostics only).
  let voice: VoiceStats | undefined;
  const poll = setInterval(() => {
    voice = rig.speaker.voice(id)?.stats() ?? voice;
  }, 20);
  let sent: number;
  try {
    // 5.1 is downmixed into the stereo sink: keep the sum of channels below full scale.
    const amplitude = c.nchannels > 2 ? 0.15 : 0.5;
    sent = await playLikeQemu(rig.qemu, { id, format: fmt, seconds: 0.6, freq: 997, amplitude });
    await finiReached(rig, id, c.name);
  } finally {
    clearInterval(poll);
  }
  const r = await rec.stop();
  const left = channel(r.samples, 2, 0);
  const span = nonSilentSpan(left, 0.005);
  const ctx = `${side.label} ${c.name}`;
  expect(rig.listener.sendErrors, ctx).toEqual([]);
  expect(span, `${ctx}: nothing captured (voice ${JSON.stringify(voice)})`).not.toBeNull();
  const seconds = (span!.endFrame - span!.startFrame) / r.rate;
  const gaps = findSilenceGaps(left, r.rate, { threshold: 0.005 });
  // 8-bit samples carry ~1 % quantisation noise: the sine-recurrence residual needs more slack.
  const disc = findDiscontinuities(left, r.rate, 997, { tolerance: c.bits === 8 ? 0.2 : 0.05 });
  const why = `${ctx}: ${seconds} s, gaps ${JSON.stringify(gaps)}, disc ${JSON.stringify(disc)}, voice ${JSON.stringify(voice)}`;
  expect(Math.abs(dominantFrequency(left, r.rate) - 997), why).toBeLessThan(1);
  expect(Math.abs(seconds - sent / c.freq), why).toBeLessThan(0.002);
  expect(gaps, why).toEqual([]);
  expect(disc, why).toEqual([]);
}

describe('format matrix through a fake Display1 peer, PipeWire and PulseAudio side by side', () => {
  let bus: DbusDaemon | undefined;
  let pw: PipeWire | undefined;
  let pa: Pulse | undefined;
  const sides: Side[] = [];

  beforeAll(async () => {
    [bus, pw, pa] = await Promise.all([startDbusDaemon(), startPipeWire(), startPulseAudio()]);
    const [pwBackend, paBackend] = await Promise.all([selectAudioBackend('pipewire', { env: pw.env }), selectAudioBackend('pulse', { env: pa.env })]);
    sides.push({ label: 'PipeWire', server: pw, rig: await startPeerRig(bus.address, 'fmt-pw', pwBackend!, { latencyMs: TEST_LATENCY_MS }) });
    sides.push({ label: 'PulseAudio', server: pa, rig: await startPeerRig(bus.address, 'fmt-pa', paBackend!, { latencyMs: TEST_LATENCY_MS }) });
  });
  afterAll(async () => {
    for (const s of sides.splice(0)) await s.rig.close();
    await Promise.all([pw?.stop(), pa?.stop()]);
    await bus?.stop();
  });

  CASES.forEach((c, i) =>
    it(c.name, async () => {
      // allSettled: a failure on one server must not leave the other still playing into the next case.
      const results = await Promise.allSettled(sides.map((s, k) => playCase(s, c, BigInt(100 + 10 * i + k))));
      const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
      if (failures.length) throw new Error(failures.join('\n'));
    }),
  );
});
