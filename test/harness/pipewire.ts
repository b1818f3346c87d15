// Headless PipeWire + WirePlumber for integration tests: private runtime dir, no systemd, no D-Bus,
// null devices vm-sink (Audio/Sink) and vm-mic (Audio/Source/Virtual) from conf/pipewire, and an
// optional pipewire-pulse. Processes are stopped by PID; logs are kept when something went wrong.
import * as fs from 'fs';
import * as path from 'path';
import { AudioEnv, AudioServer, CONF_DIR, RunOptions, RunResult, clientEnv, codedError, dieWithParent, ownedTempDir, runTool } from './audio-tools';
import { Managed, keepLogs, sleep, spawnManaged, waitFor } from './procs';

export interface PipeWireOptions {
  /** Graph quantum in frames (default 1024). 256 is what the low-latency tests use. */
  quantum?: number;
  /** Graph rate (default 48000). */
  rate?: number;
  /** Also run pipewire-pulse (PulseAudio protocol on <runtimeDir>/pulse/native). */
  pulse?: boolean;
  /** How long to wait for the daemons to be ready (default 30 s: the machines are shared). */
  readyTimeoutMs?: number;
}

/** One object of `pw-dump` output. */
export interface PwObject {
  id: number;
  type: string;
  info?: {
    props?: Record<string, unknown>;
    state?: string;
    [k: string]: unknown;
  } & Record<string, unknown>;
  props?: Record<string, unknown>;
  metadata?: Array<{ subject: number; key: string; type?: string; value: unknown }>;
  [k: string]: unknown;
}

/**
 * `pw-dump`'s objects on the server at `env`. pw-dump 0.3.65 can print broken JSON while objects
 * come and go during its dump (seen right after the listener fuzz, whose speaker streams were still
 * closing): such output is dumped again, up to 5 times 100 ms apart, before it fails.
 */
export async function pwDumpObjects(env: AudioEnv | undefined, timeoutMs = 20_000): Promise<PwObject[]> {
  for (let attempt = 1; ; attempt++) {
    const r = await runTool('pw-dump', [], { env, timeoutMs });
    try {
      return JSON.parse(r.stdout) as PwObject[];
    } catch (err) {
      if (attempt >= 5) throw codedError('EPWDUMP', `pw-dump printed no valid JSON in ${attempt} tries: ${(err as Error).message}`);
      await sleep(100);
    }
  }
}

export interface PipeWireEnv extends AudioEnv {
  readonly XDG_RUNTIME_DIR: string;
  /** Absolute socket path: works for clients even where XDG_RUNTIME_DIR is something else. */
  readonly PIPEWIRE_REMOTE: string;
}

