// Helpers for the checks that run INSIDE the kernel tier's guest (as root, real kernel devices):
// the uinput device factory (scripts/kernel-vm/guest/uinput-devices.py), v4l2loopback, and the
// bridge's real CLI as a child process (test/harness/bridge-process.ts), optionally as another user. The CLI is the bundle the host built from
// the current sources (QDB_CLI_BUNDLE, see test/harness/kernel-vm.ts: one file loads much faster
// over 9p under TCG than dist/ and node_modules), else dist/ (scripts/setup.sh builds it).
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { V4L2_CAP_VIDEO_CAPTURE, V4L2_CAP_VIDEO_OUTPUT } from '../../../src/camera/sinks/v4l2';
import { frameBytes, type CameraPixelFormat } from '../../../src/camera/sinks/types';
import { EV_KEY, INPUT_EVENT_SIZE } from '../../../src/input/events';
import { native } from '../../../src/native';
import { runTool } from '../../harness/audio-tools';
import { runCli as runCliToEnd, startBridgeProcess, type BridgeProcess, type BridgeProcessOptions, type CliResult } from '../../harness/bridge-process';
import { sleep, waitFor } from '../../harness/procs';

const ROOT = path.join(__dirname, '../../..');
export const CLI = process.env.QDB_CLI_BUNDLE ?? path.join(ROOT, 'dist/src/cli/main.js');
const FACTORY = path.join(ROOT, 'scripts/kernel-vm/guest/uinput-devices.py');

/** nobody/nogroup: the unprivileged user the permission checks run as */
export const NOBODY = { uid: 65534, gid: 65534 };

/** gid of a group in the guest (its /etc/group is the host's) */
export function groupId(name: string): number {
  const r = spawnSync('getent', ['group', name], { encoding: 'utf8' });
  const gid = Number(r.stdout.split(':')[2]);
  if (r.status !== 0 || !Number.isInteger(gid)) throw new Error(`no group ${name} in the guest`);
  return gid;
}

