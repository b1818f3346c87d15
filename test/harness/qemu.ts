// QEMU (7.2 by default, or a QemuTarget from ./qemu-targets) booting the test guest (guest/README.md) with `-display dbus` / `-audiodev dbus`, on a
// private bus the Guest owns unless the test passes its own. TCG by default: KVM does not boot guests on
// the machines the tests were written on; QDB_ACCEL overrides.
import { execFile } from 'child_process';
import { randomUUID } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { dieWithParent, ownedTempDir } from './audio-tools';
import { queuedOwnerPids, startDbusDaemon, type DbusDaemon } from './dbus';
import { keepLogs, sleep, spawnManaged, waitFor, type Managed } from './procs';
import { QmpSession } from './qmp';
import { qemuBinary, type QemuTarget } from './qemu-targets';

export { QmpSession, QmpError } from './qmp';

export type GuestScenario = 'tone' | 'bursts' | 'record' | 'keys' | 'pattern' | 'idle' | 'text' | 'cursor' | 'animate' | 'heads';

/** Guest parameters passed as `bridge.<name>=<value>` on the kernel command line (guest/README.md). */
export interface GuestParams {
  tone_hz?: number;
  tone_ms?: number;
  rate?: number;
  rec_ms?: number;
  volume?: number;
  mute?: 0 | 1;
  poweroff?: 0 | 1;
  /** `bursts` scenario: how many bursts, each how long, and the silence between them (ms). */
  bursts?: number;
  burst_ms?: number;
  gap_ms?: number;
}

export interface GuestImage {
  kernel: string;
  initrd: string;
  /** Cache dir of this build (<repo>/.cache/guest/<hash>). */
  dir: string;
}

export interface GuestOptions {
  /** One scenario, or several run in order. */
  scenario: GuestScenario | GuestScenario[];
  /** Bus for `-display dbus,addr=`. Default: a fresh private dbus-daemon owned (and stopped) by the Guest. */
  busAddress?: string;
  /** `-name`; default unique (`qdb-<random>`). */
  name?: string;
  /** `-uuid`; default random. */
  uuid?: string;
  /** `-display dbus,p2p=yes`: no bus at all, clients come in through QMP add_client (Guest.addClient). */
  p2p?: boolean;
  pointer?: 'tablet' | 'mouse';
  /** Display device: 'std' (default; bochs-drm in the guest) or 'virtio' (virtio-vga; virtio_gpu). */
  vga?: 'std' | 'virtio';
  /**
   * Default 'dbus'. `{pa: server}` uses QEMU's PulseAudio backend; `{pipewire: env}` QEMU's own
   * PipeWire backend (QEMU 8.1+), connected to the server the env names; 'none' has no host audio.
   */
  audiodev?: 'dbus' | { pa: string } | { pipewire: NodeJS.ProcessEnv } | 'none';
  extraArgs?: string[];
  appendKernelArgs?: string[];
  /** Added to the kernel command line as bridge.<key>=<value>. */
  params?: GuestParams;
  /** Default: $QDB_ACCEL or 'tcg'. */
  accel?: string;
  /** Which QEMU runs (qemu-targets.ts). Default: the system's qemu-system-x86_64 (7.2). */
  qemu?: QemuTarget;
  /** Waiting for QEMU to start (QMP answering), ms. Default 60 s. */
  startTimeoutMs?: number;
}

