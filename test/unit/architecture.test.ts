// Enforces the import rules of docs/architecture.md on the real source tree, so a shortcut
// across parts fails CI instead of slowly eroding the layering.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';

const SRC = path.join(__dirname, '../../src');

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** top-level part of a file under src/: 'qemu', 'audio', 'native' (src/native.ts + native-api), ... */
function partOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  if (rel.length === 1) return rel[0] === 'native.ts' ? 'native' : rel[0].replace(/\.ts$/, '');
  if (rel[0] === 'native-api') return 'native';
  return rel[0];
}

function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

const FORBIDDEN: Record<string, string[]> = {
  qemu: ['audio', 'camera', 'input', 'service', 'cli', 'config', 'libvirt'],
  libvirt: ['audio', 'camera', 'input', 'service', 'cli', 'config'],
  audio: ['camera', 'input', 'service', 'cli', 'config'],
  camera: ['audio', 'input', 'service', 'cli', 'config'],
  input: ['audio', 'camera', 'service', 'cli', 'config'],
  native: ['qemu', 'audio', 'camera', 'input', 'service', 'cli', 'config', 'libvirt'],
};

/** The face (src/cli/, src/config/) asks the parts' listings and parsers about devices. */
const FACE = ['cli', 'config'];
/** A string literal that is a /sys or /dev path, absolute or relative to a root it is joined onto. */
const DEVICE_PATH_LITERAL = /(['"`])\/?(?:sys|dev)(?:\/[^'"`\s]*)?\1/g;
/** The same inside a regular expression literal (/^\/dev\/video\d+$/). */
const DEVICE_PATH_REGEX = /\\\/(?:sys|dev)\\\//g;

/** Where these files name a /sys or /dev path themselves: `file:line: text` per hit. */
function devicePaths(files: string[], root: string): string[] {
  const out: string[] = [];
  for (const file of files) {
    fs.readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/^\s*(\/\/|\*|\/\*)/.test(line)) return; // comments may say where things are
        for (const m of [...line.matchAll(DEVICE_PATH_LITERAL), ...line.matchAll(DEVICE_PATH_REGEX)]) out.push(`${path.relative(root, file)}:${i + 1}: ${m[0]}`);
      });
  }
  return out;
}

describe('architecture import rules', () => {
  const files = walk(SRC);

  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it('parts import only what docs/architecture.md allows', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = partOf(file);
      for (const spec of imports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        if (!target.startsWith(SRC)) {
          // The demo (face) boots the bundled guest and a private PipeWire with the same code the
          // tests use: test/harness/ is compiled into dist/ for that one purpose.
          const harness = path.resolve(SRC, '../test/harness');
          if ((from === 'cli' || from === 'service') && target.startsWith(harness)) continue;
          violations.push(`${path.relative(SRC, file)} imports ${spec} (outside src/)`);
          continue;
        }
        const to = partOf(target.endsWith('.ts') ? target : `${target}.ts`);
        if (FORBIDDEN[from]?.includes(to)) violations.push(`${path.relative(SRC, file)} (${from}) imports ${spec} (${to})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('the face reads no /sys or /dev itself: device listings and device rules are the parts\' (src/input, src/camera)', () => {
    const face = files.filter((f) => FACE.includes(partOf(f)));
    expect(face.length).toBeGreaterThan(10);
    expect(devicePaths(face, SRC)).toEqual([]);
  });

  it('the face rule sees a /sys or /dev path in a string, a template or a regular expression', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arch-probe-'));
    const file = path.join(dir, 'probe.ts');
    try {
      fs.writeFileSync(file, ["fs.readdirSync('/sys/class/input');", 'const p = `/dev/input/${e}`;', "path.join(root, 'dev/input');", 'const re = /^\\/dev\\/video\\d+$/;', "// a comment about /dev/input is fine", "describe('/dev/input access');"].join('\n'));
      expect(devicePaths([file], dir)).toEqual(["probe.ts:1: '/sys/class/input'", 'probe.ts:2: `/dev/input/${e}`', "probe.ts:3: 'dev/input'", 'probe.ts:4: \\/dev\\/']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the status bus (src/service/status-bus/) sees routes only as Route: no route adapter, no audio/camera/input; it alone talks D-Bus in the service', () => {
    const bus = path.join(SRC, 'service', 'status-bus');
    const allowed = [bus, path.join(SRC, 'service', 'route.ts'), path.join(SRC, 'service', 'controller.ts'), path.join(SRC, 'qemu'), path.join(SRC, 'errors.ts'), path.join(SRC, 'config', 'errors.ts'), path.join(SRC, 'log.ts')];
    const violations: string[] = [];
    for (const file of files) {
      const rel = path.relative(SRC, file);
      for (const spec of imports(file)) {
        if (file.startsWith(bus + path.sep)) {
          if (!spec.startsWith('.')) {
            if (!['dbus-native', 'zod/v4', 'crypto'].includes(spec)) violations.push(`${rel} imports ${spec}`);
            continue;
          }
          const target = path.resolve(path.dirname(file), spec);
          const t = target.endsWith('.ts') ? target : `${target}.ts`;
          if (!allowed.some((a) => target === a || t === a || t.startsWith(a + path.sep))) violations.push(`${rel} imports ${spec}`);
        } else if (partOf(file) === 'service' && spec === 'dbus-native') violations.push(`${rel} imports dbus-native (the status bus is the service's only D-Bus code)`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('only src/native.ts loads the addon', () => {
    const offenders = files.filter(
      (f) => path.relative(SRC, f) !== 'native.ts' && /qemu_dbus_bridge\.node|build\/Release/.test(fs.readFileSync(f, 'utf8')),
    );
    expect(offenders.map((f) => path.relative(SRC, f))).toEqual([]);
  });

  it('only src/qemu/usocket.ts imports usocket (it carries the use-after-free workaround)', () => {
    const root = path.join(SRC, '..');
    const tree = [...files, ...['test/harness', 'test/fakes', 'bench'].flatMap((d) => walk(path.join(root, d)))];
    const offenders = tree.filter((f) => path.relative(SRC, f) !== path.join('qemu', 'usocket.ts') && imports(f).includes('usocket'));
    expect(offenders.map((f) => path.relative(root, f))).toEqual([]);
  });
});
