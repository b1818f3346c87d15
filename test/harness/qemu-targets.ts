// The QEMUs the real-QEMU tests run on: Debian 12's system QEMU 7.2 and QEMU 10.0 (Debian 12's
// backports build, unpacked by scripts/fetch-qemu10.sh into <repo>/.cache/qemu10; scripts/setup.sh
// provides it). A version-sensitive test file runs once per target with
// `describe.each(QEMU_TARGETS)('QEMU $version …')`, so each title names the QEMU it ran on.
//
// A target that cannot be provided is still listed: startGuest({ qemu }) then throws the reason
// (EQEMUTARGET), so its tests FAIL with the fix instead of silently running one version only.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface QemuTarget {
  /** 'major.minor' as the tests name it: '7.2' or '10.0'. */
  readonly version: string;
  /** Executable to run, or undefined when the target cannot be provided (see `problem`). */
  readonly binary?: string;
  /** The first line of `--version`, e.g. 'QEMU emulator version 10.0.2 (Debian …)'. */
  readonly banner: string;
  /** Why the target cannot run, with the fix (only when binary is undefined). */
  readonly problem?: string;
}

function repoDir(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'scripts', 'fetch-qemu10.sh'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`scripts/fetch-qemu10.sh not found above ${__dirname}`);
    dir = up;
  }
  return dir;
}

function probe(version: string, binary: string, fix: string): QemuTarget {
  let banner: string;
  try {
    banner = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 20_000 }).split('\n')[0];
  } catch (e) {
    return { version, banner: '', problem: `QEMU ${version} (${binary}) does not run (${(e as Error).message.split('\n')[0]}): ${fix}` };
  }
  const m = /version (\d+)\.(\d+)/.exec(banner);
  if (!m || `${m[1]}.${m[2]}` !== version) {
    return { version, banner, problem: `${binary} is not QEMU ${version} but '${banner}': ${fix}` };
  }
  return { version, binary, banner };
}

function qemu10(): QemuTarget {
  const root = repoDir();
  const wrapper = path.join(root, '.cache', 'qemu10', 'bin', 'qemu-system-x86_64');
  const fix = 'run `bash scripts/setup.sh` (as root, or `sudo bash scripts/fetch-qemu10.sh`)';
  if (!fs.existsSync(wrapper)) {
    const why = path.join(root, '.cache', 'qemu10.unavailable');
    const reason = fs.existsSync(why) ? fs.readFileSync(why, 'utf8').trim() : 'not fetched yet';
    return { version: '10.0', banner: '', problem: `QEMU 10.0 is not provided (${reason}): ${fix}` };
  }
  return probe('10.0', wrapper, fix);
}

/** Every target, in the order the tests run them. QDB_QEMU=7.2 (or 10.0) keeps one, for a quick local run. */
export const QEMU_TARGETS: readonly QemuTarget[] = (() => {
  const all = [probe('7.2', 'qemu-system-x86_64', "install the Debian package 'qemu-system-x86'"), qemu10()];
  const only = process.env.QDB_QEMU;
  return only ? all.filter((t) => t.version === only) : all;
})();

/** The binary of a target, or the reason it cannot run (an Error with code EQEMUTARGET). */
export function qemuBinary(t: QemuTarget): string {
  if (t.binary) return t.binary;
  throw Object.assign(new Error(t.problem ?? `QEMU ${t.version} unavailable`), { code: 'EQEMUTARGET' });
}

/** `describe.each(QEMU_MATRIX)('QEMU %s …', (_version, qemu) => …)`: the version as a plain title word. */
export const QEMU_MATRIX: ReadonlyArray<readonly [string, QemuTarget]> = QEMU_TARGETS.map((t) => [t.version, t] as const);
