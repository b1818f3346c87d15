// A PipeWire playback stream closed in the middle of its drain must not leave PipeWire's loop
// thread a call on the freed stream (the SIGSEGV of the listener fuzz: pw_stream's queued
// `drained` call ran after pw_stream_destroy, see native/pw_audio.cc Process). Real PipeWire
// started here; the streams live in a child process (test/harness/drain-close.ts) so that a crash
// fails this test instead of killing vitest. MALLOC_PERTURB_ makes glibc fill freed memory, so a
// late call on a freed stream crashes every time instead of only when the memory was reused.
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleScript } from '../harness/cli';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { spawnManaged, tempDir } from '../harness/procs';

const ROOT = path.join(__dirname, '../..');
const ROUNDS = 50; // 4 streams each; before the fix the first few dozen crashed every run
// Another build of the PipeWire addon to run the same rounds against (checking that an older
// build fails): QDB_DRAIN_CLOSE_ADDON=/path/qemu_dbus_bridge_pipewire.node.
const ADDON = process.env.QDB_DRAIN_CLOSE_ADDON;

let pw: PipeWire;
let script: string;

beforeAll(async () => {
  pw = await startPipeWire();
  script = path.join(ROOT, '.cache', 'test-cli', `drain-close-${process.pid}`, 'drain-close.js');
  bundleScript(`import './test/harness/drain-close';`, script, ['usocket', 'dbus-native']);
}, 60_000);

afterAll(async () => {
  await pw?.stop();
});

/** Runs the rounds in a child process (harness-managed: killed with the test at the latest). */
async function runChild(timeoutMs: number): Promise<{ exit: number | string; out: string }> {
  const args = [script, '--remote', pw.socketPath, '--rounds', String(ROUNDS), ...(ADDON ? ['--addon', ADDON] : [])];
  const env = { ...process.env, ...pw.env, MALLOC_PERTURB_: '165' };
  const child = spawnManaged('drain-close', process.execPath, args, { env, logFile: path.join(tempDir('drain-close'), 'child.log') });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { exit, out: child.log() };
}

describe('PwPlayback closed while draining', () => {
  it(`${ROUNDS * 4} streams closed at random moments of their drain: the process survives`, async () => {
    const r = await runChild(120_000);
    console.log(`drain-close: ${r.out.trim()}`);
    expect(r.exit).toBe(0); // a crash: the signal's name (SIGSEGV before the fix)
    const res = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as { streams: number; drainedSeen: number; streamingSeen: number };
    expect(res.streams).toBe(ROUNDS * 4);
    // The closes must have hit running streams, some before and some after the drain ended:
    // otherwise the test did not exercise the window.
    expect(res.streamingSeen).toBe(ROUNDS * 4);
    expect(res.drainedSeen).toBeGreaterThan(0);
    expect(res.drainedSeen).toBeLessThan(ROUNDS * 4);
  }, 150_000);
});
