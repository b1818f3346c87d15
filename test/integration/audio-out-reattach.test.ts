// The guest's speaker across a VM restart, once per QEMU of the matrix: the bridge's QemuVm and
// Speaker keep running while QEMU is killed in the middle of a tone and started again under the
// same name; the new QEMU's tone must come out of the sink whole, with no dropout (the gap finder
// of test/harness/audio-capture.ts on the captured tone after re-attach, and the stream's own
// underrun count). Without src/audio/out/jitter.ts, QEMU 10.0 (480-frame blocks: a 31 ms
// prebuffer at the product latency) showed 20-70 ms dropouts in the first 0.1-0.2 s of the tone on
// this loaded machine: Writes stalled 35-60 ms as the restarted guest began to play. The first
// tone plays 1.5 s before the kill, like a guest in use: that is what the Speaker learns from.
import { afterEach, describe, expect, it } from 'vitest';
import { selectAudioBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import { QemuVm } from '../../src/qemu';
import { channel, dominantFrequency, findSilenceGaps, nonSilentSpan, recordSinkMonitor } from '../harness/audio-capture';
import { startPipeWire } from '../harness/pipewire';
import { waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX } from '../harness/qemu-targets';
import { maxLateMs, pitchToleranceHz, sleep, watchedSpeaker, type WriteSeen } from './audio-out-helpers';

/** What a loaded host does to QEMU: it stops running for a while (SIGSTOP/SIGCONT by PID), then catches up. */
async function stall(guest: Guest, ms: number): Promise<void> {
  process.kill(guest.pid, 'SIGSTOP');
  try {
    await sleep(ms);
  } finally {
    process.kill(guest.pid, 'SIGCONT');
  }
}

const STALL_MS = 60;
const framesOf = (ws: WriteSeen[]): number => ws.reduce((n, w) => n + w.bytes, 0) / 4;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => console.warn(`cleanup: ${String(e)}`));
});

