// Kernel tier, systemd group (runs INSIDE the guest with systemd as PID 1, as the systemd.run= unit,
// root; test/kernel/systemd.test.ts boots it): the unit file as shipped, installed the way
// systemd/README.md says (`npm install --global --prefix ~/.local`, the template copied to
// ~/.config/systemd/user/, a config file per VM), run by the real `systemd --user` of an
// unprivileged user in the groups input and video, for a VM whose name has a dash (win-11, started
// as `qemu-dbus-bridge@win-11`). The VM is the project's fake QEMU peer (test/fakes/qemu-peer.ts) on
// that user's session bus, in its own process as that user; input comes from a uinput keyboard.
// Then a probe unit with the same hardening block reports which options a user manager enforces.
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EV_KEY } from '../../../src/input/events';
import { sleep, waitFor } from '../../harness/procs';
import { fakeVmBundle } from './fake-vm-source';
import { UinputFactory } from './tools';

const ROOT = path.join(__dirname, '../../..');
/**
 * The checkout as the units see it. The unit runs with PrivateTmp=yes, so a checkout under /tmp
 * (a CI clone) is invisible to it: the installed program and the probe would not be found
 * ("Failed to locate executable"). The checkout is bind-mounted here in the guest (its overlay)
 * before anything is installed from it, as a user's clone under ~/src would be visible.
 */
const CHECKOUT = '/opt/qdb-checkout';
const USER = 'qdbuser';
const UID = 2000;
const HOME = `/home/${USER}`;
const VM = 'win-11';
const UNIT = `qemu-dbus-bridge@${VM}.service`;
const KEY_A = 30;
const KEY_LEFTSHIFT = 42;
const ENV = { XDG_RUNTIME_DIR: `/run/user/${UID}`, DBUS_SESSION_BUS_ADDRESS: `unix:path=/run/user/${UID}/bus`, HOME, PATH: '/usr/local/bin:/usr/bin:/bin' };

const userArgv = (cmd: string, args: string[]): string[] => ['-u', USER, '--', 'env', ...Object.entries(ENV).map(([k, v]) => `${k}=${v}`), cmd, ...args];

/**
 * Runs a command to its end without blocking this process: the fake VM's and the uinput factory's
 * output is read meanwhile, and vitest's worker must keep answering its runner (a long spawnSync
 * made it report "Timeout calling onTaskUpdate").
 */
function run(cmd: string, args: string[]): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const p = spawn(cmd, args, { cwd: '/' });
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (status) => resolve({ status, out: out.trim() }));
  });
}

/** A command as the unprivileged user (runuser: its groups from /etc/group, like a login). */
function asUser(cmd: string, args: string[]): Promise<{ status: number | null; out: string }> {
  return run('runuser', userArgv(cmd, args));
}

