// The user unit template checked by the real systemd tools: `systemd-analyze verify --user` must
// print nothing (it exits 0 even on unknown keys, so silence is the criterion; a broken copy
// proves the check can fail), and `systemd-analyze security --offline=yes` exposure is recorded
// and must stay below 2.0 ("OK"): the offline analysis only reads the file, so it is
// deterministic. VM names with '-', a space and non-ASCII go the whole way a user's would:
// `systemd-escape --template` -> `systemd-analyze verify` -> the command line the real systemd
// builds from the unit (`systemd --test --user`, which loads units without running them) -> the
// real CLI with exactly those arguments, attaching to a real QEMU of that -name.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBridgeProcess } from '../harness/bridge-process';
import { bundleCli } from '../harness/cli';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { tempDir, waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';

const UNIT = path.join(__dirname, '../../systemd/qemu-dbus-bridge@.service');
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  dir = tempDir('unit');
  // A user manager context: verify needs XDG_RUNTIME_DIR, and ExecStart (%h/.local/bin/...) must exist.
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'home/.local/bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'home/.local/bin/qemu-dbus-bridge'), '#!/bin/sh\n', { mode: 0o755 });
  env = { PATH: process.env.PATH, XDG_RUNTIME_DIR: path.join(dir, 'run'), HOME: path.join(dir, 'home') };
});

/** Verify needs an instance name: qemu-dbus-bridge@demo.service -> the template file. */
function instance(template: string, name: string): string {
  const base = path.basename(template).replace('@.service', `@${name}.service`);
  const sub = tempDir('unit-inst');
  fs.copyFileSync(template, path.join(sub, path.basename(template)));
  fs.symlinkSync(path.basename(template), path.join(sub, base));
  return path.join(sub, base);
}

