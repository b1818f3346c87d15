// Shared plumbing for the audio/video harness parts (pipewire.ts, pulseaudio.ts, audio-capture.ts,
// gst.ts): the environment a client tool needs to reach a private sound server, and a command
// runner whose failures name the command, its exit status and its stderr.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * Directory with the committed daemon configuration (PipeWire drop-ins, WirePlumber lua, .pa).
 * Found next to this file when run from source (vitest), or in the source tree when run from dist/.
 */
export const CONF_DIR = [path.join(__dirname, 'conf'), path.resolve(__dirname, '../../../test/harness/conf')].find((d) =>
  fs.existsSync(d),
) ?? path.join(__dirname, 'conf');

/** Variables a client needs to reach one private sound server. */
export type AudioEnv = Readonly<Record<string, string>>;

/** Something that audio-capture.ts and gst.ts can drive: a PipeWire or a PulseAudio server. */
export interface AudioServer {
  readonly kind: 'pipewire' | 'pulse';
  readonly env: AudioEnv;
  readonly sink: string;
  readonly source: string;
}

// Variables that would point a client at the user's own session instead of the private server.
const LEAKY_VARS = [
  'DBUS_SESSION_BUS_ADDRESS',
  'PIPEWIRE_REMOTE',
  'PIPEWIRE_RUNTIME_DIR',
  'PULSE_SERVER',
  'PULSE_RUNTIME_PATH',
  'PULSE_CLIENTCONFIG',
  'XDG_RUNTIME_DIR',
  'DISPLAY',
  'WAYLAND_DISPLAY',
];

/** process.env without anything that leads to another sound server or a session bus, plus `env`. */
export function clientEnv(env: AudioEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env };
  for (const k of LEAKY_VARS) delete out[k];
  return { ...out, ...env };
}

export interface RunOptions {
  /** Added to clientEnv(); pass a server's env here. */
  env?: AudioEnv;
  timeoutMs?: number;
  /** Resolve with the exit code instead of rejecting on a non-zero exit. */
  allowFail?: boolean;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a tool to completion. Rejects with an Error (code 'ECMDFAIL') naming the command and its stderr. */
export function runTool(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: clientEnv(opts.env), timeout, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      if (err && (!opts.allowFail || typeof err.code !== 'number')) {
        const why = err.killed ? `killed after the ${timeout} ms timeout` : typeof err.code === 'number' ? `exit code ${err.code}` : String(err.message);
        const e = new Error(`${cmd} ${args.join(' ')} failed (${why}): ${String(stderr).trim().slice(-2000) || '(no stderr)'}`) as Error & {
          code: string;
        };
        e.code = 'ECMDFAIL';
        reject(e);
        return;
      }
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}

const SETPRIV = '/usr/bin/setpriv';

/**
 * [cmd, args] wrapped in `setpriv --pdeathsig SIGKILL --` (util-linux, always on Debian) so a
 * daemon or recorder dies with the test process even when that process is killed: vitest ends
 * its fork workers with a signal, and 'exit' handlers (procs.ts's PID cleanup) never run then.
 * setpriv execs the command, so the PID stays the one spawnManaged reports.
 */
export function dieWithParent(cmd: string, args: string[]): [string, string[]] {
  return fs.existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', cmd, ...args]] : [cmd, args];
}

/** An Error with a machine-readable code, as the project's style asks for. */
export function codedError(code: string, message: string): Error & { code: string } {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

/**
 * A private temp dir <tmp>/qdb-<kind>-<pid>-XXXXXX (mode 0700). Vitest ends its fork workers with
 * a signal, so neither 'exit' handlers nor a test's afterAll run when a worker is killed; daemons
 * die with it (dieWithParent) but their directories would stay. Each call therefore first removes
 * the qdb-<kind>-<pid>-* dirs of processes that no longer exist. Kept logs live elsewhere (keepDir).
 */
export function ownedTempDir(kind: string): string {
  if (!process.env.QDB_KEEP_RECORDINGS) removeDeadDirs(`qdb-${kind}-`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `qdb-${kind}-${process.pid}-`));
  fs.chmodSync(dir, 0o700);
  return dir;
}

let scratchRoot: string | undefined;

/**
 * A fresh directory for recordings, feeds and frames when the caller gave none. They all live in
 * one per-process directory (ownedTempDir('audio')), removed at exit or, when the process was
 * killed, by the next test process. Set QDB_KEEP_RECORDINGS=1 to keep everything.
 */
export function scratchDir(kind: string): string {
  if (scratchRoot === undefined) {
    const root = ownedTempDir('audio');
    scratchRoot = root;
    process.once('exit', () => {
      if (!process.env.QDB_KEEP_RECORDINGS) fs.rmSync(root, { recursive: true, force: true });
    });
  }
  return fs.mkdtempSync(path.join(scratchRoot, `${kind}-`));
}

function removeDeadDirs(prefix: string): void {
  const re = new RegExp(`^${prefix}(\\d+)-`);
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = re.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
}

/** True for a live process; a zombie (killed, never reaped: PID 1 here does not reap) counts as dead. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