export interface Guest {
  readonly pid: number;
  readonly name: string;
  readonly uuid: string;
  /** '' for p2p guests without a bus. */
  readonly busAddress: string;
  readonly qmpPath: string;
  /** Private run dir: serial.log, qemu.log (stdout+stderr), qemu.cmd, qmp.sock. */
  readonly dir: string;
  readonly args: readonly string[];
  /** The private bus this Guest started (undefined if the caller passed busAddress or p2p). */
  readonly bus?: DbusDaemon;
  /** Whole ttyS0 log so far. */
  serial(): string;
  /** Resolves with the first match of `re` in the serial log at or after `fromOffset` (default 0). */
  waitForSerial(re: RegExp, timeoutMs?: number, fromOffset?: number): Promise<RegExpMatchArray>;
  /** QEMU's stdout+stderr so far. */
  stderr(): string;
  /** One QMP command on a fresh connection (commands of one Guest are serialised). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- QMP replies are command-specific JSON; callers pick the shape
  qmp(cmd: string, args?: Record<string, unknown>): Promise<any>;
  /** A QMP connection of your own, e.g. for getfd + a command using it. Close it: QEMU serves one at a time. */
  qmpSession(): Promise<QmpSession>;
  /** Hands `fd` (one end of a socketpair) to QEMU: `getfd` (SCM_RIGHTS) then `add_client`, on one connection. */
  addClient(fd: number, protocol?: string): Promise<void>;
  /** QMP `quit`, then SIGTERM, then SIGKILL by PID; then stops the owned bus. Keeps logs if QEMU ended abnormally. */
  stop(): Promise<void>;
  /** Signals QEMU by PID (default SIGTERM); the exit then counts as intended (no logs kept). */
  kill(signal?: NodeJS.Signals): void;
  isRunning(): boolean;
  /** Exit code, or signal name. */
  readonly exited: Promise<number | string>;
  /** Copies the run dir (and the owned bus's log) to the kept-logs dir; returns where. */
  keepLogs(label?: string): string;
}

