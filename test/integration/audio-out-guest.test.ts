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
//
// A starved QEMU (load 13 on this 2-core machine) loses audio of its own: hda-codec's transfer
// timer catches up on the guest's DMA faster than the audio backend drains its 2048-frame buffer,
// finds it full and drops all of it (trace event hda_audio_overrun, which the test enables and
// counts). What QEMU then sends is 2048 frames shorter per overrun and has a phase jump where the
// buffer went (severity ~1.2-1.8): 3 of 5 runs failed on that before this test compared the capture
// with what QEMU SENT (the Writes, kept) instead of with a perfect tone. Measured: 0.906 s sent with
// 1 overrun, 0.882 s with 2, the jump in the Writes and in the capture at the same ms.
import { afterEach, describe, expect, it } from 'vitest';
import { selectAudioBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import { QemuVm } from '../../src/qemu';
import { channel, dominantFrequency, findDiscontinuities, findSilenceGaps, nonSilentSpan, recordSinkMonitor } from '../harness/audio-capture';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { startGuest } from '../harness/qemu';
import { waitFor } from '../harness/procs';
import { QEMU_MATRIX, type QemuTarget } from '../harness/qemu-targets';
import { TEST_LATENCY_MS, maxLateMs, sleep, watchedSpeaker, type WriteSeen } from './audio-out-helpers';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => console.warn(`cleanup: ${String(e)}`));
});

/** Where a tone breaks (discontinuities) and falls silent (gaps), in ms from the start of its sound. */
interface Breaks {
  ms: number;
  disc: { atMs: number; severity: number }[];
  gaps: { atMs: number; ms: number }[];
}

function breaksOf(left: Int16Array, rate: number): Breaks | null {
  const span = nonSilentSpan(left, 0.01);
  if (!span) return null;
  const at = (frame: number): number => ((frame - span.startFrame) * 1000) / rate;
  return {
    ms: at(span.endFrame),
    disc: findDiscontinuities(left, rate, 1000).map((d) => ({ atMs: at(d.frame), severity: d.severity })),
    gaps: findSilenceGaps(left, rate, { minGapMs: 0.3 }).map((g) => ({ atMs: at(g.startFrame), ms: g.ms })),
  };
}

const TOL_MS = 3; // the resampler, and a rate the drift controller may have nudged

/**
 * Holds what was heard to what QEMU sent. A silence in the capture that QEMU did not send is
 * `added` (the stream ran dry); it shifts everything after it, and the tone breaks at its two
 * edges. Returns those added silences and the breaks left unexplained on either side: heard but
 * not sent (dropped, reordered or garbled on our side) and sent clearly (severity > 0.2) but not
 * heard.
 */
function compareBreaks(sent: Breaks, heard: Breaks): { added: Breaks['gaps']; extra: Breaks['disc']; missing: Breaks['disc'] } {
  const near = (a: number, b: number): boolean => Math.abs(a - b) <= TOL_MS;
  const added: Breaks['gaps'] = [];
  const shiftAt = (heardMs: number): number => added.filter((g) => g.atMs + g.ms <= heardMs + TOL_MS).reduce((n, g) => n + g.ms, 0);
  for (const g of heard.gaps) {
    if (!sent.gaps.some((s) => near(s.atMs, g.atMs - shiftAt(g.atMs)) && near(s.ms, g.ms))) added.push(g);
  }
  // The tone breaks within a sample or two of a silence's edges (seen: 0.02 ms); one period of the
  // tone (1 ms) is the most it can be off, and a break QEMU sent 2.8 ms after one must still count.
  const edge = (a: number, b: number): boolean => Math.abs(a - b) <= 1;
  const atGapEdge = (d: { atMs: number }): boolean => added.some((g) => edge(d.atMs, g.atMs) || edge(d.atMs, g.atMs + g.ms));
  const extra = heard.disc.filter((d) => !atGapEdge(d) && !sent.disc.some((s) => near(s.atMs, d.atMs - shiftAt(d.atMs))));
  const missing = sent.disc.filter((s) => s.severity > 0.2 && !heard.disc.some((d) => !atGapEdge(d) && near(s.atMs, d.atMs - shiftAt(d.atMs))));
  return { added, extra, missing };
}

