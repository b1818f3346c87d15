// Host microphone -> guest, end to end with real parts: QEMU 7.2 (TCG; the first PipeWire test
// also on QEMU 10.0, test/harness/qemu-targets.ts) records 1 s with arecord
// (guest scenario `record`) through -audiodev dbus; our AudioInBridge serves its AudioInListener
// over the real p2p D-Bus connection (src/qemu) and captures from a real PipeWire / PulseAudio
// whose virtual microphone carries a known tone. The guest reports what it recorded:
//   MARK rec-done bytes=N md5=... freq=F rms=R zeros=Z frames=N rms_r=...
// `freq` is upward zero crossings per second over ALL frames, and silence padding (QEMU 7.2 under
// TCG asks ~1.37x faster than real time) is exact zeros that add no
// crossings: so the tone's frequency is about freq * frames / (frames - zeros) (see
// expectToneInRecording for the exact bound).
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { AudioInBridge } from '../../src/audio/in/audio-in-bridge';
import { audioBackendFor } from '../../src/audio/backend';
import { QemuVm } from '../../src/qemu';
import { micNodeName } from '../../src/stream-identity';
import { FeedHandle, makeToneWav, startFeed } from '../harness/audio-capture';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { lineLogger } from '../fakes/logger';
import { Guest, startGuest } from '../harness/qemu';
import { QEMU_MATRIX, type QemuTarget } from '../harness/qemu-targets';
import { tempDir, waitFor } from '../harness/procs';

interface RecDone {
  bytes: number;
  freq: number;
  rms: number;
  zeros: number;
  frames: number;
}

function parseRecDone(m: RegExpMatchArray): RecDone {
  const kv = Object.fromEntries([...m[0].matchAll(/(\w+)=(\S+)/g)].map((x) => [x[1], x[2]]));
  return { bytes: Number(kv.bytes), freq: Number(kv.freq), rms: Number(kv.rms), zeros: Number(kv.zeros), frames: Number(kv.frames) };
}

/**
 * Checks the guest's crossing count against a tone of `hz` in its non-padded frames. Every
 * stretch of padding can add or hide one upward crossing where the tone stops or resumes
 * mid-period (a negative sample followed by padding zeros counts as a crossing), so the count
 * may be off by at most one per gap: one per underrun the bridge counted, +3 for the start-up
 * silence and the two ends. On a loaded machine the FEEDER (pw-play/paplay) can also starve and
 * leave short silences in the source itself, which we cannot count: 3 % more. A high tone keeps
 * that slack small against what it must catch (a wrong rate is 8.8 %, a wrong channel 100 %).
 * freq=F is crossings per second over a recording of exactly 1 s (frames = rate).
 */
function expectToneInRecording(r: RecDone, hz: number, gaps: number, why: string): void {
  console.info(`[audio-in] ${why}`);
  expect(r.frames, why).toBe(44100);
  const crossings = r.freq;
  const expected = (hz * (r.frames - r.zeros)) / r.frames;
  expect(expected, `${why}: too little of the recording came from the microphone`).toBeGreaterThan(hz * 0.3);
  const tolerance = gaps + 3 + 0.03 * expected;
  expect(Math.abs(crossings - expected), `${why}: ${crossings} upward crossings, expected ${expected.toFixed(1)} +- ${tolerance.toFixed(1)}`).toBeLessThanOrEqual(tolerance);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => console.warn(`cleanup: ${String(e)}`));
});

interface Run {
  guest: Guest;
  vm: QemuVm;
  bridge: AudioInBridge;
  rec: RecDone;
  log: string[];
}

/**
 * Boots the guest with the `record` scenario while `server`'s microphone carries a tone of `hz`,
 * serving the guest's audio input with an AudioInBridge on `server`. `duringRecording` runs
 * between the guest's rec-start and rec-done markers; `beforeRecording` once the listener is up.
 */
async function recordThroughBridge(
  server: PipeWire | Pulse,
  hz: number,
  o: { qemu?: QemuTarget; mute?: boolean; volume?: number; beforeRecording?: (vmName: string) => Promise<void>; duringRecording?: (vmName: string) => Promise<void> } = {},
): Promise<Run> {
  const dir = tempDir('mic-guest');
  // Long enough to cover boot (~10-30 s on a loaded 2-core machine) and the recording.
  const wav = await makeToneWav(path.join(dir, `tone-${hz}.wav`), { hz, ms: 120_000, rate: 48000, channels: 2, amplitude: 0.5 });
  const feed: FeedHandle = await startFeed(server, wav);
  cleanups.push(() => feed.stop());

  const guest = await startGuest({ qemu: o.qemu, scenario: 'record', params: { rec_ms: 1000, ...(o.mute ? { mute: 1 as const } : {}), ...(o.volume !== undefined ? { volume: o.volume } : {}) } });
  cleanups.push(() => guest.stop());
  const vm = await QemuVm.connect({ busAddress: guest.busAddress, name: guest.name });
  cleanups.push(() => vm.close());
  const log: string[] = [];
  const bridge = new AudioInBridge({
    vmName: guest.name,
    backend: audioBackendFor(server.kind, server.env),
    source: server.source,
    log: lineLogger((line, level) => log.push(`${level}: ${line}`)),
  });
  cleanups.push(async () => bridge.close());
  await vm.addAudioInListener(bridge);
  if (o.beforeRecording) await o.beforeRecording(guest.name);
  const start = await guest.waitForSerial(/MARK rec-start [^\n]*/, 120_000);
  if (o.duringRecording) await o.duringRecording(guest.name);
  const done = await guest.waitForSerial(/MARK rec-done [^\n]*/, 60_000, start.index);
  return { guest, vm, bridge, rec: parseRecDone(done), log };
}

