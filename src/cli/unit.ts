// The systemd user unit as installed: the template from systemd/ with ExecStart pointing at the
// program of this installation. One definition for both installers: `install-unit` (npm, or a
// clone installed with `npm install -g`) writes it under ~/.config/systemd/user/, and the Debian
// package build (scripts/build-deb.sh) renders it for /usr/bin/qemu-dbus-bridge.
import * as fs from 'fs';
import * as path from 'path';

export const UNIT_FILE = 'qemu-dbus-bridge@.service';

/** The package's root: the nearest directory up with package.json (from dist/src/cli or src/cli). */
function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (dir === path.dirname(dir)) throw new Error(`no package.json above ${from}`);
  }
}

export const PACKAGE_ROOT = packageRoot(__dirname);

/** The program this installation runs: its bin shim (what npm links onto PATH). */
export const INSTALLED_BIN = path.join(PACKAGE_ROOT, 'bin', 'qemu-dbus-bridge');

export function unitTemplatePath(root = PACKAGE_ROOT): string {
  return path.join(root, 'systemd', UNIT_FILE);
}

/**
 * The template's single `ExecStart=PROGRAM run …` line with PROGRAM replaced by `bin`; its
 * arguments (how the unit names the VM) stay as the template has them. Fails when the template
 * does not have exactly one such line, so a changed template cannot silently keep pointing at a
 * program that is not installed.
 */
export function renderUnit(template: string, bin: string): string {
  if (!path.isAbsolute(bin) || /\s/.test(bin)) throw new Error(`the program path must be absolute and without spaces: ${bin}`);
  const lines = template.split('\n');
  const { at, args } = execLine(lines);
  lines[at] = `ExecStart=${bin}${args}`;
  return lines.join('\n');
}

/** The template's one `ExecStart=PROGRAM run …` line: its index and what follows PROGRAM (` run …`). */
function execLine(lines: string[]): { at: number; args: string } {
  const exec = lines.map((l, i) => [i, /^ExecStart=\S+( run( .*)?)$/.exec(l)] as const).filter(([, m]) => m !== null);
  if (exec.length !== 1) throw new Error(`the unit template must have exactly one "ExecStart=PROGRAM run …" line, found ${exec.length}`);
  const [at, m] = exec[0];
  return { at, args: m![1] };
}

/**
 * How the unit starts the bridge for VM `instance`, from the template (the scale and wakeups
 * benches start their bridges this way): the arguments after PROGRAM, `%i` replaced, and the
 * variables of its `Environment=` lines (systemd's quoting: "A=b c" or 'A=b c' or A=b, several a
 * line). Fails on a specifier it does not replace, or an assignment without `=`.
 */
export function unitInvocation(template: string, instance: string): { args: string[]; env: Record<string, string> } {
  const lines = template.split('\n');
  const args = execLine(lines).args.trim().split(/\s+/).map((a) => a.replace(/%i/g, instance));
  const unknown = args.find((a) => /%[a-zA-Z%]/.test(a));
  if (unknown) throw new Error(`the unit's ExecStart argument ${unknown} has a specifier only systemd can expand`);
  const env: Record<string, string> = {};
  for (const line of lines) {
    const m = /^Environment=(.*)$/.exec(line);
    if (!m) continue;
    for (const [, dq, sq, bare] of m[1].matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
      const word = dq ?? sq ?? bare;
      const eq = word.indexOf('=');
      if (eq <= 0) throw new Error(`the unit's line ${line} has an assignment without a name: ${word}`);
      env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  return { args, env };
}

/** Where systemd looks for a user's own units: $XDG_CONFIG_HOME/systemd/user (~/.config/...). */
export function userUnitDir(env: NodeJS.ProcessEnv): string {
  const config = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : undefined;
  if (config) return path.join(config, 'systemd', 'user');
  if (!env.HOME) throw new Error('neither XDG_CONFIG_HOME nor HOME is set');
  return path.join(env.HOME, '.config', 'systemd', 'user');
}

/** Writes the rendered unit into `dir`; returns its path and whether the file changed. */
export function writeUnit(dir: string, text: string): { file: string; changed: boolean } {
  const file = path.join(dir, UNIT_FILE);
  let old: string | undefined;
  try {
    old = fs.readFileSync(file, 'utf8');
  } catch {
    old = undefined;
  }
  if (old === text) return { file, changed: false };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file + '.tmp', text, { mode: 0o644 });
  fs.renameSync(file + '.tmp', file);
  return { file, changed: true };
}
