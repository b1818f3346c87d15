// A private session bus per test (or per guest): dbus-daemon on a unix socket in a private temp dir,
// stopped by PID. Nothing here touches the user's session bus.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { dieWithParent, ownedTempDir } from './audio-tools';
import { keepLogs, spawnManaged, waitFor, type Managed } from './procs';

export interface DbusDaemon {
  /** D-Bus address, `unix:path=<dir>/bus`. */
  readonly address: string;
  readonly pid: number;
  /** Private temp dir holding the socket and dbus.log. */
  readonly dir: string;
  /** SIGTERM, then SIGKILL; resolves when the daemon is gone and its dir removed. */
  stop(): Promise<void>;
  /** Copies dbus.log to the kept-logs dir and returns where. */
  keepLogs(label?: string): string;
  readonly proc: Managed;
}

export interface DbusDaemonOptions {
  /** Waiting for the daemon to listen, ms (default 20 s: the box is shared and slow). */
  startTimeoutMs?: number;
  /** let every local user connect (the kernel tier runs the bridge as an unprivileged user) */
  allowAnyUser?: boolean;
}

const SESSION_CONF = '/usr/share/dbus-1/session.conf';

/** Starts `dbus-daemon --session` on a private socket; resolves once the bus answers a call. */
export async function startDbusDaemon(opts: DbusDaemonOptions = {}): Promise<DbusDaemon> {
  if (!fs.existsSync(SESSION_CONF)) {
    throw Object.assign(new Error(`dbus: ${SESSION_CONF} missing: install the Debian package 'dbus' (apt-get install dbus)`), {
      code: 'EDBUSMISSING',
    });
  }
  const dir = ownedTempDir('bus'); // swept by a later test process if this one is killed
  const socket = path.join(dir, 'bus');
  const address = `unix:path=${socket}`;
  const logFile = path.join(dir, 'dbus.log');
  let config = SESSION_CONF;
  if (opts.allowAnyUser) {
    config = path.join(dir, 'any-user.conf');
    fs.writeFileSync(config, `<busconfig><include>${SESSION_CONF}</include><policy context="default"><allow user="*"/></policy></busconfig>\n`);
    fs.chmodSync(dir, 0o755); // the socket lives here
  }
  const env = { ...process.env };
  delete env.DBUS_SESSION_BUS_ADDRESS;
  // dieWithParent: a killed vitest worker never runs 'exit' handlers; the daemon must not outlive it.
  const [cmd, args] = dieWithParent('dbus-daemon', [
    `--config-file=${config}`,
    `--address=${address}`,
    '--nofork',
    '--nopidfile',
    '--print-address=1',
  ]);
  const proc = spawnManaged('dbus-daemon', cmd, args, { logFile, env, stdio: 'pipe' });
  // The daemon prints its address once it listens; keep draining stdout so it can never block.
  let printed = '';
  proc.proc.stdout?.on('data', (chunk: Buffer) => {
    printed += chunk.toString();
    fs.appendFileSync(logFile, chunk);
  });
  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  try {
    await waitFor('dbus-daemon to print its address', timeoutMs, () => {
      if (!proc.isRunning()) throw new Error(`dbus-daemon exited early: ${proc.log().trim()}`);
      return printed.includes('\n');
    });
    await waitFor('the private bus to answer ListNames', timeoutMs, async () => {
      if (!proc.isRunning()) throw new Error(`dbus-daemon exited early: ${proc.log().trim()}`);
      return (await listNames(address)).includes('org.freedesktop.DBus');
    }, 100);
  } catch (err) {
    await proc.stop();
    const kept = keepLogs(dir, 'dbus-start');
    throw Object.assign(new Error(`dbus: private dbus-daemon did not start (${(err as Error).message}); logs in ${kept}`), {
      code: 'EDBUSSTART',
    });
  }
  return {
    address,
    pid: proc.pid,
    dir,
    proc,
    async stop() {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true }); // keepLogs() before stop() if you want dbus.log
    },
    keepLogs: (label = 'dbus') => keepLogs(dir, label),
  };
}

/** Names currently on the bus at `address`, via the real `dbus-send` client. */
export function listNames(address: string): Promise<string[]> {
  return dbusSend(address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.ListNames']).then((out) =>
    [...out.matchAll(/string "([^"]*)"/g)].map((m) => m[1]),
  );
}

/**
 * Runs `dbus-send --bus=<address> --print-reply <args>`; resolves with its stdout.
 * (`--bus` registers with the daemon; `--address` would open a peer connection the daemon rejects.)
 */
export function dbusSend(address: string, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'dbus-send',
      [`--bus=${address}`, '--print-reply', `--reply-timeout=${timeoutMs}`, ...args],
      { timeout: timeoutMs + 2000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`dbus-send ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

/** PIDs of the connections owning or queued for `name` (empty if none), via ListQueuedOwners. */
export async function queuedOwnerPids(address: string, name: string): Promise<number[]> {
  let owners: string[];
  try {
    const out = await dbusSend(address, ['--dest=org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus.ListQueuedOwners', `string:${name}`]);
    owners = [...out.matchAll(/string "(:[^"]*)"/g)].map((m) => m[1]);
  } catch (err) {
    if (/NameHasNoOwner/.test((err as Error).message)) return [];
    throw err;
  }
  const pids: number[] = [];
  for (const owner of owners) {
    const out = await dbusSend(address, [
      '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus',
      'org.freedesktop.DBus.GetConnectionUnixProcessID',
      `string:${owner}`,
    ]).catch(() => ''); // the owner may have left meanwhile
    const m = /uint32 (\d+)/.exec(out);
    if (m) pids.push(Number(m[1]));
  }
  return pids;
}
