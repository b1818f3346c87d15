// Guest speaker, end to end with real parts: QEMU 7.2 (TCG; the PipeWire test also on QEMU 10.0,
// test/harness/qemu-targets.ts) plays a 1000 Hz tone for 1 s with
// aplay (guest scenario `tone`, intel-hda + hda-duplex, -audiodev dbus); our Speaker serves its
// AudioOutListener over the real p2p D-Bus connection (src/qemu) and plays into a real PipeWire /
// PulseAudio null sink whose monitor we record.
//
// The tail: the last 25-48 ms of a guest sound never leave QEMU 7.2 when the guest stops its
// stream (src/audio/out/voice.ts has the details): hda-codec drops its transfer buffer (kept half
// full: ~1024 frames, 23 ms) when the stream stops running, and the dbus driver emits a Write only
// for a FULL 1024-frame block (the partial one waits for the next sound). So the captured tone may
// be shorter than the guest's 1 s by up to 2048 + 1023 frames -- but it must be exactly as long
// as what QEMU sent: everything the bridge received is heard.
import { afterEach, describe, expect, it } from 'vitest';
import { selectAudioBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import { QemuVm } from '../../src/qemu';
import { channel, dominantFrequency, findDiscontinuities, findSilenceGaps, nonSilentSpan, recordSinkMonitor } from '../harness/audio-capture';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { startGuest } from '../harness/qemu';
import { QEMU_MATRIX, type QemuTarget } from '../harness/qemu-targets';
import { TEST_LATENCY_MS, sleep, watchedSpeaker } from './audio-out-helpers';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => console.warn(`cleanup: ${String(e)}`));
});

async function guestTone(server: PipeWire | Pulse, qemu?: QemuTarget): Promise<void> {
  const backend = (await selectAudioBackend(server.kind, { env: server.env }))!;
  const rec = recordSinkMonitor(server);
  cleanups.push(async () => void (await rec.stop().catch(() => undefined)));
  await rec.ready;
  const guest = await startGuest({ qemu, scenario: 'tone', params: { tone_hz: 1000, tone_ms: 1000 } });
  cleanups.push(() => guest.stop());
  const vm = await QemuVm.connect({ busAddress: guest.busAddress, name: guest.name });
  cleanups.push(() => vm.close());
  // The block QEMU writes (7.2: 1024 frames; 10.0: Audio.NSamples), as the audio-out route passes it.
  const blockFrames = vm.capabilities.audioNSamples ?? 1024;
  const speaker = new Speaker({ vmName: guest.name, backend, latencyMs: TEST_LATENCY_MS, blockFrames });
  cleanups.push(() => speaker.close());
  const written: number[] = [];
  const counting = watchedSpeaker(speaker, (_id, data) => written.push(data.length));
  await vm.addAudioOutListener(counting);
  const start = await guest.waitForSerial(/MARK play-start [^\n]*/, 120_000);
  await guest.waitForSerial(/MARK play-done[^\n]*/, 60_000, start.index);
  // The voice is disabled after the guest closes the device; let the ring play out.
  await sleep(1500);
  const voices = speaker.stats().voices;
  // The prebuffer follows the block QEMU sends: latency + one block (no lateness learned yet on a fresh Speaker).
  const prebufferMs = ((voices[0]?.targetFrames ?? 0) * 1000) / 44100;
  console.log(`[audio-out-guest ${qemu?.version ?? '7.2'}] block ${blockFrames} frames, prebuffer ${prebufferMs.toFixed(1)} ms`);
  expect(voices[0]?.targetFrames).toBe(Math.round((TEST_LATENCY_MS * 44100) / 1000) + blockFrames);
  const r = await rec.stop();
  const left = channel(r.samples, 2, 0);
  const span = nonSilentSpan(left, 0.01);
  const receivedFrames = written.reduce((s, n) => s + n, 0) / 4;
  const gaps = findSilenceGaps(left, r.rate);
  const disc = findDiscontinuities(left, r.rate, 1000);
  const seconds = span ? (span.endFrame - span.startFrame) / r.rate : 0;
  const why = `captured ${seconds} s, Writes ${written.length} (${receivedFrames} frames), gaps ${JSON.stringify(gaps)}, disc ${JSON.stringify(disc)}, voices ${JSON.stringify(voices)}, serial tail ${guest.serial().slice(-600)}`;
  expect(span, why).not.toBeNull();
  expect(Math.abs(dominantFrequency(left, r.rate) - 1000), why).toBeLessThan(2);
  // Every frame QEMU sent was heard (2 ms for the resampler's edges)...
  expect(Math.abs(seconds - receivedFrames / 44100), why).toBeLessThan(0.002);
  // ...and QEMU kept back no more than hda-codec's buffer plus one partial dbus block.
  expect(seconds, why).toBeGreaterThan(1 - (2048 + blockFrames - 1) / 44100 - 0.002);
  expect(written.every((n) => n === blockFrames * 4), why).toBe(true);
  expect(seconds, why).toBeLessThan(1 + 0.002);
  expect(gaps, why).toEqual([]);
  expect(disc, why).toEqual([]);
  expect(voices.every((v) => v.underruns === 0 && v.droppedFrames === 0), why).toBe(true);
}

describe.each(QEMU_MATRIX)('QEMU %s: guest tone through the bridge', (_version, qemu) => {
  it('PipeWire: 1000 Hz, every frame QEMU sent is heard, no discontinuity', async () => {
    const pw = await startPipeWire();
    cleanups.push(() => pw.stop());
    await guestTone(pw, qemu);
  });
});

describe('guest tone through the bridge', () => {
  it('PulseAudio: the same', async () => {
    const pa = await startPulseAudio();
    cleanups.push(() => pa.stop());
    await guestTone(pa);
  });
});
