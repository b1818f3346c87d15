// PipeWire streams closed while they run must not leave PipeWire's loop thread a call on the freed
// stream: PipeWire 0.3.65's data thread posts calls holding a stream's address to the loop
// thread, and pw_stream_destroy neither cancels nor waits for them. The speaker's drain (`drained`:
// the SIGSEGV of the listener fuzz, native/pw_audio.cc Process) and the camera driver's
// trigger_done (native/pw_video.cc Destroy, pw_client.h SettleLocked). Real PipeWire started here;
// the streams live in a child process (test/harness/drain-close.ts, camera-close.ts, run by
// crash-child.ts with MALLOC_PERTURB_) so that a crash fails the test instead of killing vitest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultLine, runCrashChild } from '../harness/crash-child';
import { startPipeWire, type PipeWire } from '../harness/pipewire';

// Another build of the PipeWire addon to run the same rounds against (checking that an older
// build fails): QDB_CRASH_CHILD_ADDON=/path/qemu_dbus_bridge_pipewire.node.
const ADDON = process.env.QDB_CRASH_CHILD_ADDON;
const DRAIN_ROUNDS = 50; // 4 streams each; before the fix the first few dozen crashed every run
const CAMERA_ROUNDS = 40; // before the fix: SIGSEGV in 1 of 4 runs of 40 closes, 2 of 3 runs of 25

let pw: PipeWire;

beforeAll(async () => {
  pw = await startPipeWire();
}, 60_000);

afterAll(async () => {
  await pw?.stop();
});

const childArgs = (rounds: number) => ['--remote', pw.socketPath, '--rounds', String(rounds), ...(ADDON ? ['--addon', ADDON] : [])];

describe('PipeWire streams closed while running', () => {
  it(`PwPlayback: ${DRAIN_ROUNDS * 4} streams closed at random moments of their drain, the process survives`, async () => {
    const r = await runCrashChild('drain-close', childArgs(DRAIN_ROUNDS), pw.env, 120_000);
    console.log(`drain-close: ${r.out.trim()}`);
    expect(r.exit).toBe(0); // a crash: the signal's name (SIGSEGV before the fix)
    const res = resultLine<{ streams: number; drainedSeen: number; streamingSeen: number }>(r);
    expect(res.streams).toBe(DRAIN_ROUNDS * 4);
    // The closes must have hit running streams, some before and some after the drain ended:
    // otherwise the test did not exercise the window.
    expect(res.streamingSeen).toBe(DRAIN_ROUNDS * 4);
    expect(res.drainedSeen).toBeGreaterThan(0);
    expect(res.drainedSeen).toBeLessThan(DRAIN_ROUNDS * 4);
  }, 150_000);

  it(`PwCamera: ${CAMERA_ROUNDS} nodes closed while frames flow to a consumer, the process survives`, async () => {
    const r = await runCrashChild('camera-close', childArgs(CAMERA_ROUNDS), pw.env, 240_000);
    console.log(`camera-close: ${r.out.trim()}`);
    expect(r.exit).toBe(0); // a crash: the signal's name (SIGSEGV before the fix)
    // Every node was closed while it streamed: otherwise the test did not exercise the window.
    expect(resultLine<{ streamed: number }>(r).streamed).toBe(CAMERA_ROUNDS);
  }, 300_000);
});