async function root(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.out}`);
  return r.out;
}

/** `systemctl --user show` properties of a unit */
function show(unit: string, ...props: string[]): Record<string, string> {
  const r = spawnSync('runuser', userArgv('systemctl', ['--user', 'show', unit, ...props.map((p) => `--property=${p}`)]), { encoding: 'utf8', timeout: 30_000, cwd: '/' });
  return Object.fromEntries(`${r.stdout}`.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function journal(unit: string, lines = 30): string {
  return spawnSync('journalctl', ['--no-pager', '-o', 'cat', `_UID=${UID}`, `_SYSTEMD_USER_UNIT=${unit}`, '-n', String(lines)], { encoding: 'utf8' }).stdout;
}

/** The fake VM as the user, on the user's session bus: `FAKE-VM up`, then `FAKE-VM keys <json>` on change. */
class FakeVm {
  readonly lines: string[] = [];
  private constructor(readonly proc: ChildProcess) {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  static async start(name: string): Promise<FakeVm> {
    // Bundled on the host before the boot (test/kernel/systemd.test.ts): esbuild inside the TCG
    // guest stalled the group past its 600 s limit in a full run.
    const bundle = fakeVmBundle(ROOT);
    if (!fs.existsSync(bundle)) throw new Error(`${bundle} is missing: the host side bundles it before the boot`);
    fs.chmodSync(path.dirname(bundle), 0o755);
    const proc = spawn('runuser', userArgv('env', [`NODE_PATH=${ROOT}/node_modules`, process.execPath, bundle, name]), {
      stdio: ['pipe', 'pipe', 'inherit'],
      cwd: '/',
    });
    const vm = new FakeVm(proc);
    await waitFor('the fake VM on the user session bus', 60_000, () => {
      const bad = vm.lines.find((l) => l.startsWith('FAKE-VM failed'));
      if (bad || proc.exitCode !== null) throw new Error(bad ?? `fake VM exited ${proc.exitCode}`);
      return vm.lines.includes('FAKE-VM up');
    });
    return vm;
  }
  /** keys the VM has seen so far */
  keys(): ['press' | 'release', number][] {
    const last = [...this.lines].reverse().find((l) => l.startsWith('FAKE-VM keys '));
    return last ? (JSON.parse(last.slice('FAKE-VM keys '.length)) as ['press' | 'release', number][]) : [];
  }
  async stop(): Promise<void> {
    this.proc.stdin!.end();
    await Promise.race([new Promise((r) => this.proc.once('exit', r)), sleep(5000)]);
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

let vm: FakeVm;
let uinput: UinputFactory;
let kbd = '';

beforeAll(async () => {
  const t0 = Date.now();
  const step = (what: string): void => console.log(`setup: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await root('useradd', ['-m', '-u', String(UID), '-G', 'input,video', '-s', '/bin/bash', USER]);
  await root('modprobe', ['uinput']);
  await root('modprobe', ['evdev']);
  await root('modprobe', ['v4l2loopback', 'devices=1', 'video_nr=10', 'exclusive_caps=1', 'card_label=VM Camera']);
  // systemd.run= boots sysinit.target and the command only: the system bus and logind (which
  // user@.service's runtime dir needs) are started here
  await root('systemctl', ['start', 'dbus.socket', 'dbus.service', 'systemd-logind.service']);
  await root('systemctl', ['start', `user@${UID}.service`]);
  step('user manager up');
  // systemd/README.md, Install: the program under ~/.local, the unit in ~/.config/systemd/user.
  // There the user owns the clone; here the checkout is root's, and npm chmods the bin it links:
  // give the user that one file (in the guest's overlay only).
  await root('mkdir', ['-p', CHECKOUT]);
  await root('mount', ['--bind', ROOT, CHECKOUT]);
  await root('chown', [USER, path.join(CHECKOUT, 'bin/qemu-dbus-bridge')]);
  const npmDone = asUser('npm', ['install', '--global', '--prefix', `${HOME}/.local`, '--offline', '--no-audit', '--no-fund', CHECKOUT]);
  const unitDir = `${HOME}/.config/systemd/user`;
  const cfgDir = `${HOME}/.config/qemu-dbus-bridge`;
  expect((await asUser('mkdir', ['-p', unitDir, cfgDir])).status).toBe(0);
  expect((await asUser('cp', [path.join(ROOT, 'systemd/qemu-dbus-bridge@.service'), unitDir])).status).toBe(0);
  fs.writeFileSync(
    `${cfgDir}/${VM}.toml`,
    ['[audio]', 'backend = "none"', '[camera]', 'device = "/dev/video10"', 'size = "320x240"', 'fps = 15', '[input]', 'devices = ["name:^qdb sd keyboard$"]', 'grab = true', ''].join('\n'),
  );
  await root('chown', ['-R', `${USER}:`, `${HOME}/.config`]);
  expect((await asUser('systemctl', ['--user', 'daemon-reload'])).status).toBe(0);
  uinput = await UinputFactory.start();
  kbd = await uinput.create('kbd', 'keyboard', 'qdb sd keyboard', 0x1d6b, 0x0104);
  await waitFor('udev: the keyboard in group input', 30_000, () => (fs.statSync(kbd).mode & 0o060) === 0o060);
  step('uinput keyboard ready');
  vm = await FakeVm.start(VM);
  step('fake VM up');
  const npm = await npmDone;
  if (npm.status !== 0) throw new Error(`npm install --global --prefix ~/.local: ${npm.out}`);
  step('npm install --global --prefix ~/.local done');
}, 400_000);

afterAll(async () => {
  console.log(`--- journal of ${UNIT}:\n${journal(UNIT, 60)}`);
  await uinput?.stop();
  await vm?.stop();
});

async function pressed(code: number, from: number, what: 'press' | 'release'): Promise<void> {
  await waitFor(`the VM to see ${what} of key ${code}`, 20_000, () => vm.keys().slice(from).some(([k, c]) => k === what && c === code));
}