export interface PipeWire extends AudioServer {
  readonly kind: 'pipewire';
  /** Private directory holding everything (runtime dir, config copy, state, logs). */
  readonly dir: string;
  readonly runtimeDir: string;
  readonly socketPath: string;
  readonly env: PipeWireEnv;
  readonly sink: 'vm-sink';
  readonly source: 'vm-mic';
  readonly quantum: number;
  readonly rate: number;
  /** PID of the pipewire daemon (changes on restart()). */
  readonly pid: number;
  readonly wireplumberPid: number;
  /** Set when started with `pulse: true`. */
  readonly pulse?: { readonly kind: 'pulse'; readonly server: string; readonly env: AudioEnv; readonly sink: 'vm-sink'; readonly source: 'vm-mic'; readonly pid: number };
  /** Milliseconds from spawning pipewire until WirePlumber had set vm-sink as the default (last start). */
  readonly startupMs: number;
  stop(opts?: { keepLogs?: boolean }): Promise<void>;
  /** Stops pipewire, wireplumber (and pipewire-pulse) by PID and starts them on the same socket path. */
  restart(): Promise<void>;
  /**
   * Takes the sound server away, keeping the directory (for "server gone" tests): SIGTERM (clean
   * shutdown, default) or SIGKILL (crash: the socket file stays behind). resume() brings it back.
   */
  halt(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts the daemons again on the same socket path after halt(). */
  resume(): Promise<void>;
  pwDump(): Promise<PwObject[]>;
  /** Nodes by node.name (last one wins for duplicate names). */
  nodesByName(): Promise<Map<string, PwObject>>;
  waitForNode(name: string, timeoutMs?: number): Promise<PwObject>;
  /** Runs a client tool against this server (env applied, session leftovers removed). */
  run(cmd: string, args: string[], opts?: Omit<RunOptions, 'env'>): Promise<RunResult>;
  /** Current default sink/source node names as WirePlumber published them. */
  defaults(): Promise<{ sink?: string; source?: string }>;
  /** Concatenated daemon logs, for failure messages. */
  logs(): string;
  /** Copies the logs to keepDir() and returns where. */
  keepLogs(label?: string): string;
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;

export async function startPipeWire(opts: PipeWireOptions = {}): Promise<PipeWire> {
  const quantum = opts.quantum ?? 1024;
  const rate = opts.rate ?? 48000;
  if (!Number.isInteger(quantum) || quantum < 16 || quantum > 8192 || (quantum & (quantum - 1)) !== 0) {
    throw codedError('EINVAL', `startPipeWire: quantum ${quantum} is not a power of two in 16..8192; pass e.g. 256 or 1024`);
  }
  if (!Number.isInteger(rate) || rate < 8000 || rate > 192000) {
    throw codedError('EINVAL', `startPipeWire: rate ${rate} is out of range; pass e.g. 48000`);
  }
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;

  const dir = ownedTempDir('pw');
  const runtimeDir = path.join(dir, 'run');
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  const dataDir = path.join(dir, 'data');
  const logDir = path.join(dir, 'logs');
  for (const d of [runtimeDir, configDir, stateDir, dataDir, logDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  // pipewire and libpulse refuse or warn on a runtime dir others can read.
  fs.chmodSync(runtimeDir, 0o700);
  fs.cpSync(path.join(CONF_DIR, 'pipewire'), path.join(configDir, 'pipewire'), { recursive: true });
  fs.cpSync(path.join(CONF_DIR, 'wireplumber'), path.join(configDir, 'wireplumber'), { recursive: true });
  if (quantum !== 1024 || rate !== 48000) {
    // Later drop-ins override earlier ones key by key (PipeWire 0.3.65 merges context.properties).
    fs.writeFileSync(
      path.join(configDir, 'pipewire', 'pipewire.conf.d', '20-harness-clock.conf'),
      `# Written by test/harness/pipewire.ts for this run.\ncontext.properties = {\n` +
        `    default.clock.rate = ${rate}\n    default.clock.allowed-rates = [ ${rate} ]\n` +
        `    default.clock.quantum = ${quantum}\n    default.clock.min-quantum = 16\n` +
        `    default.clock.max-quantum = ${Math.max(2048, quantum)}\n}\n`,
    );
  }

  const socketPath = path.join(runtimeDir, 'pipewire-0');
  if (Buffer.byteLength(socketPath) >= 108) {
    throw codedError('ENAMETOOLONG', `startPipeWire: socket path ${socketPath} is 108 bytes or longer; set TMPDIR to a shorter directory`);
  }
  const pulseServer = `unix:${path.join(runtimeDir, 'pulse', 'native')}`;
  const env: PipeWireEnv = {
    XDG_RUNTIME_DIR: runtimeDir,
    PIPEWIRE_REMOTE: socketPath,
    ...(opts.pulse ? { PULSE_SERVER: pulseServer } : {}),
  };
  // The daemons get the private XDG dirs so they read our config and keep state out of $HOME.
  const daemonEnv = clientEnv({
    XDG_RUNTIME_DIR: runtimeDir,
    XDG_CONFIG_HOME: configDir,
    XDG_STATE_HOME: stateDir,
    XDG_DATA_HOME: dataDir,
    PIPEWIRE_REMOTE: 'pipewire-0',
  });

  let pw: Managed | undefined;
  let wp: Managed | undefined;
  let pp: Managed | undefined;
  let startupMs = 0;
  let stopped = false;
  let halted = false;

  const run = (cmd: string, args: string[], o: Omit<RunOptions, 'env'> = {}): Promise<RunResult> => runTool(cmd, args, { ...o, env });

  const readDefault = async (key: string): Promise<string | undefined> => {
    const r = await run('pw-metadata', ['-n', 'default', '0', key], { allowFail: true, timeoutMs: 10_000 });
    // update: id:0 key:'default.audio.sink' value:'{"name":"vm-sink"}' type:'Spa:String:JSON'
    const m = /value:'\{"name":"([^"]*)"\}'/.exec(r.stdout);
    return m?.[1];
  };

  const logs = (): string =>
    [pw, wp, pp]
      .filter((m): m is Managed => m !== undefined)
      .map((m) => `--- ${m.name} (${m.logFile}) ---\n${m.log().slice(-4000)}`)
      .join('\n');

  const doKeepLogs = (label = 'pipewire'): string => keepLogs(dir, label);

  const failStart = async (why: string): Promise<never> => {
    const text = logs();
    await stopProcs();
    const kept = doKeepLogs('pipewire-start');
    throw codedError('EPIPEWIRE', `PipeWire did not start: ${why}. Logs kept in ${kept}\n${text}`);
  };

  async function stopProcs(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    if (signal === 'SIGKILL') {
      // A crash: pipewire goes first and nobody gets to clean up.
      for (const m of [pw, wp, pp]) {
        if (m?.isRunning()) {
          m.kill('SIGKILL');
          await m.exited;
        }
      }
      return;
    }
    // WirePlumber first so it does not react to the nodes vanishing; pipewire last.
    for (const m of [wp, pp, pw]) if (m) await m.stop(5000);
  }

  async function start(): Promise<void> {
    const t0 = Date.now();
    // A SIGKILLed pipewire leaves its socket file behind; waiting for it to appear would then
    // pass before the new daemon listens.
    for (const f of [socketPath, `${socketPath}-manager`]) fs.rmSync(f, { force: true });
    pw = spawnManaged('pipewire', ...dieWithParent('pipewire', []), { env: daemonEnv, logFile: path.join(logDir, 'pipewire.log') });
    await waitFor('the pipewire socket', readyTimeoutMs, () => {
      if (!pw?.isRunning()) return Promise.reject(new Error('pipewire exited'));
      return fs.existsSync(socketPath);
    }).catch((e: unknown) => failStart(String(e)));
    wp = spawnManaged('wireplumber', ...dieWithParent('wireplumber', []), { env: daemonEnv, logFile: path.join(logDir, 'wireplumber.log') });
    const deadline = Date.now() + readyTimeoutMs;
    for (;;) {
      if (!pw.isRunning()) await failStart('pipewire exited');
      if (!wp.isRunning()) await failStart('wireplumber exited (see its log: it needs the no-D-Bus overrides in conf/wireplumber)');
      if ((await readDefault('default.audio.sink')) === 'vm-sink') break;
      if (Date.now() > deadline) await failStart(`WirePlumber did not make vm-sink the default sink within ${readyTimeoutMs} ms`);
      await sleep(50);
    }
    startupMs = Date.now() - t0;
    if (opts.pulse) {
      pp = spawnManaged('pipewire-pulse', ...dieWithParent('pipewire', ['-c', 'pipewire-pulse.conf']), {
        env: daemonEnv,
        logFile: path.join(logDir, 'pipewire-pulse.log'),
      });
      await waitFor('pipewire-pulse to answer pactl info', readyTimeoutMs, async () => {
        if (!pp?.isRunning()) throw new Error('pipewire-pulse exited');
        return (await run('pactl', ['info'], { allowFail: true, timeoutMs: 5000 })).code === 0;
      }).catch((e: unknown) => failStart(String(e)));
    }
  }

  await start();

  const self: PipeWire = {
    kind: 'pipewire',
    dir,
    runtimeDir,
    socketPath,
    env,
    sink: 'vm-sink',
    source: 'vm-mic',
    quantum,
    rate,
    get pid() {
      return pw?.pid ?? -1;
    },
    get wireplumberPid() {
      return wp?.pid ?? -1;
    },
    get pulse() {
      if (!opts.pulse) return undefined;
      return { kind: 'pulse' as const, server: pulseServer, env: { PULSE_SERVER: pulseServer }, sink: 'vm-sink' as const, source: 'vm-mic' as const, pid: pp?.pid ?? -1 };
    },
    get startupMs() {
      return startupMs;
    },
    async stop(o = {}) {
      if (stopped) return;
      stopped = true;
      // A daemon that died before stop() is a failure worth keeping logs for.
      const crashed = !halted && [pw, wp, pp].some((m) => m !== undefined && !m.isRunning());
      await stopProcs();
      if (o.keepLogs || crashed) {
        const kept = doKeepLogs(crashed ? 'pipewire-crashed' : 'pipewire');
        console.warn(`[harness] PipeWire logs kept in ${kept}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await self.halt();
      await self.resume();
    },
    async halt(signal = 'SIGTERM') {
      if (stopped) throw codedError('ESTOPPED', 'PipeWire.halt(): already stopped');
      halted = true;
      await stopProcs(signal);
      for (const m of [pw, wp, pp]) if (m) fs.appendFileSync(m.logFile, `\n[harness] --- halted (${signal}) ---\n`);
    },
    async resume() {
      if (stopped) throw codedError('ESTOPPED', 'PipeWire.resume(): already stopped');
      await start();
      halted = false;
    },
    pwDump: () => pwDumpObjects(env),
    async nodesByName() {
      const out = new Map<string, PwObject>();
      for (const o of await self.pwDump()) {
        const name = o.info?.props?.['node.name'];
        if (o.type === 'PipeWire:Interface:Node' && typeof name === 'string') out.set(name, o);
      }
      return out;
    },
    async waitForNode(name, timeoutMs = 15_000) {
      const node = await waitFor(`PipeWire node ${name}`, timeoutMs, async () => (await self.nodesByName()).get(name), 100);
      return node as PwObject; // waitFor only resolves with a truthy value
    },
    run,
    async defaults() {
      return { sink: await readDefault('default.audio.sink'), source: await readDefault('default.audio.source') };
    },
    logs,
    keepLogs: doKeepLogs,
  };
  return self;
}
