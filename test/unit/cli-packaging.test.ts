// What the installers ship besides the program: the user unit rendered for an installation
// (src/cli/unit.ts: install-unit and the Debian package build) and the man page generated from
// --help (scripts/gen-man.js + src/cli/man.ts, which needs the TypeScript build in dist/).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODE_MEANINGS } from '../../src/config/errors';
import { ALLOWED } from '../../src/config/schema';
import { COMMANDS } from '../../src/cli/main';
import { configDefaults } from '../../src/cli/man';
import { renderUnit, unitInvocation, userUnitDir, writeUnit } from '../../src/cli/unit';
import { bundleCli } from '../harness/cli';
import { tempDir } from '../harness/procs';

const ROOT = path.join(__dirname, '../..');
const TEMPLATE = fs.readFileSync(path.join(ROOT, 'systemd/qemu-dbus-bridge@.service'), 'utf8');

describe('renderUnit', () => {
  it('points ExecStart at the given program and changes no other line', () => {
    const out = renderUnit(TEMPLATE, '/usr/bin/qemu-dbus-bridge').split('\n');
    const before = TEMPLATE.split('\n');
    const changed = before.map((l, i) => [l, out[i]]).filter(([a, b]) => a !== b);
    expect(out.length).toBe(before.length);
    expect(changed).toEqual([['ExecStart=%h/.local/bin/qemu-dbus-bridge run --systemd-instance=%i', 'ExecStart=/usr/bin/qemu-dbus-bridge run --systemd-instance=%i']]);
  });

  it('refuses a template without exactly one ExecStart line to rewrite', () => {
    const none = TEMPLATE.replace(/^ExecStart=.*$/m, '');
    const two = TEMPLATE.replace(/^(ExecStart=.*)$/m, '$1\n$1');
    expect(() => renderUnit(none, '/usr/bin/x')).toThrow('found 0');
    expect(() => renderUnit(two, '/usr/bin/x')).toThrow('found 2');
  });

  it('refuses a relative program path', () => {
    expect(() => renderUnit(TEMPLATE, 'bin/qemu-dbus-bridge')).toThrow('absolute');
  });
});

describe('unitInvocation (how the benches start a bridge as the unit does)', () => {
  it("reads the template's arguments for the VM and every Environment= variable", () => {
    const { args, env } = unitInvocation(TEMPLATE, 'vm-1');
    expect(args).toEqual(['run', '--systemd-instance=vm-1']);
    const lines = TEMPLATE.split('\n').filter((l) => l.startsWith('Environment='));
    expect(Object.keys(env)).toHaveLength(lines.length);
    expect(env.LIBVIRT_AUTOSTART).toBe('0');
    expect(env.NODE_OPTIONS).toBe(/^Environment="NODE_OPTIONS=(.*)"$/m.exec(TEMPLATE)![1]);
  });

  it("takes systemd's quoting, several assignments a line", () => {
    const t = `ExecStart=/x run --systemd-instance=%i\nEnvironment="A=b c" D=e 'F=g h'\nEnvironment=I=`;
    expect(unitInvocation(t, 'v').env).toEqual({ A: 'b c', D: 'e', F: 'g h', I: '' });
  });

  it('refuses what it cannot reproduce: a specifier other than %i, an assignment without a name', () => {
    expect(() => unitInvocation('ExecStart=/x run --config=%h/c', 'v')).toThrow('%h/c');
    expect(() => unitInvocation('ExecStart=/x run\nEnvironment==b', 'v')).toThrow('without a name');
  });
});

describe('userUnitDir and writeUnit', () => {
  it('uses $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user', () => {
    expect(userUnitDir({ XDG_CONFIG_HOME: '/c', HOME: '/h' })).toBe('/c/systemd/user');
    expect(userUnitDir({ HOME: '/h' })).toBe('/h/.config/systemd/user');
    expect(userUnitDir({ XDG_CONFIG_HOME: 'relative', HOME: '/h' })).toBe('/h/.config/systemd/user');
  });

  it('reports an unchanged unit as unchanged and a new one as changed', () => {
    const dir = path.join(tempDir('unit-write'), 'systemd/user');
    expect(writeUnit(dir, 'a\n').changed).toBe(true);
    expect(writeUnit(dir, 'a\n').changed).toBe(false);
    expect(writeUnit(dir, 'b\n').changed).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'qemu-dbus-bridge@.service'), 'utf8')).toBe('b\n');
  });
});