/** The sink's recorder, the guest about to play its 1 s tone, and a Speaker for it (not registered yet). */
async function toneRig(server: PipeWire | Pulse, qemu?: QemuTarget) {
  const backend = (await selectAudioBackend(server.kind, { env: server.env }))!;
  const rec = recordSinkMonitor(server);
  cleanups.push(async () => void (await rec.stop().catch(() => undefined)));
  await rec.ready;
  // hda-codec's own record of the audio it threw away (see the header): one line per overrun.
  const guest = await startGuest({ qemu, scenario: 'tone', params: { tone_hz: 1000, tone_ms: 1000 }, extraArgs: ['-trace', 'hda_audio_overrun'] });
  cleanups.push(() => guest.stop());
  const vm = await QemuVm.connect({ busAddress: guest.busAddress, name: guest.name });
  cleanups.push(() => vm.close());
  // The block QEMU writes (7.2: 1024 frames; 10.0: Audio.NSamples), as the audio-out route passes it.
  const blockFrames = vm.capabilities.audioNSamples ?? 1024;
  const speaker = new Speaker({ vmName: guest.name, backend, latencyMs: TEST_LATENCY_MS, blockFrames });
  cleanups.push(() => speaker.close());
  return { rec, guest, vm, blockFrames, speaker };
}

