// Several consoles, with real parts: a QEMU TCG guest with two display devices (-vga std plus
// -device secondary-vga,xres=1024,yres=768: two graphic Console_N on the bus, both driven by the
// guest's bochs DRM driver) whose `heads` scenario fills fb0 red and fb1 blue; a private
// dbus-daemon; the real CLI (`list`, `run`) in child processes. Checked: `list` shows both
// consoles with label, head, type and size; `run --camera-console 1` writes the second head's
// picture (blue, where console 0 would give red); `--input-console 1` types into console 1, so a
// pointer pushed past the right edge stops at that console's width (1023 of 1024, which QEMU turns
// into the guest tablet's ABS_X = 1023*0x7fff/1024; console 0 is 1280 wide and would give another
// value); a console that does not exist is ECONSOLE_UNKNOWN naming the two there are. One camera
// per console from the config: two `[[camera]]` entries (PipeWire, on a private PipeWire started
// here) are two camera nodes, qemu-<vm>-console0-camera red and qemu-<vm>-console1-camera blue, as
// a consumer (gst pipewiresrc) sees them; a third entry on a console the VM lacks is that route's
// ECONSOLE_UNKNOWN alone, and `status` shows the three routes, each with its state and target.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { encodeEvents } from '../../src/input/events';
import { EventScript } from '../../src/input/replay-writer';
import { statusJson, type StatusJson } from '../../src/service/status-bus/json';
import { cameraNodeName } from '../../src/stream-identity';
import { runCli as runCliToEnd, startBridgeProcess, type BridgeProcess, type CliResult } from '../harness/bridge-process';
import { bundleCli } from '../harness/cli';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { captureCameraFrames, colorDistance, decodePng, meanColor } from '../harness/gst';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { sleep, tempDir, waitFor } from '../harness/procs';
import { keepLogsIfFailed, parseInputEvents, startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX } from '../harness/qemu-targets';
import { dist, rgbAtFrame } from '../harness/yuv';

const SECOND_HEAD = { width: 1024, height: 768 };
const RED = { r: 255, g: 0, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };
const CAM = { width: 320, height: 240 };
const EV_ABS = 3;

let cli: string;
let bus: DbusDaemon;
let dir: string;
let pw: PipeWire;
const bridges: BridgeProcess[] = [];

beforeAll(async () => {
  cli = bundleCli('consoles');
  dir = tempDir('consoles');
  bus = await startDbusDaemon();
  pw = await startPipeWire();
}, 120_000);
afterAll(async () => {
  await pw?.stop();
  await bus?.stop();
  fs.rmSync(path.dirname(cli), { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  for (const b of bridges.splice(0)) b.kill('SIGKILL');
});

/** The bridges' session bus is the private bus too (status, and the bridge's status object). */
const sessionEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...pw.env, DBUS_SESSION_BUS_ADDRESS: bus.address });

