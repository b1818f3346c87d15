// A PipeWire camera node closed while a consumer takes its frames must not leave PipeWire's loop
// thread a call on the freed stream (a driver's queued trigger_done ran after pw_stream_destroy:
// native/pw_video.cc Destroy, pw_client.h SettleLocked). Real PipeWire and gst-launch-1.0 as the
// consumer; the nodes live in a child process (test/harness/camera-close.ts, run by
// crash-child.ts with MALLOC_PERTURB_) so that a crash fails this test instead of killing vitest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultLine, runCrashChild } from '../harness/crash-child';
import { startPipeWire, type PipeWire } from '../harness/pipewire';

const ROUNDS = 40; // before the fix most runs crashed within the first 20 closes
// Another build of the PipeWire addon to run against: QDB_CRASH_CHILD_ADDON (pw-drain-close.test.ts).
const ADDON = process.env.QDB_CRASH_CHILD_ADDON;

let pw: PipeWire;

beforeAll(async () => {
  pw = await startPipeWire();
}, 60_000);

afterAll(async () => {
  await pw?.stop();
});

describe('PwCamera closed while watched', () => {
  it(`${ROUNDS} camera nodes closed while frames flow to a consumer: the process survives`, async () => {
    const args = ['--remote', pw.socketPath, '--rounds', String(ROUNDS), ...(ADDON ? ['--addon', ADDON] : [])];
    const r = await runCrashChild('camera-close', args, pw.env, 240_000);
    console.log(`camera-close: ${r.out.trim()}`);
    expect(r.exit).toBe(0); // a crash: the signal's name (SIGSEGV before the fix)
    // Every node was closed while it streamed: otherwise the test did not exercise the window.
    expect(resultLine<{ streamed: number }>(r).streamed).toBe(ROUNDS);
  }, 300_000);
});
