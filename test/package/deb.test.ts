// The Debian package from a clean system: scripts/build-deb.sh builds it, lintian checks it, and
// it is installed with apt into a clean Debian 12 root (debootstrap from Debian's archive,
// cached by scripts/package-root.sh) where a real `systemd --user` of an ordinary user runs the
// unit for the test guest (QEMU on the host, its bus mounted into the root): the bridge attaches,
// replays keys from a FIFO into the VM (the guest logs them), is disabled, and `apt remove`
// must leave the root exactly as it was. Needs root (overlay mount, chroot, cgroups).
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventScript } from '../../src/input/replay-writer';
import { ADDON_EXPORTS } from '../../src/native';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { sleep, tempDir, waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { REPO, ok } from './exec';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const KEY_H = 35;
const KEY_I = 23;

let deb: string;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the package tests need root (debootstrap, overlay mount, chroot): run them as root');
  // --prebuilt: `npm test` / `npm run test:package` ran scripts/setup.sh, which built everything.
  deb = (await ok('bash', ['scripts/build-deb.sh', '--prebuilt'], { what: 'build-deb', env: { ...process.env, QDB_SETUP_QUIET: '1' } })).trim().split('\n').pop()!;
}, 600_000);

describe('the .deb as built', () => {
  it('passes lintian (pedantic, info, experimental) with nothing but the explained overrides', async () => {
    // --fail-on makes lintian exit non-zero on any reported tag; the tags are the diagnostic.
    const stdout = await ok('lintian', ['--pedantic', '-I', '-E', '--fail-on', 'error,warning,info,pedantic,experimental', deb], { what: 'lintian' });
    expect(stdout.split('\n').filter((l) => /^[EWIPXO]: /.test(l))).toEqual([]);
  });

  it('depends on the runtime libraries it links and on the Node it was built for', async () => {
    const depends = (await ok('dpkg-deb', ['-f', deb, 'Depends'], { what: 'dpkg-deb -f' }))
      .split(',')
      .map((d) => d.trim());
    for (const lib of ['libpipewire-0.3-0', 'libpulse0', 'libyuv0', 'libevdev2']) expect(depends.some((d) => d.startsWith(`${lib} `) || d === lib)).toBe(true);
    expect(depends).toContain('nodejs (>= 20)');
    expect(depends).toContain('nodejs (<< 21)');
  });
});

