// PulseAudio 16 for integration tests: per-user daemon (-n, explicit modules from conf/pulse/harness.pa),
// private HOME/XDG dirs, anonymous auth on <dir>/run/pulse/native, no D-Bus, no autospawn.
// Null sink vm-sink; microphone vm-mic = module-remap-source over the monitor of null sink vm-mic-in.
import * as fs from 'fs';
import * as path from 'path';
import { AudioEnv, AudioServer, CONF_DIR, RunOptions, RunResult, clientEnv, codedError, dieWithParent, ownedTempDir, runTool } from './audio-tools';
import { Managed, keepLogs, spawnManaged, waitFor } from './procs';

export interface PulseOptions {
  /** How long to wait for `pactl info` to answer (default 30 s: the machines are shared). */
  readyTimeoutMs?: number;
}

export interface PulseEnv extends AudioEnv {
  readonly PULSE_SERVER: string;
}

export interface Pulse extends AudioServer {
  readonly kind: 'pulse';
  readonly dir: string;
  /** 'unix:<dir>/run/pulse/native' */
  readonly server: string;
  readonly socketPath: string;
  readonly env: PulseEnv;
  readonly sink: 'vm-sink';
  readonly source: 'vm-mic';
  /** The null sink whose monitor feeds vm-mic: play into this to "speak into the microphone". */
  readonly micFeedSink: 'vm-mic-in';
  /** PID of the daemon (changes on restart()). */
  readonly pid: number;
  /** Milliseconds from spawn until `pactl info` answered (last start). */
  readonly startupMs: number;
  stop(opts?: { keepLogs?: boolean }): Promise<void>;
  /** Stops the daemon by PID and starts it again on the same socket path. */
  restart(): Promise<void>;
  /** Takes the daemon away, keeping the directory: SIGTERM (default) or SIGKILL (crash). */
  halt(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts the daemon again on the same socket path after halt(). */
  resume(): Promise<void>;
  run(cmd: string, args: string[], opts?: Omit<RunOptions, 'env'>): Promise<RunResult>;
  logs(): string;
  keepLogs(label?: string): string;
}

export async function startPulseAudio(opts: PulseOptions = {}): Promise<Pulse> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const dir = ownedTempDir('pa');
  const runtimeDir = path.join(dir, 'run');
  const home = path.join(dir, 'home');
  for (const d of [path.join(runtimeDir, 'pulse'), path.join(home, '.config')]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.chmodSync(runtimeDir, 0o700);
  fs.chmodSync(path.join(runtimeDir, 'pulse'), 0o700);
  const socketPath = path.join(runtimeDir, 'pulse', 'native');
  if (Buffer.byteLength(socketPath) >= 108) {
    throw codedError('ENAMETOOLONG', `startPulseAudio: socket path ${socketPath} is 108 bytes or longer; set TMPDIR to a shorter directory`);
  }
  const paFile = path.join(dir, 'harness.pa');
  fs.writeFileSync(paFile, fs.readFileSync(path.join(CONF_DIR, 'pulse', 'harness.pa'), 'utf8').replaceAll('@RUNTIME_DIR@', runtimeDir));
  // Clients must never autospawn a second daemon (with the user's config) when ours is down,
  // e.g. between restart()'s stop and start.
  const clientConf = path.join(dir, 'client.conf');
  fs.writeFileSync(clientConf, 'autospawn = no\n');

  const server = `unix:${socketPath}`;
  const env: PulseEnv = { PULSE_SERVER: server, PULSE_CLIENTCONFIG: clientConf };
  const daemonEnv = clientEnv({ HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_RUNTIME_DIR: runtimeDir });
  const logFile = path.join(dir, 'pulseaudio.log');
  let pa: Managed | undefined;
  let startupMs = 0;
  let stopped = false;
  let halted = false;

  const run = (cmd: string, args: string[], o: Omit<RunOptions, 'env'> = {}): Promise<RunResult> => runTool(cmd, args, { ...o, env });
  const logs = (): string => (pa ? pa.log().slice(-6000) : '');
  const doKeepLogs = (label = 'pulseaudio'): string => keepLogs(dir, label);

  async function start(): Promise<void> {
    fs.rmSync(socketPath, { force: true });
    const t0 = Date.now();
    // -n: no default.pa; --exit-idle-time=-1: never exit on idle; as root without --system it only warns.
    const args = ['-n', '-F', paFile, '--daemonize=no', '--exit-idle-time=-1', '--use-pid-file=no', '--log-target=stderr', '--log-level=notice'];
    pa = spawnManaged('pulseaudio', ...dieWithParent('pulseaudio', args), { env: daemonEnv, logFile });
    const proc = pa;
    try {
      await waitFor('pactl info to answer', readyTimeoutMs, async () => {
        if (!proc.isRunning()) throw new Error('pulseaudio exited');
        return (await run('pactl', ['info'], { allowFail: true, timeoutMs: 5000 })).code === 0;
      });
    } catch (e) {
      const text = logs();
      await proc.stop(3000);
      const kept = doKeepLogs('pulseaudio-start');
      throw codedError('EPULSE', `PulseAudio did not start: ${String(e)}. Logs kept in ${kept}\n${text}`);
    }
    startupMs = Date.now() - t0;
  }

  await start();

  const self: Pulse = {
    kind: 'pulse',
    dir,
    server,
    socketPath,
    env,
    sink: 'vm-sink',
    source: 'vm-mic',
    micFeedSink: 'vm-mic-in',
    get pid() {
      return pa?.pid ?? -1;
    },
    get startupMs() {
      return startupMs;
    },
    async stop(o = {}) {
      if (stopped) return;
      stopped = true;
      const crashed = !halted && pa !== undefined && !pa.isRunning();
      await pa?.stop(5000);
      if (o.keepLogs || crashed) console.warn(`[harness] PulseAudio logs kept in ${doKeepLogs(crashed ? 'pulseaudio-crashed' : 'pulseaudio')}`);
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await self.halt();
      await self.resume();
    },
    async halt(signal = 'SIGTERM') {
      if (stopped) throw codedError('ESTOPPED', 'Pulse.halt(): already stopped');
      halted = true;
      if (signal === 'SIGKILL') {
        if (pa?.isRunning()) {
          pa.kill('SIGKILL');
          await pa.exited;
        }
      } else {
        await pa?.stop(5000);
      }
      fs.appendFileSync(logFile, `\n[harness] --- halted (${signal}) ---\n`);
    },
    async resume() {
      if (stopped) throw codedError('ESTOPPED', 'Pulse.resume(): already stopped');
      await start();
      halted = false;
    },
    run,
    logs,
    keepLogs: doKeepLogs,
  };
  return self;
}