/** Finds the repository root (the dir holding guest/build-guest.sh), from src or from dist. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'guest', 'build-guest.sh'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`guest/build-guest.sh not found above ${__dirname}`);
    dir = up;
  }
}

let built: Promise<GuestImage> | undefined;

/** Runs guest/build-guest.sh once per process (the script itself caches by its inputs). */
export function buildGuest(): Promise<GuestImage> {
  built ??= new Promise<GuestImage>((resolve, reject) => {
    const script = path.join(repoRoot(), 'guest', 'build-guest.sh');
    execFile('bash', [script], { timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const kv = Object.fromEntries([...stdout.matchAll(/^(\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
      if (err || !kv.KERNEL || !kv.INITRD) {
        const why = stderr.trim().split('\n').slice(-3).join(' | ') || err?.message || 'no KERNEL=/INITRD= in its output';
        reject(Object.assign(new Error(`guest: build-guest.sh failed: ${why}`), { code: 'EGUESTBUILD' }));
        return;
      }
      resolve({ kernel: kv.KERNEL, initrd: kv.INITRD, dir: kv.GUEST_DIR ?? path.dirname(kv.INITRD) });
    });
  });
  const p = built;
  p.catch(() => {
    if (built === p) built = undefined; // a later call may retry after the cause is fixed
  });
  return p;
}

/** The QEMU command line for a guest; exported for tests and the demo to show. */
export function guestArgs(
  image: GuestImage,
  o: GuestOptions & { name: string; uuid: string; dir: string; busAddress: string },
): string[] {
  const scenarios = Array.isArray(o.scenario) ? o.scenario : [o.scenario];
  const accel = o.accel ?? process.env.QDB_ACCEL ?? 'tcg';
  const audio = o.audiodev ?? 'dbus';
  const params = Object.entries(o.params ?? {}).map(([k, v]) => `bridge.${k}=${String(v)}`);
  const append = [
    'console=ttyS0',
    'loglevel=6', // kernel notices and worse only: less serial traffic under TCG
    'panic=-1', // with -no-reboot: a guest panic ends QEMU instead of hanging
    'vt.global_cursor_default=0', // no blinking cursor: a still picture
    `bridge.scenario=${scenarios.join(',')}`,
    ...params,
    ...(o.appendKernelArgs ?? []),
  ].join(' ');

  let display = 'dbus';
  if (o.p2p) display += ',p2p=yes';
  else display += `,addr=${o.busAddress.replace(/,/g, ',,')}`; // QEMU option syntax: ',' is written ',,'
  let audiodev: string;
  if (audio === 'dbus') {
    display += ',audiodev=snd0'; // without it QEMU exports no /org/qemu/Display1/Audio
    audiodev = 'dbus,id=snd0';
  } else if (audio === 'none') {
    audiodev = 'none,id=snd0';
  } else if ('pipewire' in audio) {
    audiodev = 'pipewire,id=snd0'; // the server comes from the environment (startGuest)
  } else {
    audiodev = `pa,id=snd0,server=${audio.pa.replace(/,/g, ',,')}`;
  }

  return [
    '-name', o.name,
    '-uuid', o.uuid,
    '-machine', `pc,accel=${accel}`,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', '256',
    '-smp', '1',
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    '-kernel', image.kernel,
    '-initrd', image.initrd,
    '-append', append,
    '-vga', o.vga ?? 'std',
    '-display', display,
    '-audiodev', audiodev,
    '-device', 'intel-hda',
    '-device', 'hda-duplex,audiodev=snd0',
    '-device', 'virtio-keyboard-pci',
    '-device', o.pointer === 'mouse' ? 'virtio-mouse-pci' : 'virtio-tablet-pci',
    '-serial', `file:${path.join(o.dir, 'serial.log')}`,
    '-qmp', `unix:${path.join(o.dir, 'qmp.sock')},server=on,wait=off`,
    ...(o.extraArgs ?? []),
  ];
}

const runDirs = new Set<string>();
function removeRunDirsAtExit(dir: string): void {
  if (runDirs.size === 0) {
    process.once('exit', () => {
      for (const d of runDirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  runDirs.add(dir);
}

/**
 * Boots the guest; resolves once QEMU answers on QMP (its -display dbus is then connected) and, on a bus,
 * owns or is queued for org.qemu. The guest itself is still booting: wait for `MARK ready` on serial.
 */
export async function startGuest(opts: GuestOptions): Promise<Guest> {
  const binary = opts.qemu ? qemuBinary(opts.qemu) : 'qemu-system-x86_64'; // throws why a target cannot run
  const image = await buildGuest();
  const name = opts.name ?? `qdb-${randomUUID().slice(0, 8)}`;
  const uuid = opts.uuid ?? randomUUID();
  let bus: DbusDaemon | undefined;
  let busAddress = '';
  if (!opts.p2p) {
    if (opts.busAddress) busAddress = opts.busAddress;
    else {
      bus = await startDbusDaemon();
      busAddress = bus.address;
    }
  }
  const dir = ownedTempDir('vm'); // swept by a later test process if this one is killed
  removeRunDirsAtExit(dir);
  const qmpPath = path.join(dir, 'qmp.sock');
  const serialPath = path.join(dir, 'serial.log');
  fs.writeFileSync(serialPath, '');
  const args = guestArgs(image, { ...opts, name, uuid, dir, busAddress });
  fs.writeFileSync(path.join(dir, 'qemu.cmd'), [binary, ...args].map(shellQuote).join(' ') + '\n');
  const audio = opts.audiodev;
  const env = { ...process.env, ...(typeof audio === 'object' && 'pipewire' in audio ? audio.pipewire : {}) };
  delete env.DBUS_SESSION_BUS_ADDRESS; // QEMU must never fall back to the user's session bus

  let proc: Managed;
  try {
    // dieWithParent: QEMU must not outlive a killed vitest worker (its 'exit' handlers never run)
    const [cmd, cmdArgs] = dieWithParent(binary, args);
    proc = spawnManaged(`qemu ${name}`, cmd, cmdArgs, { logFile: path.join(dir, 'qemu.log'), env });
  } catch (err) {
    await bus?.stop();
    throw Object.assign(new Error(`qemu: cannot run qemu-system-x86_64 (${(err as Error).message}): install the Debian package 'qemu-system-x86'`), {
      code: 'EQEMUSTART',
    });
  }

  let started = false;
  let stopping = false;
  let keptAt: string | undefined;
  const keep = (label: string): string => {
    const dest = keepLogs(dir, label);
    const busLog = bus ? path.join(bus.dir, 'dbus.log') : '';
    if (busLog && fs.existsSync(busLog)) fs.cpSync(busLog, path.join(dest, 'dbus.log'));
    return dest;
  };
  // An exit nobody asked for (crash, guest panic) keeps the logs at once. A failed start says why itself.
  void proc.exited.then((code) => {
    if (started && !stopping && code !== 0) {
      keptAt = keep(`qemu-exit-${String(code)}`);
      console.warn(`[harness] QEMU ${name} exited unexpectedly (${String(code)}); logs kept in ${keptAt}`);
    }
  });

  const serial = (): string => (fs.existsSync(serialPath) ? fs.readFileSync(serialPath, 'utf8') : '');
  let qmpChain: Promise<unknown> = Promise.resolve();
  const qmpSession = () => QmpSession.connect(qmpPath);
  const qmp = (cmd: string, args?: Record<string, unknown>): Promise<unknown> => {
    const run = qmpChain.then(async () => {
      const s = await qmpSession();
      try {
        return await s.execute(cmd, args);
      } finally {
        s.close();
      }
    });
    qmpChain = run.catch(() => undefined);
    return run;
  };

  // Ready = QMP answers: QEMU serves its monitor only from the main loop, after -display dbus connected.
  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const deadline = Date.now() + startTimeoutMs;
  let lastErr = '';
  for (;;) {
    if (!proc.isRunning()) {
      const code = await proc.exited;
      await bus?.stop();
      const stderr = proc.log().trim();
      const hint = code === 127 ? ": install the Debian package 'qemu-system-x86'" : '';
      throw Object.assign(new Error(`qemu: failed to start (exit ${String(code)}): ${stderr || '(no output)'}${hint}`), {
        code: 'EQEMUSTART',
        stderr,
      });
    }
    if (fs.existsSync(qmpPath)) {
      try {
        await qmp('query-status');
        break;
      } catch (err) {
        lastErr = (err as Error).message;
      }
    }
    if (Date.now() > deadline) {
      stopping = true;
      await proc.stop(2000);
      await bus?.stop();
      const kept = keep('qemu-start-timeout');
      throw Object.assign(new Error(`qemu: no QMP answer within ${startTimeoutMs} ms (${lastErr || 'no socket'}); logs in ${kept}`), {
        code: 'EQEMUSTART',
      });
    }
    await sleep(50);
  }

  // QEMU requests org.qemu asynchronously after connecting: wait until it owns it or is queued for it
  // (a second guest on the same bus queues behind the first).
  if (!opts.p2p) {
    try {
      await waitFor(`QEMU (pid ${proc.pid}) to own or queue for org.qemu on ${busAddress}`, Math.max(1000, deadline - Date.now()), async () => {
        if (!proc.isRunning()) throw new Error(`QEMU exited: ${proc.log().trim()}`);
        return (await queuedOwnerPids(busAddress, 'org.qemu')).includes(proc.pid);
      }, 100);
    } catch (err) {
      stopping = true;
      await proc.stop(2000);
      await bus?.stop();
      const kept = keep('qemu-no-bus-name');
      throw Object.assign(new Error(`qemu: ${(err as Error).message}; logs in ${kept}`), { code: 'EQEMUSTART' });
    }
  }

  started = true;
  const guest: Guest = {
    pid: proc.pid,
    name,
    uuid,
    busAddress,
    qmpPath,
    dir,
    args,
    bus,
    serial,
    stderr: () => proc.log(),
    exited: proc.exited,
    isRunning: () => proc.isRunning(),
    kill: (signal) => {
      stopping = true; // a test killing QEMU on purpose is not a crash
      proc.kill(signal);
    },
    qmp,
    qmpSession,
    async addClient(fd: number, protocol = '@dbus-display') {
      const s = await qmpSession();
      const fdname = `qdb-client-${randomUUID().slice(0, 8)}`;
      try {
        await s.execute('getfd', { fdname }, [fd]);
        await s.execute('add_client', { protocol, fdname });
      } finally {
        s.close();
      }
    },
    async waitForSerial(re: RegExp, timeoutMs = 90_000, fromOffset = 0) {
      const end = Date.now() + timeoutMs;
      const plain = new RegExp(re.source, re.flags.replace('g', ''));
      for (;;) {
        const text = serial().slice(fromOffset);
        const m = plain.exec(text);
        if (m) return m;
        if (!proc.isRunning() || Date.now() > end) {
          const why = proc.isRunning() ? `timed out after ${timeoutMs} ms` : `QEMU exited (${String(await proc.exited)})`;
          const kept = keptAt ?? keep('serial-wait');
          const tail = text.split('\n').slice(-15).join('\n');
          throw Object.assign(new Error(`guest ${name}: ${why} waiting for ${String(re)} on the serial log; logs in ${kept}\n--- serial tail ---\n${tail}`), {
            code: 'ESERIALTIMEOUT',
          });
        }
        await sleep(100);
      }
    },
    async stop() {
      const wasRunning = proc.isRunning();
      stopping = true;
      let forced = false;
      if (wasRunning) {
        try {
          await Promise.race([qmp('quit'), sleep(3000)]);
        } catch {
          /* QEMU may close the monitor before replying; the exit below is what counts */
        }
        const quit = await Promise.race([proc.exited.then(() => true), sleep(5000).then(() => false)]);
        if (!quit) {
          forced = true;
          await proc.stop(3000);
        }
      }
      const code = await proc.exited;
      if (forced && !keptAt) {
        keptAt = keep('qemu-no-quit');
        console.warn(`[harness] QEMU ${name} ignored QMP quit and was killed (${String(code)}); logs kept in ${keptAt}`);
      }
      await bus?.stop();
    },
    keepLogs: (label = 'guest') => keep(label),
  };
  return guest;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** One `GUEST[<uptime>] MARK <name> k=v ...` line of the guest's serial log (guest/README.md). */
export interface GuestMark {
  uptime: number;
  name: string;
  /** key=value pairs; quoted values (`line='...'`) without their quotes. */
  fields: Record<string, string>;
  line: string;
}

/** The guest's MARK lines in order, optionally only those named `name`. */
export function parseMarks(serial: string, name?: string): GuestMark[] {
  const marks: GuestMark[] = [];
  for (const m of serial.matchAll(/^GUEST\[([\d.]+)\] MARK (\S+)(.*)$/gm)) {
    if (name !== undefined && m[2] !== name) continue;
    const fields: Record<string, string> = {};
    for (const f of m[3].matchAll(/(\w+)=(?:'([^']*)'|(\S+))/g)) fields[f[1]] = f[2] ?? f[3];
    marks.push({ uptime: Number(m[1]), name: m[2], fields, line: m[0] });
  }
  return marks;
}

/** One `EV eventN type=T code=C value=V` line: a struct input_event the guest read. */
export interface GuestInputEvent {
  uptime: number;
  device: string;
  type: number;
  code: number;
  value: number;
}

/** The input events the guest logged, in serial order (exact per device; devices may interleave). */
export function parseInputEvents(serial: string): GuestInputEvent[] {
  return [...serial.matchAll(/^GUEST\[([\d.]+)\] EV (event\d+) type=(\d+) code=(\d+) value=(-?\d+)/gm)].map((m) => ({
    uptime: Number(m[1]),
    device: m[2],
    type: Number(m[3]),
    code: Number(m[4]),
    value: Number(m[5]),
  }));
}

/** The part of a vitest TestContext that keepLogsIfFailed needs (no vitest import in the harness). */
export interface TestContextLike {
  task: { name: string; result?: { state?: string } };
}

/** In afterEach: copies each guest's logs to the kept-logs dir if the test failed; prints and returns where. */
export function keepLogsIfFailed(ctx: TestContextLike, ...guests: Array<Guest | undefined>): string[] {
  if (ctx.task.result?.state !== 'fail') return [];
  const label = ctx.task.name.replace(/\W+/g, '-').slice(0, 60);
  const kept = guests.filter((g): g is Guest => g !== undefined).map((g) => g.keepLogs(label));
  for (const k of kept) console.warn(`[harness] test failed; guest logs kept in ${k}`);
  return kept;
}
