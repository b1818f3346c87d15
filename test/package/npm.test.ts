// The npm package from a clean prefix: `npm pack` makes the tarball, `npm install -g` installs it
// into a temporary prefix on this machine (which has the -dev libraries), building the addon on
// install; the installed command then runs `--help`, `list` against a real QEMU on a private bus,
// and `install-unit`, whose unit systemd-analyze accepts. A missing -dev library names the
// Debian package. The registry (or npm's cache) provides the dependencies.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDON_EXPORTS } from '../../src/native';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { tempDir } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { REPO, ok, run } from './exec';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

describe('npm pack + npm install -g into a temporary prefix', () => {
  let dir: string;
  let prefix: string;
  let pkgDir: string;
  let bin: string;
  let bus: DbusDaemon;
  let guest: Guest;

  beforeAll(async () => {
    dir = tempDir('pkg-npm');
    prefix = path.join(dir, 'prefix');
    await ok('npm', ['pack', '--pack-destination', dir], { what: 'npm pack (prepack: tsc + man page)' });
    const tarball = path.join(dir, `qemu-dbus-bridge-${VERSION}.tgz`);
    // --nodedir: this machine cannot reach nodejs.org for headers; NodeSource's Node ships them.
    await ok(
      'npm',
      ['install', '-g', '--prefix', prefix, '--nodedir=/usr', '--allow-scripts=qemu-dbus-bridge,usocket', '--no-audit', '--no-fund', tarball],
      { cwd: dir, what: 'npm install -g (builds usocket and the addon)' },
    );
    pkgDir = path.join(prefix, 'lib/node_modules/qemu-dbus-bridge');
    bin = path.join(prefix, 'bin/qemu-dbus-bridge');
    bus = await startDbusDaemon();
    guest = await startGuest({ scenario: 'idle', busAddress: bus.address, name: `npm${process.pid}` });
  }, 600_000);

  afterAll(async () => {
    await guest?.stop();
    await bus?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('puts the command on the prefix PATH and the man page under share/man', () => {
    expect(fs.realpathSync(bin)).toBe(path.join(pkgDir, 'bin/qemu-dbus-bridge'));
    expect(fs.readFileSync(path.join(prefix, 'share/man/man1/qemu-dbus-bridge.1'), 'utf8')).toMatch(/^\.SH EXIT STATUS$/m);
  });

  it('built every native addon on install, and each loads', async () => {
    // Reading every export of `native` loads each addon (src/native.ts loads them lazily).
    const script = `const { native } = require(${JSON.stringify(path.join(pkgDir, 'dist/src/native.js'))}); console.log(Object.keys(native).filter((k) => native[k] === undefined).join(',') || 'loaded')`;
    const out = await ok(process.execPath, ['-e', script], { what: 'load the addons' });
    expect(out.trim()).toBe('loaded');
    for (const name of Object.keys(ADDON_EXPORTS)) expect(fs.existsSync(path.join(pkgDir, `build/Release/${name}.node`)), name).toBe(true);
  });

  it('runs --help', async () => {
    const out = await ok(bin, ['--help'], { what: '--help' });
    for (const cmd of ['run', 'list', 'devices', 'doctor', 'install-unit']) expect(out).toMatch(new RegExp(`^ +qemu-dbus-bridge ${cmd} `, 'm'));
    expect(out).toContain('Exit codes:');
  });

  it('runs list against a real QEMU on a private bus', async () => {
    const out = await ok(bin, ['list', '--address', bus.address], { what: 'list' });
    expect(out).toMatch(new RegExp(`^npm${process.pid} `, 'm'));
  });

  it('demo, which needs a clone, says so instead of failing on a missing file', async () => {
    const r = await run(bin, ['demo'], { what: 'demo' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'qemu-dbus-bridge: demo boots the test guest, which only a clone of the repository has [EDEMO_NEEDS_CLONE] Fix: git clone the repository and run npm run demo there\n',
    );
  });

  it('install-unit writes a unit that starts this installation and passes systemd-analyze verify', async () => {
    const units = path.join(dir, 'units');
    const out = await ok(bin, ['install-unit', '--dir', units], { what: 'install-unit' });
    expect(out).toContain(`installed: ${path.join(units, 'qemu-dbus-bridge@.service')}`);
    const unit = fs.readFileSync(path.join(units, 'qemu-dbus-bridge@.service'), 'utf8');
    expect(unit).toMatch(new RegExp(`^ExecStart=${path.join(pkgDir, 'bin/qemu-dbus-bridge')} run --systemd-instance=%i$`, 'm'));
    fs.symlinkSync('qemu-dbus-bridge@.service', path.join(units, 'qemu-dbus-bridge@pkgtest.service'));
    const run_ = path.join(dir, 'run');
    fs.mkdirSync(run_, { mode: 0o700 });
    const r = await run('systemd-analyze', ['verify', '--user', path.join(units, 'qemu-dbus-bridge@pkgtest.service')], {
      what: 'systemd-analyze verify',
      env: { PATH: process.env.PATH, XDG_RUNTIME_DIR: run_, HOME: dir },
    });
    expect(r.stderr + r.stdout).toBe('');
    expect(r.code).toBe(0);
  });

  it('a missing -dev library fails the install with the Debian package to install', async () => {
    // npm rebuild runs the package's install script again, the way `npm install -g` did.
    const r = await run('npm', ['rebuild', '-g', '--prefix', prefix, '--nodedir=/usr', '--foreground-scripts', 'qemu-dbus-bridge'], {
      cwd: dir,
      what: 'npm rebuild without the -dev libraries',
      env: { ...process.env, PKG_CONFIG_LIBDIR: path.join(dir, 'no-pkgconfig') },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toContain('fix: sudo apt-get install libpipewire-0.3-dev libpulse-dev libevdev-dev libvirt-dev\n');
  });

  it('npm uninstall -g removes the command again', async () => {
    await ok('npm', ['uninstall', '-g', '--prefix', prefix, 'qemu-dbus-bridge'], { cwd: dir, what: 'npm uninstall -g' });
    expect(fs.existsSync(bin)).toBe(false);
    expect(fs.existsSync(pkgDir)).toBe(false);
    expect(fs.existsSync(path.join(prefix, 'share/man/man1/qemu-dbus-bridge.1'))).toBe(false);
  });
});
