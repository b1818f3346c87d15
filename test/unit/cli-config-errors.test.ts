// Bad configurations and flag combinations through the REAL CLI entry (src/cli/main.ts, bundled
// with esbuild so this test does not depend on a fresh dist/ or on other parts typechecking),
// in a child process: each must print exactly one line on stderr that names the problem and
// what is allowed, and exit with 2. The example config must load cleanly.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readConfigFile, validate } from '../../src/config/load';
import { ALL_KEYS, cameraEntries } from '../../src/config/schema';
import { tempDir } from '../harness/procs';
import { bundleCli } from '../harness/cli';

const ROOT = path.join(__dirname, '../..');
let dir: string;
let cli: string;

beforeAll(() => {
  dir = tempDir('cli');
  cli = bundleCli('config-errors');
});

function runCli(args: string[], files: Record<string, string> = {}, env: Record<string, string> = {}) {
  const cfgHome = path.join(dir, `cfg-${Math.random().toString(36).slice(2)}`);
  fs.mkdirSync(path.join(cfgHome, 'qemu-dbus-bridge'), { recursive: true });
  const subst = (s: string) => s.replaceAll('$CFG', path.join(cfgHome, 'qemu-dbus-bridge')).replaceAll('$DIR', dir);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(subst(name), content);
  const r = spawnSync(process.execPath, [cli, ...args.map(subst)], {
    env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: cfgHome, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stderr.split('\n').filter((l) => l.trim() !== '') };
}

interface BadCase {
  what: string;
  args: string[];
  files?: Record<string, string>;
  /** Fragments the one error line must contain. */
  expect: (string | RegExp)[];
}

const BAD: BadCase[] = [
  { what: 'unknown flag with a suggestion', args: ['run', '--audio-latncy', '5'], expect: ['--audio-latncy', 'did you mean --audio-latency?'] },
  { what: 'unknown command with a suggestion', args: ['rnu'], expect: ['unknown command rnu', 'did you mean run?'] },
  { what: 'no command', args: [], expect: ['a command is needed', 'run, list, devices, doctor, demo'] },
  { what: 'latency not a number', args: ['run', '--audio-latency', 'fast'], expect: ['--audio-latency "fast"', 'integer number of milliseconds from 5 to 500'] },
  { what: 'latency out of range', args: ['run', '--audio-latency', '9000'], expect: ['--audio-latency 9000', 'from 5 to 500'] },
  { what: 'unknown audio backend', args: ['run', '--audio', 'jack'], expect: ['--audio "jack"', 'auto, pipewire, pulse or none'] },
  { what: 'camera not a video device', args: ['run', '--camera', '/dev/sda'], expect: ['--camera "/dev/sda"', '/dev/video10'] },
  { what: 'odd camera size', args: ['run', '--camera-size', '1281x720'], expect: ['--camera-size "1281x720"', 'even numbers'] },
  { what: 'camera size not WxH', args: ['run', '--camera-size', '720p'], expect: ['--camera-size "720p"', 'WIDTHxHEIGHT'] },
  { what: 'fps zero', args: ['run', '--camera-fps', '0'], expect: ['--camera-fps 0', 'integer from 1 to 120'] },
  { what: 'bad grab toggle', args: ['run', '--grab-toggle', 'ctrl+alt'], expect: ['--grab-toggle "ctrl+alt"', 'ctrl-ctrl', 'KEY_LEFTCTRL+KEY_F12'] },
  { what: 'relative input path', args: ['run', '--input', 'event3'], expect: ['--input "event3"', 'all-keyboards'] },
  { what: 'input path outside /dev/input', args: ['run', '--input', '/etc/passwd'], expect: ['--input', '/etc/passwd', '/dev/input/by-id/'] },
  { what: 'input path in /dev but not an input device', args: ['run', '--input', '/dev/sda'], expect: ['--input', '/dev/sda', '/dev/input/by-id/'] },
  { what: 'unknown camera pixel format', args: ['run', '--camera-format', 'MJPG'], expect: ['--camera-format "MJPG"', 'YUY2, I420 or NV12'] },
  { what: 'bad log format', args: ['run', '--log-format', 'xml'], expect: ['--log-format "xml"', 'text or json'] },
  { what: 'bad log level', args: ['list', '--log-level', 'loud'], expect: ['--log-level "loud"', 'error, warn, info, debug'] },
  { what: '--qmp with --address', args: ['run', '--qmp', '/tmp/q', '--address', 'unix:path=/tmp/b'], expect: ['--qmp and --address exclude each other'] },
  { what: '--no-grab with --grab-toggle', args: ['run', '--no-grab', '--grab-toggle', 'alt-alt'], expect: ['--no-grab and --grab-toggle exclude each other'] },
  { what: '--audio none with a sink', args: ['run', '--audio', 'none', '--audio-sink', 'x'], expect: ['--audio none', '--audio-sink'] },
  { what: '--camera none with a size', args: ['run', '--camera', 'none', '--camera-size', '640x480'], expect: ['--camera none', '--camera-size'] },
  { what: 'missing --config file', args: ['run', '--config', '$DIR/nope.toml'], expect: ['nope.toml', 'cannot read the configuration file (no such file)'] },
  { what: 'missing replay file', args: ['run', '--input-replay', '$DIR/nope.replay'], expect: ['--input-replay', 'nope.replay: no such file'] },
  { what: 'bad address', args: ['run', '--address', '/run/user/1000/bus'], expect: ['--address "/run/user/1000/bus"', 'unix:path='] },
  { what: 'vm name with a slash', args: ['run', '--vm', 'a/b'], expect: ['--vm "a/b"', 'without "/"'] },
  { what: '--libvirt with --address', args: ['run', '--libvirt', 'win11', '--address', 'unix:path=/tmp/b'], expect: ['--libvirt excludes --address and --qmp'] },
  { what: '--libvirt-uri without --libvirt', args: ['run', '--libvirt-uri', 'qemu:///system'], expect: ['--libvirt-uri needs --libvirt DOMAIN'] },
  { what: 'libvirt URI that is not a URI', args: ['run', '--libvirt', 'win11', '--libvirt-uri', 'system'], expect: ['--libvirt-uri "system"', 'qemu:///session'] },
  {
    what: 'libvirt and qmp both in the file (found through the domain name)',
    args: ['run', '--libvirt', 'win11'],
    files: { '$CFG/win11.toml': '[connection]\nqmp = "/run/q.sock"\n' },
    expect: ['win11.toml', 'connection.libvirt excludes connection.address and connection.qmp'],
  },
  { what: '--vm with --systemd-instance', args: ['run', '--vm', 'a', '--systemd-instance=b'], expect: ['--vm and --systemd-instance both name the VM'] },
  { what: 'systemd instance with a stray backslash', args: ['run', '--systemd-instance=win\\y'], expect: ['--systemd-instance "win\\y"', '\\xNN escape'] },
  { what: 'systemd instance escapes that are not UTF-8', args: ['run', '--systemd-instance=\\xff\\xfe'], expect: ['--systemd-instance "\\xff\\xfe"', 'not UTF-8'] },
  {
    what: 'TOML syntax error (file:line:col)',
    args: ['run', '--config', '$DIR/syntax.toml'],
    files: { '$DIR/syntax.toml': '[audio]\nlatency_ms = = 3\n' },
    expect: [/syntax\.toml:2:\d+: not valid TOML/],
  },
  {
    what: 'unknown key in a table, with a suggestion',
    args: ['run', '--vm', 'win11'],
    files: { '$CFG/win11.toml': '[audio]\nlatency = 20\n' },
    expect: ['win11.toml', 'unknown key audio.latency', 'did you mean audio.latency_ms?', 'keys of [audio] are'] },
  {
    what: 'key outside its table',
    args: ['run', '--vm', 'win11'],
    files: { '$CFG/win11.toml': 'fps = 30\n' },
    expect: ['win11.toml', 'unknown key fps', 'did you mean camera.fps?'],
  },
  {
    what: 'unknown table',
    args: ['run', '--config', '$DIR/t.toml'],
    files: { '$DIR/t.toml': '[video]\nfps = 30\n' },
    expect: ['t.toml', 'unknown key video', 'tables are [connection], [log], [audio], [camera], [input]'],
  },
  {
    what: 'wrong type in the file',
    args: ['run', '--config', '$DIR/w.toml'],
    files: { '$DIR/w.toml': '[camera]\nfps = "30"\n' },
    expect: ['w.toml', 'camera.fps = "30" is not allowed', 'integer from 1 to 120'],
  },
  {
    what: 'table given as a value',
    args: ['run', '--config', '$DIR/v.toml'],
    files: { '$DIR/v.toml': 'audio = "pipewire"\n' },
    expect: ['v.toml', '[audio] must be a table', 'backend'],
  },
  {
    what: 'devices not a list',
    args: ['run', '--config', '$DIR/d.toml'],
    files: { '$DIR/d.toml': '[input]\ndevices = "/dev/input/event3"\n' },
    expect: ['d.toml', 'input.devices = "/dev/input/event3"', 'a list of devices'],
  },
  {
    what: 'qmp and address both in the file',
    args: ['run', '--config', '$DIR/c.toml'],
    files: { '$DIR/c.toml': '[connection]\nqmp = "/tmp/q"\naddress = "unix:path=/tmp/b"\n' },
    expect: ['c.toml', 'connection.qmp and connection.address exclude each other'],
  },
];

describe('bad configurations and flags exit 2 with one clear line', () => {
  it('has at least 15 cases', () => {
    expect(BAD.length).toBeGreaterThanOrEqual(15);
  });

  for (const c of BAD) {
    it(c.what, () => {
      const r = runCli(c.args, c.files);
      expect(r.lines, `stderr: ${r.stderr}`).toHaveLength(1);
      const line = r.lines[0];
      expect(line.startsWith('qemu-dbus-bridge: ')).toBe(true);
      for (const frag of c.expect) {
        if (typeof frag === 'string') expect(line).toContain(frag);
        else expect(line).toMatch(frag);
      }
      expect(r.code, line).toBe(2);
    });
  }
});

describe('good configurations', () => {
  it('docs/config-example.toml parses and validates', () => {
    const file = path.join(ROOT, 'docs/config-example.toml');
    const partial = readConfigFile(file);
    const cfg = validate(partial, { kind: 'file', path: file });
    expect(cfg.audio.latency_ms).toBeUndefined(); // an override only: the default follows QEMU
    expect(cameraEntries(cfg)[0].settings.size).toBe('1280x720');
    expect(cfg.input.grab_toggle).toBe('ctrl-ctrl');
    expect(cfg.input.devices).toEqual([]);
    expect(cfg.input.replay).toEqual([]);
    expect(cameraEntries(cfg)[0].settings.format).toBe('YUY2');
  });

  it('docs/config-example.toml documents every key (set or commented out, under its table)', () => {
    const text = fs.readFileSync(path.join(ROOT, 'docs/config-example.toml'), 'utf8');
    const missing = ALL_KEYS.filter((k) => {
      const [table, key] = k.split('.');
      const section = text.split(/^\[/m).find((sec) => sec.startsWith(`${table}]`)) ?? '';
      return !new RegExp(`^#? ?${key} = `, 'm').test(section);
    });
    expect(missing).toEqual([]);
  });

  it('--help exits 0 and documents exit codes and examples for every command', () => {
    const top = runCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Exit codes:\n\s+0\s+ok\n\s+1\s+runtime failure.*\n\s+2\s+usage or configuration error/);
    for (const cmd of ['run', 'list', 'devices', 'doctor', 'demo']) {
      const r = runCli([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toContain('Examples:');
      expect(r.stdout, cmd).toContain(`qemu-dbus-bridge ${cmd}`);
    }
  });
});