describe('the .deb in a clean Debian 12 root, enabled under systemd --user', () => {
  let root: string;
  let bus: DbusDaemon;
  let guest: Guest;
  let work: string;
  let script: ChildProcess;
  let out = '';
  let keysSeen: string | undefined;
  const sections = new Map<string, string>();

  beforeAll(async () => {
    root = (await ok('bash', ['scripts/package-root.sh'], { what: 'package-root (cached after the first run)' })).trim().split('\n').pop()!;
    bus = await startDbusDaemon({ anyUser: true });
    const vm = `pkg${process.pid}`;
    guest = await startGuest({ scenario: 'keys', busAddress: bus.address, name: vm });
    const fifo = path.join(bus.dir, 'keys.fifo');
    // The user's own FIFO (the unit's bridge opens it read-write, so it never sees EOF).
    spawnSync('mkfifo', ['-m', '0600', fifo]);
    fs.chownSync(fifo, 1000, 1000);
    work = tempDir('pkg-root');

    const t0 = Date.now();
    script = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'unshare', '--mount', '--pid', '--fork', '--kill-child', 'bash', path.join(__dirname, 'deb-root.sh')], {
      env: { PATH: process.env.PATH, ROOT: root, WORK: work, DEB: deb, VMDIR: bus.dir, VM: vm },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    script.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    script.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => script.on('exit', (code) => resolve(code)));
    await waitFor('the unit to be started in the root (## running)', 240_000, () => {
      if (script.exitCode !== null) throw new Error(`deb-root.sh exited early:\n${out}`);
      return out.includes('## running\n');
    }, 200);
    console.log(`clean root: install, doctor, systemd --user, unit started: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // Keys through the FIFO the unit's bridge replays into the VM; the guest logs each event.
    try {
      await guest.waitForSerial(/MARK keys-ready/, 120_000);
      const from = guest.serial().length;
      // O_NONBLOCK: ENXIO until the bridge has the FIFO open for reading.
      const fd = await waitFor<number>('the bridge to open the replay FIFO', 20_000, () => {
        try {
          return fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        } catch {
          return 0;
        }
      }, 100);
      fs.writeSync(fd, new EventScript().tap(KEY_H).tap(KEY_I).encode());
      fs.closeSync(fd);
      await waitFor('the guest to log h and i', 30_000, () => {
        const text = guest.serial().slice(from);
        return [KEY_H, KEY_I].every((k) => new RegExp(`type=1 code=${k} value=1`).test(text) && new RegExp(`type=1 code=${k} value=0`).test(text));
      }, 200);
      keysSeen = guest.serial().slice(from);
    } catch (err) {
      keysSeen = undefined;
      console.log(`keys: ${(err as Error).message}`);
    }

    script.stdin!.end('continue\n');
    const code = await Promise.race([exited, sleep(120_000).then(() => 'timeout' as const)]);
    console.log(`clean root total: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (code !== 0) throw new Error(`deb-root.sh: exit ${code}\n${out}`);
    for (const m of out.matchAll(/^## (.+)\n([\s\S]*?)(?=^## |$(?![\s\S]))/gm)) sections.set(m[1], m[2]);
  }, 600_000);

  afterAll(async () => {
    if (script && script.exitCode === null) script.kill('SIGKILL');
    // The overlay's upper layer (what apt installed): failures quote the script's output instead.
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await guest?.stop();
    await bus?.stop();
  });

  const section = (name: string): string => {
    const s = sections.get(name);
    if (s === undefined) throw new Error(`no "## ${name}" in the root script's output:\n${out}`);
    return s;
  };

  it('installs with apt, its Depends resolved from Debian 12 alone', () => {
    expect(section('install')).toMatch(/^Setting up qemu-dbus-bridge \(/m);
    expect(section('install')).toContain('install ok installed');
  });

  it('puts the program on PATH, the user unit, the man page and the example config where promised', () => {
    const files = section('files').trim().split('\n').sort();
    expect(files).toEqual(
      [
        '/usr/bin/qemu-dbus-bridge',
        ...Object.keys(ADDON_EXPORTS).map((name) => `/usr/lib/qemu-dbus-bridge/build/Release/${name}.node`),
        '/usr/lib/systemd/user/qemu-dbus-bridge@.service',
        '/usr/share/doc/qemu-dbus-bridge/config-example.toml',
        '/usr/share/man/man1/qemu-dbus-bridge.1.gz',
      ].sort(),
    );
  });

  it('runs --version as an ordinary user', () => {
    expect(section('version').trim()).toBe(`${VERSION}\nexit 0`);
  });

  it('doctor finds the VM and names what this bare root lacks (no sound server)', () => {
    const doctor = section('doctor');
    expect(doctor).toMatch(/^\[ok *\] VM 'pkg\d+': reachable/m);
    expect(doctor).toMatch(/^\[FAIL\] sound server/m);
    expect(doctor).toMatch(/^exit 1$/m);
  });

  it('the unit runs under a real systemd --user: enabled, active, ready, status from the bridge', () => {
    const s = section('systemd');
    expect(s).toMatch(/^user manager: (running|degraded)$/m);
    expect(s).toMatch(/^ActiveState=active$/m);
    expect(s).toMatch(/^SubState=running$/m);
    expect(s).toMatch(/^FragmentPath=\/usr\/lib\/systemd\/user\/qemu-dbus-bridge@\.service$/m);
    expect(s).toMatch(/^StatusText=.+/m);
    expect(s).toMatch(/^enabled$/m);
  });

  it('the unit bridges the test guest: keys replayed from the FIFO reach the VM', () => {
    expect(keysSeen, `the guest did not log the keys; root script output:\n${out}`).toBeDefined();
  });

  it('disable --now stops the bridge cleanly (exit status 0)', () => {
    const s = section('disable');
    expect(s).toMatch(/^ActiveState=inactive$/m);
    expect(s).toMatch(/^ExecMainStatus=0$/m);
  });

  it('leaves no cgroup of the user manager behind on the host', () => {
    const cg = /^cgroup: (\S+)$/m.exec(section('systemd'))?.[1];
    expect(cg).toMatch(/^qdb-pkg-pkg\d+-\d+$/);
    for (const h of ['systemd', 'unified']) expect(fs.existsSync(`/sys/fs/cgroup/${h}/${cg}`)).toBe(false);
  });

  it('apt remove leaves nothing behind (not even a dpkg record: no conffiles)', () => {
    expect(section('remove')).toMatch(/^Removing qemu-dbus-bridge \(/m);
    expect(section('remove')).toContain('dpkg-query: no packages found matching qemu-dbus-bridge');
    console.log(`conffiles of autoremoved dependencies (kept until purged):\n${section('dependency conffiles')}`);
    expect(section('leftovers').trim()).toBe('');
  });
});