async function guestTone(server: PipeWire | Pulse, qemu?: QemuTarget): Promise<void> {
  const { rec, guest, vm, blockFrames, speaker } = await toneRig(server, qemu);
  const writes: WriteSeen[] = [];
  const pcm: Uint8Array[] = [];
  const counting = watchedSpeaker(speaker, (_id, data) => {
    const samples = new Int16Array(data.buffer, data.byteOffset, data.length >> 1);
    writes.push({ at: performance.now(), bytes: data.length, loud: samples.some((v) => Math.abs(v) > 327) });
    pcm.push(Uint8Array.from(data));
  });
  await vm.addAudioOutListener(counting);
  const start = await guest.waitForSerial(/MARK play-start [^\n]*/, 120_000);
  await guest.waitForSerial(/MARK play-done[^\n]*/, 60_000, start.index);
  // The voice is disabled after the guest closes the device; let the ring play out.
  await sleep(1500);
  const voices = speaker.stats().voices;
  // The prebuffer follows the block QEMU sends: latency + one block (no lateness learned yet on a fresh Speaker).
  const prebufferMs = ((voices[0]?.targetFrames ?? 0) * 1000) / 44100;
  expect(voices[0]?.targetFrames).toBe(Math.round((TEST_LATENCY_MS * 44100) / 1000) + blockFrames);
  const r = await rec.stop();
  const left = channel(r.samples, 2, 0);

  // What QEMU sent, as the bridge received it: the reference the capture is held to.
  const sentBytes = Buffer.concat(pcm);
  const sentLeft = channel(new Int16Array(sentBytes.buffer, sentBytes.byteOffset, sentBytes.length >> 1), 2, 0);
  const sent = breaksOf(sentLeft, 44100);
  const heard = breaksOf(left, r.rate);
  const receivedFrames = sentBytes.length / 4;
  const overruns = (guest.stderr().match(/hda_audio_overrun/g) ?? []).length;
  const guestXruns = (guest.serial().slice(start.index).match(/aplay: .*underrun/g) ?? []).length;
  const lateMs = maxLateMs(writes);
  // What the prebuffer covers of QEMU's lateness: less one block (QEMU sends whole blocks) and one
  // request of the sink (1024 frames at 48 kHz: the stream underruns when it cannot fill a whole
  // request). Measured: an underrun with Writes 46 ms late against 83 - 23 = 60 ms.
  const SINK_CYCLE_MS = (1024 * 1000) / 48000;
  const coveredMs = prebufferMs - (blockFrames * 1000) / 44100 - SINK_CYCLE_MS;
  const why =
    `sent ${JSON.stringify(sent)} in ${writes.length} Writes (${receivedFrames} frames, up to ${lateMs.toFixed(0)} ms late, covered ${coveredMs.toFixed(0)} ms), ` +
    `hda-codec overruns ${overruns}, guest xruns ${guestXruns}; heard ${JSON.stringify(heard)}, voices ${JSON.stringify(voices)}, serial tail ${guest.serial().slice(-400)}`;
  console.log(`[audio-out-guest ${qemu?.version ?? '7.2'}] block ${blockFrames} frames, prebuffer ${prebufferMs.toFixed(1)} ms; ${why}`);
  expect(sent, why).not.toBeNull();
  expect(heard, why).not.toBeNull();
  if (!sent || !heard) return;
  expect(Math.abs(dominantFrequency(left, r.rate) - 1000), why).toBeLessThan(2);

  // The bridge played what QEMU sent, in order, without dropping or inserting: every break in the
  // capture is one in what QEMU sent, at the same place, and every clear break QEMU sent is heard.
  const { added, extra, missing } = compareBreaks(sent, heard);
  expect(extra, why).toEqual([]);
  expect(missing, why).toEqual([]);
  expect(voices.every((v) => v.droppedFrames === 0 && v.overflowFrames === 0), why).toBe(true);
  const addedMs = added.reduce((n, g) => n + g.ms, 0);
  if (lateMs <= coveredMs) {
    // QEMU's Writes came within the prebuffer: the stream never ran dry, nothing was added.
    expect(added, why).toEqual([]);
    expect(voices.every((v) => v.underruns === 0), why).toBe(true);
  } else {
    // QEMU itself stalled beyond the prebuffer (starved of CPU): the silence may be no longer than
    // that excess plus one sink cycle on each side (audio-out-reattach.test.ts). Seen: Writes 70 ms
    // late (31 beyond), a 59 ms silence; 79 ms late on 10.0 (40 beyond), 70 ms.
    console.warn(`[audio-out-guest] QEMU's Writes came ${lateMs.toFixed(0)} ms late, beyond the ${coveredMs.toFixed(0)} ms covered`);
    expect(addedMs, why).toBeLessThanOrEqual(lateMs - coveredMs + 2 * SINK_CYCLE_MS);
  }
  // Every frame QEMU sent was heard, and nothing else (2 ms for the resampler's edges).
  expect(Math.abs(heard.ms - addedMs - sent.ms), why).toBeLessThan(2);

  // What QEMU sent, against the guest's 1 s: full blocks only, never more than the guest played,
  // and short of it by no more than hda-codec's buffer plus one partial dbus block (the tail), plus
  // the 2048-frame buffer hda-codec drops at each overrun it traced (QEMU starved of CPU: its
  // transfer timer refills the buffer before the audio backend drains it).
  expect(writes.every((w) => w.bytes === blockFrames * 4), why).toBe(true);
  expect(receivedFrames, why).toBeLessThanOrEqual(44100);
  expect(sent.ms, why).toBeGreaterThan(((44100 - (2048 + blockFrames - 1) - 2048 * overruns) * 1000) / 44100 - 2);
}

/**
 * The same tone with the Speaker registered as it is in service (no JS watcher in front of it): the
 * intake thread (native/speaker_intake.h) reads the listener connection and takes QEMU's Writes
 * itself, so JS never sees them and what QEMU sent is known only by the core's counters. Held to:
 * the Writes were taken natively (all but those that reached JS while the stream was corked), the
 * tone is 1000 Hz, every frame written is heard and nothing else, and it is unbroken unless QEMU
 * itself dropped audio (hda-codec overruns, traced).
 */