/** A one-shot CLI command (list, status); env: the whole environment, default this process's. */
const runCli = (args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult> => runCliToEnd(args, { cli, env, cleanEnv: env !== undefined });

/** `run` on the private bus, JSON logs, no audio. */
function startBridge(args: string[], env?: NodeJS.ProcessEnv): BridgeProcess {
  const b = startBridgeProcess(['run', '--address', bus.address, '--audio', 'none', '--log-format', 'json', ...args], { cli, env, cleanEnv: env !== undefined });
  bridges.push(b);
  return b;
}

/** The last whole frame in a raw YUY2 file, or undefined before the first. */
function lastFrame(file: string): Buffer | undefined {
  const size = CAM.width * CAM.height * 2;
  const data = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
  const n = Math.floor(data.length / size);
  return n ? data.subarray((n - 1) * size, n * size) : undefined;
}

/** Opens the replay FIFO for writing once the bridge reads it (O_NONBLOCK: ENXIO until then, never a hang). */
async function openFifo(fifo: string): Promise<number> {
  const fd = await waitFor('the bridge to open the replay FIFO', 60_000, () => {
    try {
      return fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENXIO') return undefined;
      throw e;
    }
  });
  return fd!;
}

/**
 * Waits until the bridge's input route runs (its "started" line): the bridge opens the replay FIFO
 * before it has attached, and events read before the route runs are not forwarded (no VM to take
 * them). Writing right after the FIFO opened lost the key in CI now and then.
 */
const inputRunning = (b: BridgeProcess): Promise<void> => b.waitLog(/"component":"input"[^\n]*"msg":"started: /, 60_000);

describe.each(QEMU_MATRIX)('two display heads (QEMU %s, TCG, std VGA + secondary-vga)', (version, qemu) => {
  let guest: Guest;
  const name = `qdb-heads-${process.pid}-${version}`;

  beforeAll(async () => {
    guest = await startGuest({ qemu, scenario: 'heads', busAddress: bus.address, name, audiodev: 'none', extraArgs: ['-device', `secondary-vga,xres=${SECOND_HEAD.width},yres=${SECOND_HEAD.height}`] });
    const m = await guest.waitForSerial(/MARK heads-drawn n=(\d+) fb0=(\d+)x(\d+):ff0000 fb1=(\d+)x(\d+):0000ff/, 120_000);
    expect(m.slice(1).map(Number)).toEqual([2, 1280, 800, SECOND_HEAD.width, SECOND_HEAD.height]);
  }, 180_000);
  afterAll(async () => {
    await guest?.stop();
  });
  afterEach((ctx: TestContext) => {
    keepLogsIfFailed(ctx, guest);
  });

  it('--camera-console 1 shows the second head, list shows both consoles, --input-console 1 scales the pointer to its 1024x768', async () => {
    const frames = path.join(dir, `cam-${version}.yuv`);
    const fifo = path.join(dir, `replay-${version}`);
    fs.rmSync(fifo, { force: true });
    await new Promise<void>((r, j) => execFile('mkfifo', [fifo], (e) => (e ? j(e) : r())));
    const b = startBridge([
      '--vm', name,
      '--camera', `file:${frames}`, '--camera-size', `${CAM.width}x${CAM.height}`, '--camera-fps', '5', '--camera-format', 'YUY2', '--camera-console', '1',
      '--input-replay', fifo, '--input-console', '1',
    ]);
    try {
      // camera: 1024x768 fills 320x240 (same aspect); the head is blue all over, console 0 is red
      const picture = await waitFor('a blue frame from console 1', 60_000, () => {
        const f = lastFrame(frames);
        if (!f) return undefined;
        const at = [[160, 120], [40, 30], [280, 210]].map(([x, y]) => rgbAtFrame(f, 'YUY2', CAM.width, CAM.height, x, y));
        return at.every((c) => dist(c, BLUE) <= 24) ? at : undefined;
      }, 200).catch((e: Error) => {
        const f = lastFrame(frames);
        throw new Error(`${e.message}; last centre pixel ${JSON.stringify(f && rgbAtFrame(f, 'YUY2', CAM.width, CAM.height, 160, 120))}; log:\n${b.log()}`);
      });
      expect(picture!.every((c) => dist(c, RED) > 200)).toBe(true);

      // list, while the bridge is attached: QEMU (7.2) renders a console, and updates its
      // Width/Height, only while a listener is registered on it (here console 1: the camera's and
      // the dead-man's switch); console 0 has none and still says 640x480 (its VGA mode at boot).
      const json = await runCli(['list', '--address', bus.address, '--json']);
      expect(json.code, json.out).toBe(0);
      const vm = (JSON.parse(json.out) as Array<{ name: string; consoles: Array<Record<string, unknown>> }>).find((v) => v.name === name);
      expect(vm?.consoles.map(({ id, type, label, head, width, height }) => ({ id, type, label, head, width, height }))).toEqual([
        { id: 0, type: 'Graphic', label: 'VGA', head: 0, width: expect.any(Number), height: expect.any(Number) },
        { id: 1, type: 'Graphic', label: 'secondary-vga', head: 0, width: SECOND_HEAD.width, height: SECOND_HEAD.height },
      ]);
      const text = await runCli(['list', '--address', bus.address]);
      expect(text.out).toMatch(/console 0: Graphic \d+x\d+ "VGA" head 0/);
      expect(text.out).toMatch(/console 1: Graphic 1024x768 "secondary-vga" head 0/);

      // input: push the pointer 1100 px right, 700 down from the virtual cursor at (0,0): it stops
      // at x = 1023 on a 1024-wide console (console 0 would take 1100); then the middle.
      const tablet = (await guest.waitForSerial(/input (event\d+) name='QEMU Virtio Tablet'/, 10_000))[1];
      const from = guest.serial().length;
      const fd = await openFifo(fifo);
      try {
        await inputRunning(b);
        for (const frame of new EventScript().move(1100, 700).moveAbs(16384, 16384).frames()) {
          fs.writeSync(fd, encodeEvents(frame));
          await sleep(25);
        }
      } finally {
        fs.closeSync(fd);
      }
      const abs = () => parseInputEvents(guest.serial().slice(from)).filter((e) => e.device === tablet && e.type === EV_ABS).map((e) => [e.code, e.value]);
      await waitFor('4 tablet ABS events in the guest', 60_000, () => abs().length >= 4).catch(() => undefined);
      const { width: w, height: h } = SECOND_HEAD;
      const px = (v: number, size: number) => Math.floor((v * 0x7fff) / size);
      const half = (size: number) => Math.round((16384 * (size - 1)) / 32767);
      expect(abs(), b.log()).toEqual([
        [0, px(w - 1, w)],
        [1, px(700, h)],
        [0, px(half(w), w)],
        [1, px(half(h), h)],
      ]);
    } finally {
      expect((await b.stop()).code, b.log()).toBe(0);
    }
  }, 150_000);

  it('--input-console 1: SIGKILL with a key held, QEMU lifts it (the dead-man\'s switch sits on console 1)', async () => {
    const KEY_A = 30;
    const fifo = path.join(dir, `replay-kill-${version}`);
    fs.rmSync(fifo, { force: true });
    await new Promise<void>((r, j) => execFile('mkfifo', [fifo], (e) => (e ? j(e) : r())));
    const kbd = (await guest.waitForSerial(/input (event\d+) name='QEMU Virtio Keyboard'/, 10_000))[1];
    const from = guest.serial().length;
    const b = startBridge(['--vm', name, '--camera', 'none', '--input-replay', fifo, '--input-console', '1']);
    const keyA = () => parseInputEvents(guest.serial().slice(from)).filter((e) => e.device === kbd && e.type === 1 && e.code === KEY_A).map((e) => e.value);
    const fd = await openFifo(fifo);
    try {
      await inputRunning(b);
      fs.writeSync(fd, encodeEvents(new EventScript().key(KEY_A, 1).frames()[0]));
      await waitFor('KEY_A down in the guest', 30_000, () => keyA().includes(1));
      // keys go to console 1's keyboard state; only a switch on that console lifts them
      b.kill('SIGKILL');
      await b.exited;
      await waitFor('KEY_A up in the guest', 30_000, () => keyA().includes(0)).catch(() => undefined);
      expect(keyA().filter((v) => v !== 2), b.log()).toEqual([1, 0]);
    } finally {
      fs.closeSync(fd);
    }
  }, 90_000);

  it('a console the VM does not have: ECONSOLE_UNKNOWN once, naming the consoles there are', async () => {
    const b = startBridge(['--vm', name, '--camera', `file:${path.join(dir, 'none.yuv')}`, '--camera-console', '5']);
    try {
      const line = await waitFor('the camera route to give up', 60_000, () => b.log().split('\n').find((l) => l.includes('ECONSOLE_UNKNOWN')));
      expect(line).toContain(`VM \\"${name}\\" has no console 5; its consoles: 0 (Graphic \\"VGA\\" head 0, `);
      expect(line).toMatch(/, 1 \(Graphic \\"secondary-vga\\" head 0, \d+x\d+\)/);
      expect(line).toContain('--camera-console');
      await sleep(3000);
      expect(b.log().split('\n').filter((l) => l.includes('ECONSOLE_UNKNOWN')).length, b.log()).toBe(1);
    } finally {
      expect((await b.stop()).code, b.log()).toBe(0);
    }
  }, 90_000);
  it('two [[camera]] entries: two PipeWire camera nodes, console 0 red and console 1 blue; a third on a console the VM lacks fails alone', async () => {
    const config = path.join(dir, `cameras-${version}.toml`);
    const missing = path.join(dir, `missing-${version}.yuv`);
    const entry = (console: number, device: string) => `[[camera]]\nconsole = ${console}\ndevice = "${device}"\nsize = "${CAM.width}x${CAM.height}"\nfps = 5\n`;
    fs.writeFileSync(config, [entry(0, 'pipewire'), entry(1, 'pipewire'), entry(5, `file:${missing}`)].join('\n'));
    const t0 = Date.now();
    const b = startBridge(['--vm', name, '--config', config], sessionEnv());
    try {
      // what a consumer sees on each node: the middle of the picture (console 0's 1280x800 is
      // letterboxed into 320x240, so rows 20..219 are the picture; console 1's 1024x768 fills it)
      const pictureOn = async (console: number, want: { r: number; g: number; b: number }) => {
        let last = '';
        return waitFor(`the colour ${JSON.stringify(want)} on ${cameraNodeName(name, console)}`, 60_000, async () => {
          const files = await captureCameraFrames({ env: pw.env, target: cameraNodeName(name, console), count: 2, caps: 'video/x-raw,format=YUY2,colorimetry=bt601', timeoutMs: 30_000 });
          const img = decodePng(files[files.length - 1]);
          const c = meanColor(img, { x: CAM.width / 2 - 20, y: CAM.height / 2 - 20, w: 40, h: 40 });
          last = `${img.width}x${img.height} ${JSON.stringify(c)}`;
          return img.width === CAM.width && img.height === CAM.height && colorDistance(c, want) <= 24 ? c : undefined;
        }, 500).catch((e: Error) => {
          throw new Error(`${e.message}; last picture ${last}; log:\n${b.log()}`);
        });
      };
      const red = (await pictureOn(0, RED))!;
      const blue = (await pictureOn(1, BLUE))!;
      expect([colorDistance(red, BLUE), colorDistance(blue, RED)].every((d) => d > 200)).toBe(true);
      console.log(`consoles ${version}: both camera nodes showed their head ${Date.now() - t0} ms after the bridge started`);

      // status: three camera routes, each its own state and target; the missing console stops only its own
      const read = async (): Promise<StatusJson> => {
        const r = await runCli(['status', '--json', '--vm', name], sessionEnv());
        expect(r.code, r.out).toBe(0);
        return statusJson.parse(JSON.parse(r.out));
      };
      const routes = (await waitFor('camera-2 to be unavailable', 30_000, async () => {
        const rs = (await read()).bridges[0]?.routes ?? [];
        return rs.find((r) => r.name === 'camera-2')?.state === 'unavailable' ? rs : undefined;
      }, 500))!;
      expect(routes.map((r) => [r.name, r.state, r.target, r.counters?.route])).toEqual([
        ['camera-0', 'running', `PipeWire camera ${cameraNodeName(name, 0)}`, 'camera'],
        ['camera-1', 'running', `PipeWire camera ${cameraNodeName(name, 1)}`, 'camera'],
        ['camera-2', 'unavailable', missing, 'camera'],
      ]);
      expect(routes[2].reason).toMatch(/^ECONSOLE_UNKNOWN: VM "qdb-heads-\d+-[\d.]+" has no console 5/);
      const text = await runCli(['status', '--vm', name], sessionEnv());
      expect(text.out).toMatch(/camera-0: (no viewer|[\d.]+ fps, p99 \d+ ms) · camera-1: (no viewer|[\d.]+ fps, p99 \d+ ms) · camera-2: unavailable: ECONSOLE_UNKNOWN/);
      const failures = b.log().split('\n').filter((l) => l.includes('ECONSOLE_UNKNOWN'));
      expect(failures.length, b.log()).toBe(1);
      expect(failures[0]).toContain('camera[2].console in the config');
    } finally {
      expect((await b.stop()).code, b.log()).toBe(0);
    }
  }, 150_000);
});