describe(`${UNIT} under a real systemd --user (user in groups input and video)`, () => {
  it('starts with Type=notify: systemctl --user start returns once READY=1 is sent, the unit is active', async () => {
    const t = Date.now();
    const r = await asUser('systemctl', ['--user', 'start', UNIT]);
    console.log(`systemctl --user start ${UNIT}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(r.status, `${r.out}\n${journal(UNIT)}`).toBe(0);
    expect(show(UNIT, 'ActiveState', 'SubState', 'NRestarts')).toEqual({ ActiveState: 'active', SubState: 'running', NRestarts: '0' });
  });

  it('STATUS= shows the routes: the camera on /dev/video10 and the grabbed keyboard', async () => {
    let status = '';
    await waitFor('STATUS= with both routes', 30_000, () => {
      status = show(UNIT, 'StatusText').StatusText;
      return status.includes('camera 320x240@15 → /dev/video10') && status.includes('input 1 device, grabbed');
    }).catch(() => undefined);
    console.log(`StatusText=${status}`);
    expect(status).toMatch(/camera 320x240@15 → \/dev\/video10/);
    expect(status).toMatch(/input 1 device, grabbed/);
  });

  it('the instance name win-11 reached the program as the VM name (not win/11) and its config was read', () => {
    const j = journal(UNIT, 200);
    expect(j).toContain(`attached to VM '${VM}'`);
    expect(j).toContain(`config: ${HOME}/.config/qemu-dbus-bridge/${VM}.toml`);
  });

  it('a key typed on the real keyboard reaches the VM through the hardened unit', async () => {
    const from = vm.keys().length;
    await uinput.frame('kbd', [EV_KEY, KEY_A, 1]);
    await uinput.frame('kbd', [EV_KEY, KEY_A, 0]);
    await pressed(KEY_A, from, 'press');
    await pressed(KEY_A, from, 'release');
  });

  it('the camera route writes frames a consumer can read from /dev/video10', async () => {
    const file = '/tmp/qdb-sd-frames.raw';
    await root('v4l2-ctl', ['-d', '/dev/video10', '--stream-mmap', '--stream-count=2', `--stream-to=${file}`]);
    expect(fs.statSync(file).size).toBe(2 * 320 * 240 * 2);
  });

  it('the watchdog keeps it alive: active for longer than WatchdogSec with pings arriving and no restart', async () => {
    const p = show(UNIT, 'WatchdogUSec', 'ActiveEnterTimestampMonotonic');
    expect(p.WatchdogUSec).toBe('20s');
    const since = Number(p.ActiveEnterTimestampMonotonic);
    const nowUs = (): number => Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1e6;
    const first = Number(show(UNIT, 'WatchdogTimestampMonotonic').WatchdogTimestampMonotonic);
    await waitFor('25 s of activity', 60_000, () => nowUs() - since > 25e6, 500);
    const after = show(UNIT, 'ActiveState', 'NRestarts', 'WatchdogTimestampMonotonic');
    console.log(`watchdog: active ${((nowUs() - since) / 1e6).toFixed(1)} s, last ping moved ${first} -> ${after.WatchdogTimestampMonotonic}`);
    expect(after.ActiveState).toBe('active');
    expect(after.NRestarts).toBe('0');
    expect(Number(after.WatchdogTimestampMonotonic)).toBeGreaterThan(first);
    expect(journal(UNIT, 200)).not.toMatch(/[Ww]atchdog timeout/);
  });

  it('SIGKILL: Restart=on-failure brings it back, READY again, and the camera device works for the new process', async () => {
    const before = Number(show(UNIT, 'NRestarts').NRestarts);
    expect((await asUser('systemctl', ['--user', 'kill', '--signal=SIGKILL', UNIT])).status).toBe(0);
    await waitFor('a restart after SIGKILL', 90_000, () => {
      const s = show(UNIT, 'NRestarts', 'ActiveState', 'SubState');
      return Number(s.NRestarts) === before + 1 && s.ActiveState === 'active' && s.SubState === 'running';
    }, 500);
    let status = '';
    await waitFor('the camera route running again', 60_000, () => {
      status = show(UNIT, 'StatusText').StatusText;
      return status.includes('camera 320x240@15 → /dev/video10') && !/camera[^·]*retrying/.test(status);
    }).catch(() => undefined);
    expect(status, journal(UNIT)).toMatch(/camera 320x240@15 → \/dev\/video10/);
    expect(status).not.toMatch(/retrying/);
  });

  it('systemctl --user stop releases a key held on the keyboard: the VM sees the release', async () => {
    // the restarted bridge grabs the keyboard again: a probe key says when its route is live
    await waitFor('the restarted bridge forwarding keys', 60_000, async () => {
      const from = vm.keys().length;
      await uinput.frame('kbd', [EV_KEY, KEY_A, 1]);
      await uinput.frame('kbd', [EV_KEY, KEY_A, 0]);
      await sleep(300);
      return vm.keys().slice(from).some(([k, c]) => k === 'release' && c === KEY_A);
    }, 500);
    const from = vm.keys().length;
    await uinput.frame('kbd', [EV_KEY, KEY_LEFTSHIFT, 1]);
    await pressed(KEY_LEFTSHIFT, from, 'press');
    const stopFrom = vm.keys().length;
    const t = Date.now();
    expect((await asUser('systemctl', ['--user', 'stop', UNIT])).status).toBe(0);
    console.log(`systemctl --user stop: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await pressed(KEY_LEFTSHIFT, stopFrom, 'release');
    expect(show(UNIT, 'ActiveState', 'Result')).toEqual({ ActiveState: 'inactive', Result: 'success' });
    await uinput.frame('kbd', [EV_KEY, KEY_LEFTSHIFT, 0]);
  });
});

describe('which hardening options a user manager enforces (a probe unit with the same hardening block)', () => {
  let seen: Record<string, string> = {};
  let base: Record<string, string> = {};

  beforeAll(async () => {
    // what the probe could do WITHOUT the hardening, as the same user: the baseline
    fs.chmodSync('/dev/uinput', 0o666); // open to everybody, but outside DeviceAllow=
    fs.mkdirSync('/srv/qdb-probe', { recursive: true });
    fs.chmodSync('/srv/qdb-probe', 0o1777); // writable by the user, but under ProtectSystem=strict
    fs.writeFileSync('/tmp/qdb-outside-marker', '');
    const probe = path.join(CHECKOUT, 'test/kernel/guest/hardening-probe.js');
    const plain = await asUser(process.execPath, [probe, kbd]);
    base = JSON.parse(plain.out) as Record<string, string>;
    const unitText = fs.readFileSync(path.join(ROOT, 'systemd/qemu-dbus-bridge@.service'), 'utf8');
    const hardening = unitText.slice(unitText.indexOf('# --- Hardening'), unitText.indexOf('[Install]'));
    const unitDir = `${HOME}/.config/systemd/user`;
    fs.writeFileSync(
      `${unitDir}/qdb-hardening-probe.service`,
      `[Service]\nType=oneshot\nExecStart=${process.execPath} ${probe} ${kbd}\nStandardOutput=file:/run/user/${UID}/probe.json\n${hardening}`,
    );
    await root('chown', [`${USER}:`, `${unitDir}/qdb-hardening-probe.service`]);
    expect((await asUser('systemctl', ['--user', 'daemon-reload'])).status).toBe(0);
    const r = await asUser('systemctl', ['--user', 'start', 'qdb-hardening-probe.service']);
    expect(r.status, `${r.out}\n${journal('qdb-hardening-probe.service')}`).toBe(0);
    seen = JSON.parse(fs.readFileSync(`/run/user/${UID}/probe.json`, 'utf8')) as Record<string, string>;
    console.log(`hardening probe, plain: ${JSON.stringify(base)}`);
    console.log(`hardening probe, in the unit: ${JSON.stringify(seen)}`);
  }, 180_000);

  it('enforced: PrivateUsers (own user namespace), the input and video groups still open the devices', () => {
    expect([base.userns === seen.userns, seen.evdev, seen.video]).toEqual([false, 'ok', 'ok']);
  });
  it('enforced: ProtectSystem=strict (a world-writable dir under /srv is read-only) and ProtectHome=read-only', () => {
    expect([base.writeSrv, seen.writeSrv, base.writeHome, seen.writeHome]).toEqual(['ok', 'EROFS', 'ok', 'EROFS']);
  });
  it('enforced: PrivateTmp (the outside /tmp is not visible), PrivateNetwork, PrivateIPC, ProtectHostname (own namespaces)', () => {
    expect([base.tmpMarker, seen.tmpMarker]).toEqual(['visible', 'hidden']);
    expect([base.netns === seen.netns, base.ipcns === seen.ipcns, base.utsns === seen.utsns]).toEqual([false, false, false]);
  });
  it('enforced: RestrictAddressFamilies=AF_UNIX, SystemCallFilter (~@resources), NoNewPrivileges, no capabilities, UMask', () => {
    expect([base.inet, seen.inet]).toEqual(['ok', 'EAFNOSUPPORT']);
    expect([base.setpriority, seen.setpriority]).toEqual(['ok', 'EPERM']);
    expect([seen.noNewPrivs, seen.seccomp, seen.capBnd, seen.umask]).toEqual(['1', '2', '0000000000000000', '0077']);
  });
  it('NOT enforced: DevicePolicy=closed + DeviceAllow= (a 0666 device outside the allow-list opens)', () => {
    expect([base.uinput, seen.uinput]).toEqual(['ok', 'ok']);
  });
  it('NOT enforced: ProtectProc=invisible (PID 1 of root stays listed in /proc)', () => {
    expect([base.pid1, seen.pid1]).toEqual(['visible', 'visible']);
  });
});