async function guestToneThroughIntake(server: PipeWire | Pulse, qemu?: QemuTarget): Promise<void> {
  const { rec, guest, vm, blockFrames, speaker } = await toneRig(server, qemu);
  const handle = await vm.addAudioOutListener(speaker);
  const start = await guest.waitForSerial(/MARK play-start [^\n]*/, 120_000);
  // The connection's counters move while QEMU plays, though JS sees none of the Writes.
  const atStart = handle.stats!.calls;
  await waitFor('the listener counting the Writes the intake takes', 10_000, () => handle.stats!.calls > atStart + 10);
  const playing = handle.stats!;
  await waitFor('more Writes', 10_000, () => handle.stats!.calls > playing.calls + 10);
  const later = handle.stats!;
  await guest.waitForSerial(/MARK play-done[^\n]*/, 60_000, start.index);
  await sleep(1500);
  const st = speaker.stats();
  const calls = handle.stats!;
  const r = await rec.stop();
  const left = channel(r.samples, 2, 0);
  const heard = breaksOf(left, r.rate);
  const overruns = (guest.stderr().match(/hda_audio_overrun/g) ?? []).length;
  const written = st.voices.reduce((n, v) => n + v.writtenFrames, 0);
  const writes = written / blockFrames;
  const why = `intake took ${st.intakeWrites} of ${writes} Writes (${written} frames); listener counted ${calls.calls} calls, ${calls.bytes} bytes (${playing.calls} while playing, then ${later.calls} ${(later.lastCallAt - playing.lastCallAt).toFixed(0)} ms later); hda-codec overruns ${overruns}; heard ${JSON.stringify(heard)}; voices ${JSON.stringify(st.voices)}`;
  console.log(`[audio-out-guest intake ${qemu?.version ?? '7.2'} ${server.kind}] ${why}`);
  expect(heard, why).not.toBeNull();
  if (!heard) return;
  // A Write reaches JS only while the stream is corked (JS uncorks): none in one sound.
  expect(st.intakeWrites, why).toBe(writes);
  // Every Write is one call and its PCM bytes on the connection's counters (beside them only the
  // few control calls JS ran: Init, SetEnabled, SetVolume with one byte per channel).
  expect(calls.calls - st.intakeWrites, why).toBeGreaterThan(0);
  expect(calls.calls - st.intakeWrites, why).toBeLessThan(20);
  expect(calls.bytes - written * 4, why).toBeGreaterThanOrEqual(0);
  expect(calls.bytes - written * 4, why).toBeLessThan(64);
  // ...and its last call's time follows them (liveness reads it: src/qemu/vm/liveness.ts).
  expect(later.lastCallAt, why).toBeGreaterThan(playing.lastCallAt);
  expect(Math.abs(dominantFrequency(left, r.rate) - 1000), why).toBeLessThan(2);
  expect(st.voices.every((v) => v.droppedFrames === 0 && v.overflowFrames === 0 && v.underruns === 0), why).toBe(true);
  if (overruns === 0) expect(heard.disc, why).toEqual([]);
  expect(heard.gaps, why).toEqual([]);
  expect(Math.abs(heard.ms - (written * 1000) / 44100), why).toBeLessThan(2);
}

// Each path on each QEMU with PipeWire, and on 7.2 with PulseAudio: through a JS watcher (every
// Write seen in JS, what QEMU sent kept as the reference) and through the intake thread.
const PATHS = [
  { path: 'through the bridge', play: guestTone, pipewire: 'PipeWire: 1000 Hz, every frame QEMU sent is heard, no discontinuity' },
  { path: 'through the intake thread', play: guestToneThroughIntake, pipewire: 'PipeWire: every Write taken natively, 1000 Hz, every frame written is heard' },
];
for (const { path, play, pipewire } of PATHS) {
  describe.each(QEMU_MATRIX)(`QEMU %s: guest tone ${path}`, (_version, qemu) => {
    it(pipewire, async () => {
      const pw = await startPipeWire();
      cleanups.push(() => pw.stop());
      await play(pw, qemu);
    });
  });

  describe(`guest tone ${path}`, () => {
    it('PulseAudio: the same', async () => {
      const pa = await startPulseAudio();
      cleanups.push(() => pa.stop());
      await play(pa);
    });
  });
}
