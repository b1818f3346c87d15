// Runs a harness script that drives native streams (test/harness/drain-close.ts,
// camera-close.ts) in a child process, bundled from the current sources, with glibc filling freed
// memory (MALLOC_PERTURB_): a late access to a freed PipeWire object then crashes at once instead
// of only when the memory happened to be reused. The child is harness-managed (killed with the
// test at the latest); a crash comes back as the signal's name.
import * as path from 'path';
import { bundleScript } from './cli';
import { spawnManaged, tempDir } from './procs';

const ROOT = path.join(__dirname, '../..');

export interface CrashChildResult {
  /** exit code, or the signal's name (SIGSEGV) */
  exit: number | string;
  /** the child's output: its last line is its JSON result */
  out: string;
}

/** Bundles test/harness/<name>.ts and runs it with `args` and `env`; kills it after timeoutMs. */
export async function runCrashChild(name: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CrashChildResult> {
  const script = path.join(ROOT, '.cache', 'test-cli', `${name}-${process.pid}`, `${name}.js`);
  bundleScript(`import './test/harness/${name}';`, script, ['usocket', 'dbus-native']);
  const child = spawnManaged(name, process.execPath, [script, ...args], { env: { ...process.env, ...env, MALLOC_PERTURB_: '165' }, logFile: path.join(tempDir(name), 'child.log') });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { exit, out: child.log() };
}

/** The child's result line (its last line of output), parsed. */
export function resultLine<T>(r: CrashChildResult): T {
  return JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as T;
}