function analyze(args: string[]) {
  const r = spawnSync('systemd-analyze', args, { env, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`systemd-analyze could not run: ${r.error.message}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('systemd/qemu-dbus-bridge@.service', () => {
  it('passes systemd-analyze verify --user without a single warning', () => {
    const r = analyze(['verify', '--user', instance(UNIT, 'demo')]);
    expect(r.err + r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it('the verify check catches a broken unit (negative control)', () => {
    const broken = path.join(dir, 'broken@.service');
    fs.writeFileSync(broken, fs.readFileSync(UNIT, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    const r = analyze(['verify', '--user', instance(broken, 'demo')]);
    expect(r.err).toContain("Unknown key 'NoNewPrivilege'");
  });

  it('has the promised shape: notify, watchdog, restart on failure, no restart on config errors', () => {
    const text = fs.readFileSync(UNIT, 'utf8');
    for (const line of [
      'Type=notify',
      'Restart=on-failure',
      'RestartPreventExitStatus=2 3',
      'Environment=LIBVIRT_AUTOSTART=0',
      'PrivateNetwork=yes',
      'RestrictAddressFamilies=AF_UNIX',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'DeviceAllow=char-input rw',
      'DeviceAllow=char-video4linux rw',
      'WantedBy=default.target',
    ])
      expect(text.split('\n')).toContain(line);
    expect(text).toMatch(/^WatchdogSec=\d+/m);
    expect(text).toMatch(/^After=.*\blibvirtd\.service\b/m);
    expect(text).toMatch(/^ExecStart=%h\/\.local\/bin\/qemu-dbus-bridge run --systemd-instance=%i$/m);
  });

  it('records the systemd-analyze security exposure (offline) and keeps it below 2.0', () => {
    const r = analyze(['security', '--offline=yes', '--user', '--no-pager', instance(UNIT, 'demo')]);
    const m = /Overall exposure level for qemu-dbus-bridge@demo\.service: (\d+\.\d+) (\w+)/.exec(r.out);
    expect(m, r.out + r.err).not.toBeNull();
    const score = Number(m![1]);
    console.log(`systemd-analyze security --offline: exposure ${score} ${m![2]}`);
    expect(score).toBeLessThan(2.0);
  });
});

/** Who runs `systemd --test` ("Don't run test mode as root."): nobody when we are root. */
const NOBODY = 65534;

/** `systemd-escape --template=…`: the unit name a user gets for a VM name. */
function escapedUnit(vm: string): string {
  const r = spawnSync('systemd-escape', ['--template=qemu-dbus-bridge@.service', vm], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`systemd-escape could not run: ${r.error?.message ?? r.stderr}`);
  return r.stdout.trim();
}

/** Splits systemd's quoted "Command Line:" (shell style: "…" with \\ \" \$ \` escapes). */
function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]);
  return words;
}

/**
 * The ExecStart argv the real systemd builds for `unit` from the template installed the way
 * systemd/README.md says (~/.config/systemd/user/), specifiers expanded: `systemd --test --user`
 * loads and dumps the units without starting anything.
 */
function execStartOf(unit: string, home: string, runtime: string): string[] {
  const bin = ['/lib/systemd/systemd', '/usr/lib/systemd/systemd'].find((b) => fs.existsSync(b));
  if (!bin) throw new Error('systemd is not installed (no /lib/systemd/systemd): apt-get install systemd');
  const asRoot = process.getuid?.() === 0;
  const r = spawnSync(bin, ['--test', '--user', '--no-pager', `--unit=${unit}`], {
    env: { PATH: process.env.PATH, HOME: home, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_LEVEL: 'err' },
    encoding: 'utf8',
    timeout: 60_000,
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  if (r.error) throw new Error(`systemd --test could not run: ${r.error.message}`);
  const block = r.stdout.split(/\n\t-> Unit /).find((b) => b.startsWith(`${unit}:`));
  const cmd = block && /-> ExecStart:\n\t+Command Line: (.*)/.exec(block);
  if (!cmd) throw new Error(`systemd --test printed no ExecStart for ${unit} (exit ${r.status}): ${r.stderr.slice(0, 500)}`);
  return splitCommandLine(cmd[1]);
}

describe('VM names with a dash, a space and non-ASCII, from systemd-escape to the attached bridge', () => {
  const NAMES = ['win-11', 'my vm', 'ünïcode'];
  let home: string;
  let runtime: string;
  let cli: string;
  let bus: DbusDaemon;
  const guests = new Map<string, Guest>();

  beforeAll(async () => {
    const root = tempDir('unit-names');
    home = path.join(root, 'home');
    runtime = path.join(root, 'run');
    fs.mkdirSync(path.join(home, '.config/systemd/user'), { recursive: true });
    fs.mkdirSync(path.join(home, '.local/bin'), { recursive: true });
    fs.mkdirSync(runtime, { mode: 0o700 });
    fs.copyFileSync(UNIT, path.join(home, '.config/systemd/user', path.basename(UNIT)));
    fs.writeFileSync(path.join(home, '.local/bin/qemu-dbus-bridge'), '#!/bin/sh\n', { mode: 0o755 });
    if (process.getuid?.() === 0) {
      fs.chmodSync(root, 0o755);
      for (const p of [home, runtime, ...['.config', '.config/systemd', '.config/systemd/user', '.local', '.local/bin'].map((d) => path.join(home, d))]) fs.chownSync(p, NOBODY, NOBODY);
    }
    cli = bundleCli('unit-names');
    bus = await startDbusDaemon();
    // paused (-S): the bridge only needs each VM's D-Bus objects, not a running guest
    for (const name of NAMES) guests.set(name, await startGuest({ scenario: 'idle', busAddress: bus.address, name, audiodev: 'none', extraArgs: ['-S'] }));
  }, 180_000);

  afterAll(async () => {
    for (const g of guests.values()) await g.stop();
    await bus?.stop();
    if (cli) fs.rmSync(path.dirname(cli), { recursive: true, force: true });
  });

  /** Runs the CLI with `args` (the unit's ExecStart minus the program) until it attached; returns its log. */
  async function attachWith(args: string[]): Promise<string> {
    const b = startBridgeProcess([...args, '--address', bus.address, '--audio', 'none', '--camera', 'none', '--log-format', 'json'], {
      cli,
      cleanEnv: true,
      env: { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') },
    });
    try {
      await waitFor(`attached (${args.join(' ')})`, 60_000, () => /attached to VM/.test(b.log()) || !b.running);
    } finally {
      await b.stop();
    }
    return b.log();
  }

  function attachedTo(log: string): { vm: string; uuid: string } | undefined {
    for (const line of log.split('\n')) {
      if (!line.startsWith('{')) continue;
      const j = JSON.parse(line) as { msg?: string; uuid?: string };
      const m = /^attached to VM '(.*)'$/.exec(j.msg ?? '');
      if (m) return { vm: m[1], uuid: j.uuid ?? '' };
    }
    return undefined;
  }

  for (const name of NAMES) {
    it(`"${name}": the escaped unit verifies, systemd passes the raw instance, and the CLI attaches to that VM`, async () => {
      const unit = escapedUnit(name);
      const r = analyze(['verify', '--user', instance(UNIT, unit.slice('qemu-dbus-bridge@'.length, -'.service'.length))]);
      expect(r.err + r.out).toBe('');
      const argv = execStartOf(unit, home, runtime);
      expect(argv.slice(0, 2)).toEqual([path.join(home, '.local/bin/qemu-dbus-bridge'), 'run']);
      const log = await attachWith(argv.slice(1));
      expect(attachedTo(log), log).toEqual({ vm: name, uuid: guests.get(name)!.uuid });
    }, 120_000);
  }

  it('"win-11" typed without escaping (qemu-dbus-bridge@win-11) reaches the same VM', async () => {
    const argv = execStartOf('qemu-dbus-bridge@win-11.service', home, runtime);
    const log = await attachWith(argv.slice(1));
    expect(attachedTo(log), log).toEqual({ vm: 'win-11', uuid: guests.get('win-11')!.uuid });
  }, 120_000);
});