async function micNodes(pw: PipeWire, vmName: string): Promise<number> {
  return (await pw.pwDump()).filter((o) => o.type === 'PipeWire:Interface:Node' && o.info?.props?.['node.name'] === micNodeName(vmName)).length;
}

describe.each(QEMU_MATRIX)('QEMU %s: guest records the host microphone through PipeWire', (_version, qemu) => {
  it('a 2500 Hz tone fed into vm-mic is what the guest records; the capture stream exists only while it records', async () => {
    const pw = await startPipeWire();
    cleanups.push(() => pw.stop());
    let seenDuring = 0;
    let beforeCount = -1;
    const run = await recordThroughBridge(pw, 2500, {
      qemu,
      beforeRecording: async (vm) => {
        // QEMU replayed Init + SetEnabled(false) at registration: nothing may be capturing yet.
        beforeCount = await micNodes(pw, vm);
      },
      duringRecording: async (vm) => {
        seenDuring = await waitFor('the qemu-<vm>-mic capture node while the guest records', 20_000, async () => micNodes(pw, vm));
      },
    });
    const { rec, bridge, log } = run;
    const st = bridge.stats()[0];
    const why = `rec-done ${JSON.stringify(rec)}, bridge ${JSON.stringify(st, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}, log ${log.join(' | ')}`;
    expect(beforeCount, why).toBe(0);
    expect(seenDuring, why).toBe(1);
    expect(rec.bytes, why).toBe(176400);
    expect(rec.rms, why).toBeGreaterThan(1000); // amplitude 0.5 = rms ~11585 where not padded
    expect(rec.zeros, why).toBeLessThan(rec.frames * 0.6);
    expectToneInRecording(rec, 2500, st.underruns, why);
    expect(st.capturedBytes, why).toBeGreaterThan(0);
    // After rec-done the guest closed the capture device: QEMU disables the voice, we close.
    await waitFor('the capture node to go away after the recording', 20_000, async () => (await micNodes(pw, run.guest.name)) === 0);
    expect(bridge.capturing).toBe(false);
  });
});

describe('guest records the host microphone through PipeWire', () => {
  it('names the capture node qemu-<vm>-mic, "<vm> microphone", media.role Communication, and a muted guest records silence', async () => {
    const pw = await startPipeWire();
    cleanups.push(() => pw.stop());
    let props: Record<string, unknown> | undefined;
    const run = await recordThroughBridge(pw, 1000, {
      mute: true,
      duringRecording: async (vm) => {
        const node = await pw.waitForNode(micNodeName(vm), 20_000);
        props = node.info?.props;
      },
    });
    expect(props).toMatchObject({
      'node.name': micNodeName(run.guest.name),
      'node.description': `${run.guest.name} microphone`,
      'media.role': 'Communication',
      'media.category': 'Capture',
      'target.object': 'vm-mic',
    });
    const st = run.bridge.stats()[0];
    expect(st.muted).toBe(true);
    expect(st.capturedBytes).toBeGreaterThan(0); // the microphone ran, the guest got silence
    expect(run.rec.bytes).toBe(176400);
    expect(run.rec.rms).toBe(0);
    expect(run.rec.zeros).toBe(run.rec.frames);
  });
  it('the guest capture volume scales what it records by the gain QEMU announced (vol/255)', async () => {
    const pw = await startPipeWire();
    cleanups.push(() => pw.stop());
    const run = await recordThroughBridge(pw, 1000, { volume: 40 });
    const st = run.bridge.stats()[0];
    const gain = st.gains[0];
    const why = `rec-done ${JSON.stringify(run.rec)}, gains ${st.gains.join(',')}, log ${run.log.join(' | ')}`;
    expect(st.muted, why).toBe(false);
    expect(gain, why).toBeGreaterThan(0);
    expect(gain, why).toBeLessThan(1);
    // Amplitude 0.5 sine: rms 11585 where the microphone delivered; padding zeros dilute it.
    const real = (run.rec.frames - run.rec.zeros) / run.rec.frames;
    const expected = 11585 * gain * Math.sqrt(real);
    expect(run.rec.rms, why).toBeGreaterThan(expected * 0.85);
    expect(run.rec.rms, why).toBeLessThan(expected * 1.15);
  });
});

describe('guest records the host microphone through PulseAudio', () => {
  it('a 2000 Hz tone played into vm-mic-in (remapped to vm-mic) is what the guest records; no source-output outside the recording', async () => {
    const pa = await startPulseAudio();
    cleanups.push(() => pa.stop());
    const outputs = async (): Promise<number> => {
      const r = await pa.run('pactl', ['list', 'source-outputs']);
      return r.stdout.split('\n').filter((l) => l.includes('application.name = "qemu-dbus-bridge"')).length;
    };
    let before = -1;
    let during = 0;
    const run = await recordThroughBridge(pa, 2000, {
      beforeRecording: async () => {
        before = await outputs();
      },
      duringRecording: async () => {
        during = await waitFor('our source-output while the guest records', 20_000, outputs);
      },
    });
    const st = run.bridge.stats()[0];
    const why = `rec-done ${JSON.stringify(run.rec)}, log ${run.log.join(' | ')}, captured ${st.capturedBytes} padded ${st.paddedBytes} in ${st.paddedReads} reads (${st.underruns} underruns) + start-up ${st.startupPaddedBytes}, ${st.reads} reads`;
    expect(before, why).toBe(0);
    expect(during, why).toBe(1);
    expect(run.rec.bytes, why).toBe(176400);
    expect(run.rec.rms, why).toBeGreaterThan(1000);
    expectToneInRecording(run.rec, 2000, st.underruns, why);
    await waitFor('our source-output to go away after the recording', 20_000, async () => (await outputs()) === 0);
  });
});
