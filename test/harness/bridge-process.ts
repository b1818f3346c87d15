// The bridge CLI (`qemu-dbus-bridge ARGS…`) as a child process: the one way the tests, the fuzz
// harness and the kernel tier's in-guest checks start it. The CLI entry is a bundle of the current
// sources (bundleCli(), test/harness/cli.ts) or dist/src/cli/main.js; stdout and stderr are kept
// in memory for log checks and failure messages; waits fail at once, with the bridge's last words,
// when it has died; it is stopped and killed by its PID only (a wrapper must exec, so the PID we
// hold is the bridge's), and killed at the latest when the test process exits.
import { execFile, spawn, type ChildProcess } from 'child_process';
import { trackForCleanup, untrack, waitFor } from './procs';

export interface BridgeProcessOptions {
  /** the CLI entry: a bundleCli() bundle or dist/src/cli/main.js */
  cli: string;
  /** variables added to the environment (this process's, or none with `cleanEnv`) */
  env?: NodeJS.ProcessEnv;
  /** start from an empty environment plus `env` (a unit's environment, another user's) */
  cleanEnv?: boolean;
  /**
   * Wraps the command line, e.g. another user (setpriv), a mount namespace (unshare). The wrapper
   * must exec the command, so the PID stays the bridge's.
   */
  wrap?: (cmd: string, args: string[]) => [string, string[]];
  /** keep at most this many characters of output (a fuzz run logs without end); default all */
  maxLog?: number;
}

export interface BridgeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when it ended */
  at: number;
}

function commandLine(args: string[], o: BridgeProcessOptions): { cmd: string; argv: string[]; env: NodeJS.ProcessEnv } {
  const [cmd, argv] = o.wrap ? o.wrap(process.execPath, [o.cli, ...args]) : [process.execPath, [o.cli, ...args]];
  return { cmd, argv, env: { ...(o.cleanEnv ? {} : process.env), ...o.env } };
}

export class BridgeProcess {
  private out = '';
  private stdoutOnly = '';
  readonly pid: number;
  readonly exited: Promise<BridgeExit>;

  private constructor(
    readonly proc: ChildProcess,
    maxLog: number,
  ) {
    if (proc.pid === undefined) throw new Error('the bridge CLI could not be started');
    this.pid = proc.pid;
    trackForCleanup(this.pid);
    const keep = (d: Buffer): void => {
      if (this.out.length < maxLog) this.out += d.toString();
    };
    proc.stdout!.on('data', (d: Buffer) => {
      keep(d);
      if (this.stdoutOnly.length < maxLog) this.stdoutOnly += d.toString();
    });
    proc.stderr!.on('data', keep);
    this.exited = new Promise((r) =>
      proc.once('exit', (code, signal) => {
        untrack(this.pid);
        r({ code, signal, at: Date.now() });
      }),
    );
  }

  /** `qemu-dbus-bridge ARGS…` started now. */
  static start(args: string[], o: BridgeProcessOptions): BridgeProcess {
    const { cmd, argv, env } = commandLine(args, o);
    return new BridgeProcess(spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] }), o.maxLog ?? Infinity);
  }

  /** stdout and stderr so far, interleaved as they came */
  log(): string {
    return this.out;
  }

  /** stdout alone (what a command such as `status --watch --json` prints for programs) */
  stdout(): string {
    return this.stdoutOnly;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Waits for the log to match re (after character offset `from`); fails at once if the bridge died. */
  async waitLog(re: RegExp, ms = 30_000, from = 0): Promise<void> {
    await this.until(`the log to show ${re}`, ms, () => re.test(this.out.slice(from)));
  }

  /**
   * waitFor(cond) that fails at once, with the bridge's last words, when the bridge has died; the
   * way to wait for a state the bridge reaches (its status on the bus, a device it opened…).
   */
  async until<T>(what: string, ms: number, cond: () => T | Promise<T>, intervalMs = 25): Promise<T> {
    let r: T | 'died';
    try {
      r = await waitFor(what, ms, async () => (this.running ? await cond() : 'died'), intervalMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}; the bridge's last words:\n${this.tail()}`);
    }
    if (r === 'died') throw new Error(`the bridge exited (${this.proc.exitCode ?? this.proc.signalCode}) while waiting for ${what}:\n${this.tail()}`);
    return r as T;
  }

  tail(lines = 25): string {
    return this.out.trim().split('\n').slice(-lines).join('\n');
  }

  /** A signal to the bridge's PID (nothing when it has ended). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // ended before Node saw it
    }
  }

  /** SIGTERM; resolves with how it ended (SIGKILL after graceMs). */
  async stop(graceMs = 15_000): Promise<BridgeExit> {
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/** `qemu-dbus-bridge ARGS…` started now (BridgeProcess.start). */
export function startBridgeProcess(args: string[], o: BridgeProcessOptions): BridgeProcess {
  return BridgeProcess.start(args, o);
}

export interface CliResult {
  /** exit status; -1 when it was killed (timeout) or did not start */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout then stderr */
  out: string;
}

/** `qemu-dbus-bridge ARGS…` run to its end (a one-shot command: list, status, grab…); never rejects. */
export function runCli(args: string[], o: BridgeProcessOptions & { timeoutMs?: number }): Promise<CliResult> {
  const { cmd, argv, env } = commandLine(args, o);
  return new Promise((resolve) => {
    execFile(cmd, argv, { env, timeout: o.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const c = (err as { code?: unknown } | null)?.code;
      const code = err ? (typeof c === 'number' ? c : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), out: String(stdout) + String(stderr) });
    });
  });
}