describe.each(QEMU_MATRIX)('guest tone after a VM restart on QEMU %s', (version, qemu) => {
  it('the bridge keeps running; the new QEMU tone plays without a dropout (product latency)', async () => {
    const pw = await startPipeWire();
    cleanups.push(() => pw.stop());
    const backend = (await selectAudioBackend('pipewire', { env: pw.env }))!;
    const name = `qdb-reat-${process.pid}-${version}`;
    const uuid = version === '7.2' ? '5a3e1c2d-0000-4000-8000-00000000c072' : '5a3e1c2d-0000-4000-8000-00000000c100';
    let guest: Guest = await startGuest({ qemu, scenario: 'tone', name, uuid, params: { tone_hz: 1000, tone_ms: 20_000 } });
    // The first QEMU's bus outlives it: the second one joins it under the same name.
    const bus = guest.bus!;
    const busAddress = guest.busAddress;
    cleanups.push(() => bus.stop());
    cleanups.push(() => guest.stop());
    const vm = await QemuVm.connect({ busAddress, name });
    vm.on('error', () => undefined);
    cleanups.push(() => vm.close());
    const blockFrames = vm.capabilities.audioNSamples ?? undefined;
    const speaker = new Speaker({ vmName: name, backend, blockFrames }); // product default latency
    cleanups.push(() => speaker.close());
    const writes: WriteSeen[] = [];
    const counting = watchedSpeaker(speaker, (_id, data) => {
      const pcm = new Int16Array(data.buffer, data.byteOffset, data.length >> 1);
      writes.push({ at: performance.now(), bytes: data.length, loud: pcm.some((v) => Math.abs(v) > 327) });
    });
    await vm.addAudioOutListener(counting);
    await guest.waitForSerial(/MARK play-start/, 120_000);
    await waitFor('1 s of the first tone received', 60_000, () => framesOf(writes) >= 44100);
    await stall(guest, STALL_MS); // the bridge sees how late Writes get on this host
    await waitFor('0.5 s more of the first tone', 60_000, () => framesOf(writes) >= 1.5 * 44100);
    const firstLateMs = maxLateMs(writes);

    // Kill QEMU mid-tone; keep its bus (Guest.stop would stop it) and the bridge.
    const gone = new Promise<void>((r) => vm.once('vm-gone', () => r()));
    guest.kill('SIGKILL');
    await guest.exited;
    await gone;
    await speaker.idle(); // the vanished voice has drained and closed
    const rec = recordSinkMonitor(pw);
    cleanups.push(async () => void (await rec.stop().catch(() => undefined)));
    await rec.ready;
    const back = new Promise<void>((r) => vm.once('reattached', () => r()));
    const firstWrite = writes.length;
    guest = await startGuest({ qemu, scenario: 'tone', busAddress, name, uuid, params: { tone_hz: 1000, tone_ms: 2000 } });
    await back;
    const start = await guest.waitForSerial(/MARK play-start[^\n]*/, 120_000);
    // The same stall, early in the new tone (the issue saw the dropout 0.11 s in).
    await waitFor('0.1 s of the new tone', 60_000, () => writes.slice(firstWrite).some((w) => w.loud));
    await sleep(100);
    // The prebuffer the stall meets: lateness seen later raises it for the next prebuffer only
    // (src/audio/out/prebuffer.ts), so the final status would overstate what covered the stall.
    const targetFrames = speaker.stats().voices[0]?.targetFrames ?? 0;
    await stall(guest, STALL_MS);
    await guest.waitForSerial(/MARK play-done/, 60_000, start.index);
    await sleep(1500);
    const voices = speaker.stats().voices;
    const r = await rec.stop();

    const left = channel(r.samples, 2, 0);
    const span = nonSilentSpan(left, 0.01);
    const gaps = findSilenceGaps(left, r.rate);
    const after = writes.slice(firstWrite);
    const intervals = after.slice(1).map((w, i) => Math.round(w.at - after[i].at));
    const seconds = span ? (span.endFrame - span.startFrame) / r.rate : 0;
    const receivedS = after.reduce((n, w) => n + w.bytes, 0) / 4 / 44100;
    // What of it was tone: QEMU also sends silent blocks around a sound (the stream runs on).
    const loudS = after.filter((w) => w.loud).reduce((n, w) => n + w.bytes, 0) / 4 / 44100;
    const blockS = (after[0]?.bytes ?? 0) / 4 / 44100;
    const lateMs = maxLateMs(after);
    const prebufferMs = (targetFrames * 1000) / 44100;
    const coveredMs = prebufferMs - blockS * 1000;
    const gapsAt = gaps.map((g) => ({ atMs: Math.round(((g.startFrame - (span?.startFrame ?? 0)) * 1000) / r.rate), ms: Math.round(g.ms) }));
    console.log(
      `[reattach ${version}] tone ${seconds.toFixed(3)} s of ${loudS.toFixed(3)} s loud received (${receivedS.toFixed(3)} s in all), Writes up to ${lateMs.toFixed(0)} ms late (first tone ${firstLateMs.toFixed(0)} ms), prebuffer ${prebufferMs.toFixed(1)} ms at the stall, ${after.length} Writes of ${after[0]?.bytes / 4} frames, ` +
        `max Write interval ${Math.max(...intervals)} ms (first 20: ${intervals.slice(0, 20).join(',')}), gaps ${JSON.stringify(gapsAt)}, voices ${JSON.stringify(voices)}`,
    );
    const why = `first tone late ${firstLateMs.toFixed(0)} ms; loud ${loudS} s, late ${lateMs.toFixed(0)} ms (covered ${coveredMs.toFixed(0)} ms), gaps ${JSON.stringify(gapsAt)}, voices ${JSON.stringify(voices)}, Write intervals ${intervals.slice(0, 40).join(',')}`;
    expect(span, why).not.toBeNull();
    expect(Math.abs(dominantFrequency(left, r.rate) - 1000), why).toBeLessThan(pitchToleranceHz(1000));
    // The fix: a new voice's prebuffer covers the lateness already seen from this VM (capped at
    // 120 ms; it decays by half in 10 minutes, a few % over this restart).
    expect(coveredMs, why).toBeGreaterThanOrEqual(0.9 * Math.min(firstLateMs, 120));
    // Nothing the new QEMU sent was dropped on our side.
    expect(voices.every((v) => v.overflowFrames === 0 && v.droppedFrames === 0), why).toBe(true);
    if (lateMs <= coveredMs) {
      // The bridge's stream never ran dry, and the capture has no dropout longer than one sink cycle
      // (1024 frames at 48 kHz): shorter ones come from the sound server itself missing a cycle on
      // this loaded machine (seen with 0 underruns on our side); the dropout this test is about was
      // 20-70 ms, and with it our stream underran.
      expect(voices.every((v) => v.underruns === 0), why).toBe(true);
      expect(gaps.filter((g) => g.ms > 1024 / 48), why).toEqual([]);
    } else {
      // QEMU stalled beyond any prebuffer of this size: the dropout may be no longer than that excess
      // plus one 1024-frame cycle of the sink on each side (a late restart lands on a cycle).
      console.warn(`[reattach ${version}] QEMU's Writes came ${lateMs.toFixed(0)} ms late, beyond the ${coveredMs.toFixed(0)} ms covered`);
      expect(gaps.reduce((n, g) => n + g.ms, 0), why).toBeLessThanOrEqual(lateMs - coveredMs + 2 * (1024 / 48));
    }
  });
});
