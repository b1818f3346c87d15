// `qemu-dbus-bridge demo` as a user runs it (the real CLI entry in a child process, with no
// sound server of its own): it must start a private PipeWire, boot the guest, show a live status
// line with sound, camera frames and typed input, print the hear/see commands, and on exit leave
// none of the processes it started behind.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureCameraFrames, decodePng } from '../harness/gst';
import { tempDir } from '../harness/procs';
import { startBridgeProcess } from '../harness/bridge-process';
import { bundleCli } from '../harness/cli';

let cli: string;

beforeAll(() => {
  cli = bundleCli('demo');
});

afterAll(() => {
  fs.rmSync(path.dirname(cli), { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('qemu-dbus-bridge demo', () => {
  it('bridges the bundled guest with a live status line and stops everything it started', async () => {
    const runtime = tempDir('demo-rt');
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: runtime };
    delete env.PIPEWIRE_REMOTE;
    delete env.PULSE_SERVER;
    const demo = startBridgeProcess(['demo', '--duration', '90'], { cli, env, cleanEnv: true });
    // Use the printed "see:" command's environment to watch the camera, as a user would.
    await demo.waitLog(/Ctrl-C stops everything/, 180_000);
    const see = /see: +XDG_RUNTIME_DIR=(\S+) PIPEWIRE_REMOTE=(\S+) gst-launch-1\.0 pipewiresrc target-object=(\S+)/.exec(demo.log());
    expect(see, demo.log()).not.toBeNull();
    await demo.waitLog(/input +[1-9]\d* events/, 120_000);
    const files = await captureCameraFrames({ env: { XDG_RUNTIME_DIR: see![1], PIPEWIRE_REMOTE: see![2] }, target: see![3], count: 30, timeoutMs: 60_000 });
    const img = decodePng(files[files.length - 1]);
    expect([img.width, img.height]).toEqual([1280, 720]);
    const { code } = await demo.exited;
    const out = demo.log();
    console.log(out.split('\n').filter((l) => !l.startsWith('audio ')).join('\n'));
    const statusLines = out.split('\n').filter((l) => l.startsWith('audio '));
    console.log(`last status lines:\n${statusLines.slice(-3).join('\n')}`);
    expect(code, out).toBe(0);
    expect(out).toContain('starting a private headless one');
    expect(out).toMatch(/hear: .*pw-record .*--target vm-sink/);
    expect(out).toMatch(/see: .*gst-launch-1\.0 pipewiresrc target-object=qemu-demo-\d+-camera/);
    // sound, frames and typed keys all showed up in the live line at some point
    expect(statusLines.some((l) => /audio +-\d+ dBFS/.test(l))).toBe(true);
    expect(statusLines.some((l) => /camera +([1-9]\d*\.\d) fps/.test(l)), 'camera fps while gst watched').toBe(true);
    expect(statusLines.some((l) => /input +[1-9]\d* events/.test(l))).toBe(true);
    expect(statusLines.some((l) => /audio 44100 Hz 2ch → vm-sink/.test(l))).toBe(true);
    // everything it started is gone
    const started = /Stopped: (.*)/.exec(out)?.[1] ?? '';
    const pids = [...started.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBeGreaterThanOrEqual(3);
    expect(pids.filter(alive)).toEqual([]);
  }, 300_000);
});