/** [cmd, args] running cmd as `user` with exactly `groups` (setpriv: no PAM, no login) */
export function asUser(user: { uid: number; gid: number }, groups: number[], cmd: string, args: string[]): [string, string[]] {
  const g = groups.length ? ['--groups', groups.join(',')] : ['--clear-groups'];
  return ['setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), ...g, '--', cmd, ...args]];
}

export type DeviceKind = 'keyboard' | 'mouse' | 'hires-mouse' | 'tablet' | 'combo';

/** One uinput factory process; devices are created and destroyed through it. */
export class UinputFactory {
  readonly lines: string[] = [];
  private buf = '';
  private constructor(private readonly proc: ChildProcess) {
    proc.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
    });
  }

  static async start(): Promise<UinputFactory> {
    const proc = spawn('/usr/bin/python3', [FACTORY], { stdio: ['pipe', 'pipe', 'inherit'] });
    const f = new UinputFactory(proc);
    await f.expect(/^READY$/, 0);
    return f;
  }

  /** Waits for a line matching re at or after index `from`; returns it. */
  async expect(re: RegExp, from: number, ms = 20_000): Promise<string> {
    let hit: string | undefined;
    await waitFor(`uinput factory: ${re}`, ms, () => {
      const err = this.lines.slice(from).find((l) => l.startsWith('ERROR'));
      if (err) throw new Error(err);
      hit = this.lines.slice(from).find((l) => re.test(l));
      return hit !== undefined;
    }, 20);
    return hit!;
  }

  private async command(line: string, answer: RegExp): Promise<string> {
    const from = this.lines.length;
    this.proc.stdin!.write(line + '\n');
    return this.expect(answer, from);
  }

  /** Creates a device; `name` may contain spaces. Returns its /dev/input/eventN. */
  async create(id: string, kind: DeviceKind, name: string, vendor: number, product: number): Promise<string> {
    const hex = (n: number): string => n.toString(16).padStart(4, '0');
    const line = await this.command(`create ${id} ${kind} ${name.replace(/ /g, '_')} ${hex(vendor)} ${hex(product)}`, new RegExp(`^CREATED ${id} `));
    return line.split(' ')[2];
  }

  async destroy(id: string): Promise<void> {
    await this.command(`destroy ${id}`, new RegExp(`^DESTROYED ${id}$`));
  }

  /** Writes [type, code, value] events and a SYN_REPORT: one frame. */
  async frame(id: string, ...events: [number, number, number][]): Promise<void> {
    await this.command(`ev ${id} ${events.flat().join(' ')}`, new RegExp(`^OK ev ${id}$`));
  }

  /** n KEY_A press/release frames as fast as the kernel takes them, then KEY_A held. */
  async flood(id: string, n: number): Promise<void> {
    await this.command(`flood ${id} ${n}`, new RegExp(`^FLOODED ${id} ${n}$`));
  }

  /** EV_LED writes the device received since line index `from`: [code, value][] */
  ledWrites(id: string, from = 0): [number, number][] {
    return this.lines
      .slice(from)
      .map((l) => l.split(' '))
      .filter((a) => a[0] === 'LED' && a[1] === id)
      .map((a) => [Number(a[2]), Number(a[3])]);
  }

  async stop(): Promise<void> {
    this.proc.stdin!.end('quit\n');
    await Promise.race([new Promise((r) => this.proc.once('exit', r)), sleep(5000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

export type { BridgeProcess, CliResult } from '../../harness/bridge-process';

export interface GuestCliOptions {
  env?: NodeJS.ProcessEnv;
  /** run as this user with exactly `groups` */
  user?: { uid: number; gid: number };
  groups?: number[];
}

const cliOptions = (o: GuestCliOptions): BridgeProcessOptions => ({
  cli: CLI,
  env: o.env,
  wrap: o.user ? (cmd, args) => asUser(o.user!, o.groups ?? [], cmd, args) : undefined,
});

/** `qemu-dbus-bridge ARGS...` (the harness's BridgeProcess), optionally as another user. */
export function startBridge(args: string[], o: GuestCliOptions = {}): BridgeProcess {
  return startBridgeProcess(args, cliOptions(o));
}

/** `qemu-dbus-bridge ARGS...` to the end, optionally as another user: exit status and output. */
export function runCli(args: string[], o: GuestCliOptions = {}): Promise<CliResult> {
  return runCliToEnd(args, { ...cliOptions(o), timeoutMs: 120_000 });
}

/** Another program trying EVIOCGRAB on the node: undefined if it got it (and let go), else the errno code. */
export function grabFromOutside(path: string): string | undefined {
  const grab = native.evdevGrabFd;
  if (!grab) throw new Error('this build of the addon has no evdev support');
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    grab(fd, true);
    grab(fd, false);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    fs.closeSync(fd);
  }
}

/** Events waiting on a non-blocking reader fd: [type, code, value][] */
export function drain(fd: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  const buf = Buffer.alloc(INPUT_EVENT_SIZE * 256);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return out;
      throw err;
    }
    for (let o = 0; o + INPUT_EVENT_SIZE <= n; o += INPUT_EVENT_SIZE) out.push([buf.readUInt16LE(o + 16), buf.readUInt16LE(o + 18), buf.readInt32LE(o + 20)]);
  }
}

/** A plain (never grabbing) reader of a device, drained every 50 ms so autorepeat cannot overflow it. */
export class HostReader {
  readonly seen: [number, number, number][] = [];
  private readonly fd: number;
  private readonly timer: NodeJS.Timeout;
  constructor(path: string) {
    this.fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    this.timer = setInterval(() => this.poll(), 50);
  }
  poll(): void {
    this.seen.push(...drain(this.fd));
  }
  /** key presses (1) and releases (0) of `code` since index `from`; autorepeats (2) left out */
  keys(code: number, from = 0): number[] {
    this.poll();
    return this.seen.slice(from).filter(([t, c, v]) => t === EV_KEY && c === code && v !== 2).map(([, , v]) => v);
  }
  close(): void {
    clearInterval(this.timer);
    fs.closeSync(this.fd);
  }
}

/**
 * v4l2loopback (exclusive_caps=1) with one device per number, /dev/video<nr>: unloaded first, so
 * a group's files each get the devices they ask for whatever an earlier file loaded.
 */
export async function loadV4l2loopback(nrs: number[], label: string): Promise<string[]> {
  spawnSync('modprobe', ['-r', 'v4l2loopback'], { encoding: 'utf8' }); // not loaded yet: fine
  // exclusive_caps and card_label are per device (a list): a lone "1" sets the first device's only
  const each = (v: string): string => nrs.map(() => v).join(',');
  const args = ['v4l2loopback', `devices=${nrs.length}`, `video_nr=${nrs.join(',')}`, `exclusive_caps=${each('1')}`, `card_label=${each(label)}`];
  const r = spawnSync('modprobe', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`modprobe ${args.join(' ')}: ${r.stderr.trim()}`);
  const devs = nrs.map((n) => `/dev/video${n}`);
  await waitFor(`${devs.join(', ')} to appear`, 10_000, () => devs.every((d) => fs.existsSync(d)));
  return devs;
}

/** VIDEO_CAPTURE / VIDEO_OUTPUT of a v4l2 device as QUERYCAP reports them now (the addon's real ioctl). */
export function v4l2Caps(dev: string): { capture: boolean; output: boolean } {
  const fd = fs.openSync(dev, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  try {
    const c = native.v4l2QueryCap(fd).deviceCaps;
    return { capture: (c & V4L2_CAP_VIDEO_CAPTURE) !== 0, output: (c & V4L2_CAP_VIDEO_OUTPUT) !== 0 };
  } finally {
    fs.closeSync(fd);
  }
}

/** What a device announces to consumers (`v4l2-ctl --get-fmt-video`): e.g. "YUYV 320x240". */
export async function announcedFormat(dev: string): Promise<string> {
  const r = await runTool('v4l2-ctl', ['-d', dev, '--get-fmt-video'], { timeoutMs: 30_000 });
  const wh = /Width\/Height\s*:\s*(\d+)\/(\d+)/.exec(r.stdout);
  const pf = /Pixel Format\s*:\s*'(\w+)'/.exec(r.stdout);
  return `${pf?.[1]} ${wh?.[1]}x${wh?.[2]}`;
}

/**
 * `v4l2-ctl --stream-mmap`: n raw frames of `format` at width x height from `dev`, after skipping
 * two (they may predate the screen); asynchronous, so a fake VM in this process keeps answering.
 */
export async function v4l2ctlFrames(dev: string, dir: string, n: number, format: CameraPixelFormat, width: number, height: number): Promise<Buffer[]> {
  const file = path.join(dir, `v4l2ctl-${path.basename(dev)}-${Date.now()}.raw`);
  await runTool('v4l2-ctl', ['-d', dev, '--stream-mmap', '--stream-skip=2', `--stream-count=${n}`, `--stream-to=${file}`], { timeoutMs: 30_000 });
  const all = fs.readFileSync(file);
  fs.rmSync(file);
  const size = frameBytes(format, width, height);
  if (all.length !== n * size) throw new Error(`v4l2-ctl wrote ${all.length} bytes from ${dev} for ${n} ${format} ${width}x${height} frames of ${size}`);
  return Array.from({ length: n }, (_, i) => all.subarray(i * size, (i + 1) * size));
}
