// Process and temp-dir plumbing shared by every harness part: private temp dirs, child
// processes with their output in a log file, stop by PID (never by name), logs kept on failure.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** Short private temp dir (unix socket paths must stay under 108 bytes). */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `qdb-${prefix}-`));
  fs.chmodSync(dir, 0o700);
  return dir;
}

/** Where logs of failed runs are kept (printed in failures). */
export function keepDir(): string {
  const dir = process.env.QDB_TEST_LOGS ?? path.join(os.tmpdir(), 'qdb-test-logs');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export interface Managed {
  readonly name: string;
  readonly pid: number;
  readonly proc: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after graceMs. Resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  log(): string;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  stdio?: 'ignore' | 'pipe';
}

/** Spawns cmd with stdout+stderr appended to logFile. The child is its own process-group leader. */
export function spawnManaged(name: string, cmd: string, args: string[], opts: SpawnOptions): Managed {
  const fd = fs.openSync(opts.logFile, 'a');
  // setpriv --pdeathsig: the child dies with the test worker even when vitest ends that worker
  // with a signal (then no 'exit' handler of ours runs). setpriv execs, so the PID stays the same.
  const proc = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', cmd, ...args], {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', opts.stdio === 'pipe' ? 'pipe' : fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  const pid = proc.pid;
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal ?? 'unknown');
    });
    proc.once('error', (err) => {
      running = false;
      fs.appendFileSync(opts.logFile, `\n[harness] spawn error: ${err.message}\n`);
      resolve('spawn-error');
    });
  });
  trackForCleanup(pid);
  const m: Managed = {
    name,
    pid,
    proc,
    logFile: opts.logFile,
    exited,
    isRunning: () => running,
    kill: (signal = 'SIGTERM') => {
      if (!running) return;
      try {
        process.kill(pid, signal);
      } catch (err) {
        // Exited (e.g. WirePlumber after its PipeWire was killed) before Node saw the 'exit' event.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    },
    async stop(graceMs = 3000) {
      if (!running) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
      const t = setTimeout(() => m.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      untrack(pid);
    },
    log: () => (fs.existsSync(opts.logFile) ? fs.readFileSync(opts.logFile, 'utf8') : ''),
  };
  return m;
}

/** Polls cond every intervalMs until it returns a truthy value; throws `what` after timeoutMs. */
export async function waitFor<T>(what: string, timeoutMs: number, cond: () => T | Promise<T>, intervalMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Copies a run directory's logs to keepDir() and returns where, for failure messages. */
export function keepLogs(dir: string, label: string): string {
  const dest = path.join(keepDir(), `${label}-${path.basename(dir)}`);
  fs.cpSync(dir, dest, { recursive: true, filter: (src) => !fs.statSync(src).isSocket() });
  return dest;
}

// Children are killed by PID if the test process exits without stopping them (spawnManaged and
// test/harness/bridge-process.ts track theirs).
const tracked = new Set<number>();
export function trackForCleanup(pid: number): void {
  if (tracked.size === 0) {
    process.once('exit', () => {
      for (const p of tracked) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
  tracked.add(pid);
}
export function untrack(pid: number): void {
  tracked.delete(pid);
}
