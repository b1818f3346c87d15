// A PipeWire playback stream closed in the middle of its drain must not leave PipeWire's loop
// thread a call on the freed stream (the SIGSEGV of the listener fuzz: pw_stream's queued
// `drained` call ran after pw_stream_destroy, see native/pw_audio.cc Process). Real PipeWire
// started here; the streams live in a child process (test/harness/drain-close.ts, run by
// crash-child.ts with MALLOC_PERTURB_) so that a crash fails this test instead of killing vitest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultLine, runCrashChild } from '../harness/crash-child';
import { startPipeWire, type PipeWire } from '../harness/pipewire';

const ROUNDS = 50; // 4 streams each; before the fix the first few dozen crashed every run
// Another build of the PipeWire addon to run the same rounds against (checking that an older
// build fails): QDB_CRASH_CHILD_ADDON=/path/qemu_dbus_bridge_pipewire.node.
const ADDON = process.env.QDB_CRASH_CHILD_ADDON;

let pw: PipeWire;

beforeAll(async () => {
  pw = await startPipeWire();
}, 60_000);

afterAll(async () => {
  await pw?.stop();
});

describe('PwPlayback closed while draining', () => {
  it(`${ROUNDS * 4} streams closed at random moments of their drain: the process survives`, async () => {
    const args = ['--remote', pw.socketPath, '--rounds', String(ROUNDS), ...(ADDON ? ['--addon', ADDON] : [])];
    const r = await runCrashChild('drain-close', args, pw.env, 120_000);
    console.log(`drain-close: ${r.out.trim()}`);
    expect(r.exit).toBe(0); // a crash: the signal's name (SIGSEGV before the fix)
    const res = resultLine<{ streams: number; drainedSeen: number; streamingSeen: number }>(r);
    expect(res.streams).toBe(ROUNDS * 4);
    // The closes must have hit running streams, some before and some after the drain ended:
    // otherwise the test did not exercise the window.
    expect(res.streamingSeen).toBe(ROUNDS * 4);
    expect(res.drainedSeen).toBeGreaterThan(0);
    expect(res.drainedSeen).toBeLessThan(ROUNDS * 4);
  }, 150_000);
});