describe('install-unit (the bundled CLI in a child process)', () => {
  let cli: string;
  beforeAll(() => {
    cli = bundleCli('install-unit');
  });
  const run = (args: string[]) => spawnSync(process.execPath, [cli, 'install-unit', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH } });

  it('writes the unit for this checkout and says how to enable it', () => {
    const dir = tempDir('unit-cmd');
    const r = run(['--dir', dir]);
    expect(r.status, r.stderr).toBe(0);
    const bin = path.join(ROOT, 'bin/qemu-dbus-bridge');
    expect(r.stdout.split('\n')[0]).toBe(`installed: ${path.join(dir, 'qemu-dbus-bridge@.service')} (ExecStart=${bin})`);
    expect(r.stdout).toContain('\n  systemctl --user enable --now qemu-dbus-bridge@<vm>\n');
    expect(fs.readFileSync(path.join(dir, 'qemu-dbus-bridge@.service'), 'utf8')).toBe(renderUnit(TEMPLATE, bin));
  });

  it('rejects a relative --bin as a usage error (exit 2)', () => {
    const r = run(['--dir', tempDir('unit-cmd'), '--bin', 'rel/path']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('qemu-dbus-bridge: --bin must be an absolute path without spaces, got "rel/path"\n');
  });
});

describe('configDefaults (docs/config-example.toml)', () => {
  const defaults = configDefaults(fs.readFileSync(path.join(ROOT, 'docs/config-example.toml'), 'utf8'));

  it('reads the uncommented values by table, lists included', () => {
    expect(defaults['audio.backend']).toBe('"auto"');
    expect('audio.latency_ms' in defaults).toBe(false); // an override, commented out
    expect(defaults['camera.size']).toBe('"1280x720"');
    expect(defaults['input.devices']).toBe('[]');
  });

  it('has no default for keys that are only commented examples', () => {
    expect('connection.address' in defaults).toBe(false);
  });

  it('names only keys the schema knows', () => {
    expect(Object.keys(defaults).filter((k) => !(k in ALLOWED))).toEqual([]);
  });
});

describe('package.json', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { main: string };

  it('main is the CLI module the bin shim loads, compiled from a source file that exists', () => {
    const shim = fs.readFileSync(path.join(ROOT, 'bin/qemu-dbus-bridge'), 'utf8');
    expect(shim).toContain("path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js')");
    expect(pkg.main).toBe('dist/src/cli/main.js');
    expect(fs.existsSync(path.join(ROOT, pkg.main.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(true);
  });

  it('main exists after the TypeScript build and exports main(argv)', () => {
    const file = path.join(ROOT, pkg.main);
    expect(fs.existsSync(file), `${pkg.main} missing: run npm run build:ts`).toBe(true);
    expect(typeof (require(file) as { main?: unknown }).main).toBe('function');
  });
});

describe('scripts/gen-man.js', () => {
  let dir: string;
  let page: string;

  beforeAll(() => {
    dir = tempDir('man');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/gen-man.js'), path.join(dir, 'qemu-dbus-bridge.1')], {
      encoding: 'utf8',
      env: { ...process.env, SOURCE_DATE_EPOCH: '1767225600' },
    });
    expect(r.status, r.stderr).toBe(0);
    page = fs.readFileSync(path.join(dir, 'qemu-dbus-bridge.1'), 'utf8');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('dates the page from SOURCE_DATE_EPOCH (reproducible package builds)', () => {
    expect(page.split('\n')[0]).toBe('.TH QEMU\\-DBUS\\-BRIDGE 1 "2026-01-01" "qemu\\-dbus\\-bridge 0.1.0" "User Commands"');
  });

  it('has a section for every command', () => {
    const sections = [...page.matchAll(/^\.SS (.+)$/gm)].map((m) => m[1].replace(/\\-/g, '-'));
    expect(sections).toEqual(COMMANDS);
  });

  it('lists every exit code', () => {
    for (const [code] of EXIT_CODE_MEANINGS) expect(page).toMatch(new RegExp(`^\\.B ${code}$`, 'm'));
  });

  it('lists every config key', () => {
    const keys = [...page.matchAll(/^\.B ([a-z_]+\.[a-z_]+)$/gm)].map((m) => m[1]);
    expect(keys).toEqual(Object.keys(ALLOWED));
  });

  it('renders with man without a single warning', () => {
    const r = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', path.join(dir, 'qemu-dbus-bridge.1')], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, MANPAGER: 'cat', MANWIDTH: '80' },
    });
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('EXIT STATUS');
  });
});
