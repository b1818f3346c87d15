// The rig of the benches that run real bridge processes against fake VMs (bench/scale.bench.ts,
// bench/wakeups.bench.ts), one definition: a real dbus-daemon for the VMs and one for the session
// bus, a real PipeWire + WirePlumber, the fake VMs in a child process of their own
// (bench/scale-fakes.ts, a program: it runs on import, so the parent's side lives here), a
// watcher of the bridges' status-bus PropertiesChanged, a bare Node 20 process as the baseline,
// and bridges started exactly as the systemd user unit starts them: its ExecStart arguments and
// its Environment= variables (NODE_OPTIONS above all) read from the unit template itself
// (src/cli/unit.ts unitInvocation), `node dist/src/cli/main.js` in place of the installed program.
// A part that cannot start fails the bench with its reason; close() stops what did start.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as readline from 'readline';
import { unitInvocation, unitTemplatePath } from '../src/cli/unit';
import { openBus, RemoteObject, type BusConnection } from '../src/qemu';
import { plainDict } from '../src/qemu/remote-object';
import { busNameFor, INTERFACE, OBJECT_PATH } from '../src/service/status-bus/interface';
import { dieWithParent } from '../test/harness/audio-tools';
import { startDbusDaemon, type DbusDaemon } from '../test/harness/dbus';
import { startPipeWire, type PipeWire } from '../test/harness/pipewire';
import { spawnManaged, tempDir, waitFor, type Managed } from '../test/harness/procs';

const ROOT = path.join(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const now = (): number => performance.timeOrigin + performance.now();
export const vmName = (i: number): string => `scale-${i}`;

/** How the unit runs bridge i: its arguments and environment, from the template in this checkout. */
function unitRun(i: number): { args: string[]; env: Record<string, string> } {
  const file = unitTemplatePath(ROOT);
  try {
    return unitInvocation(fs.readFileSync(file, 'utf8'), vmName(i));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** The fakes child: commands in, events out (see scale-fakes.ts). */
export class Fakes {
  private readonly waiting: { match: (e: FakeEvent) => boolean; resolve: (e: FakeEvent) => void }[] = [];
  readonly errors: string[] = [];
  private log = '';
  private constructor(readonly proc: ChildProcess) {
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as FakeEvent;
      if (e.ev === 'error') this.errors.push(String(e.message));
      for (const w of [...this.waiting]) {
        if (w.match(e)) {
          this.waiting.splice(this.waiting.indexOf(w), 1);
          w.resolve(e);
        }
      }
    });
    proc.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }
  static start(busAddress: string): Fakes {
    const [cmd, args] = dieWithParent(process.execPath, [path.join(__dirname, 'scale-fakes.js'), busAddress]);
    return new Fakes(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
  }
  get pid(): number {
    return this.proc.pid!;
  }
  /** Sends a command and waits for the event it answers with. */
  async ask(cmd: Record<string, unknown>, answer: (e: FakeEvent) => boolean, timeoutMs = 20_000): Promise<FakeEvent> {
    const got = new Promise<FakeEvent>((resolve) => this.waiting.push({ match: answer, resolve }));
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
    let t: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`fake VMs: no answer to ${JSON.stringify(cmd)} in ${timeoutMs} ms; errors: ${this.errors.join('; ')}; stderr: ${this.log.slice(-2000)}`)), timeoutMs);
    });
    return Promise.race([got, late]).finally(() => clearTimeout(t));
  }
  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}
export interface FakeEvent {
  ev: string;
  i?: number;
  t?: number;
  unique?: string;
  [k: string]: unknown;
}

/** Each bridge's Attached and route states, from its PropertiesChanged on the session bus. */
export class StatusWatch {
  private readonly owners = new Map<string, number>(); // unique name -> bridge index
  private readonly state = new Map<number, { attached: boolean; routes: [string, string][] }>();
  private readonly waiters: { i: number; want: (s: { attached: boolean; routes: [string, string][] }) => boolean; resolve: (t: number) => void }[] = [];
  private constructor(readonly conn: BusConnection) {}

  static async open(address: string): Promise<StatusWatch> {
    const w = new StatusWatch(await openBus(address, 10_000));
    await w.conn.bus.addMatch(`type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='${OBJECT_PATH}'`);
    w.conn.bus.connection.on('message', (msg: { type?: number; member?: string; path?: string; sender?: string; body?: unknown[] }) => {
      if (msg.type !== 4 || msg.member !== 'PropertiesChanged' || msg.path !== OBJECT_PATH) return;
      const i = w.owners.get(msg.sender ?? '');
      const [iface, changed] = (msg.body ?? []) as [string, unknown];
      if (i === undefined || iface !== INTERFACE) return;
      w.apply(i, plainDict(changed), now());
    });
    return w;
  }

  /** Learns which connection is bridge i's (its well-known name), and its current state. */
  async adopt(i: number): Promise<void> {
    const owner = await this.conn.bus.invokeDbus<string>({ member: 'GetNameOwner', signature: 's', body: [busNameFor(vmName(i))] });
    this.owners.set(owner, i);
    const all = await new RemoteObject({ bus: this.conn.bus, destination: owner, canPassFds: false }, OBJECT_PATH).getAllProperties(INTERFACE, 5000);
    this.apply(i, all, now());
  }

  private apply(i: number, changed: Record<string, unknown>, t: number): void {
    const s = this.state.get(i) ?? { attached: false, routes: [] };
    if ('Attached' in changed) s.attached = Boolean(changed.Attached);
    if ('Routes' in changed) s.routes = (changed.Routes as unknown[][]).map((r) => [String(r[0]), String(r[1])]);
    this.state.set(i, s);
    for (const w of [...this.waiters]) {
      if (w.i === i && w.want(s)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(t);
      }
    }
  }

  /** Resolves with the time of the first change at which bridge i's state satisfies `want`. */
  when(i: number, want: (s: { attached: boolean; routes: [string, string][] }) => boolean, what: string, timeoutMs = 20_000): Promise<number> {
    const s = this.state.get(i);
    if (s && want(s)) return Promise.resolve(now());
    let t: NodeJS.Timeout | undefined;
    return Promise.race([
      new Promise<number>((resolve) => this.waiters.push({ i, want, resolve })),
      new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`bridge ${i}: not ${what} within ${timeoutMs} ms (last: ${JSON.stringify(this.state.get(i))})`)), timeoutMs))),
    ]).finally(() => clearTimeout(t));
  }
}


export const allRunning = (s: { attached: boolean; routes: [string, string][] }): boolean => s.attached && s.routes.length > 0 && s.routes.every(([, st]) => st === 'running');

export interface ScaleRig {
  /** scratch directory (logs, the bridges' config), removed by close() */
  readonly dir: string;
  readonly vmBus: DbusDaemon;
  readonly session: DbusDaemon;
  readonly pw: PipeWire;
  readonly fakes: Fakes;
  readonly watch: StatusWatch;
  /** the bridges' environment: PipeWire's, the session bus, an empty XDG_CONFIG_HOME, the unit's variables */
  readonly env: NodeJS.ProcessEnv;
  /** the unit's NODE_OPTIONS ('' when it sets none) */
  readonly nodeOptions: string;
  /** the baseline: Node 20 doing nothing, started like a bridge */
  readonly bare: Managed;
  /** Bridge i as the unit runs it, with its `<vm>.toml` (audio on PipeWire; a PipeWire camera or none). */
  startBridge(i: number, camera: boolean): Managed;
  /** Resolves once bridge i's status is on the session bus (adopted by `watch`); a bridge that exits first fails it with its log. */
  published(i: number, bridge: Managed): Promise<void>;
  /** Stops every bridge it started, the baseline, the fakes and the servers; removes `dir`. */
  close(): Promise<void>;
}

/** Starts the rig's parts; on a failure stops those that started and throws the reason. */
export async function openScaleRig(name: string): Promise<ScaleRig> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build:ts`);
  const dir = tempDir(name);
  const configHome = path.join(dir, 'config'); // no user config file may change what runs
  fs.mkdirSync(path.join(configHome, 'qemu-dbus-bridge'), { recursive: true });
  const bridges = new Set<Managed>();
  const stops: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    await Promise.all([...bridges].map((b) => b.stop()));
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const started = await Promise.allSettled([startDbusDaemon(), startDbusDaemon(), startPipeWire()]);
    for (const s of started) if (s.status === 'fulfilled') stops.push(() => s.value.stop());
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const [vmBus, session, pw] = started.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [DbusDaemon, DbusDaemon, PipeWire];
    const fakes = Fakes.start(vmBus.address);
    stops.push(() => fakes.stop());
    const watch = await StatusWatch.open(session.address);
    stops.push(() => watch.conn.close());
    const unitEnv = unitRun(0).env;
    const env = { ...process.env, ...pw.env, DBUS_SESSION_BUS_ADDRESS: session.address, XDG_CONFIG_HOME: configHome, ...unitEnv };
    const bare = spawnManaged('bare-node', process.execPath, ['-e', 'setInterval(() => undefined, 1 << 30)'], { env, logFile: path.join(dir, 'bare.log') });
    stops.push(() => bare.stop());
    return {
      dir,
      vmBus,
      session,
      pw,
      fakes,
      watch,
      env,
      nodeOptions: unitEnv.NODE_OPTIONS ?? '',
      bare,
      startBridge(i, camera) {
        fs.writeFileSync(
          path.join(configHome, 'qemu-dbus-bridge', `${vmName(i)}.toml`),
          `[connection]\naddress = "${vmBus.address}"\n[audio]\nbackend = "pipewire"\n[camera]\ndevice = "${camera ? 'pipewire' : 'none'}"\n${camera ? 'size = "1280x720"\n' : ''}`,
        );
        const b = spawnManaged(`bridge-${i}`, process.execPath, [CLI, ...unitRun(i).args], { env, logFile: path.join(dir, `bridge-${i}.log`) });
        bridges.add(b);
        return b;
      },
      async published(i, b) {
        const exited = b.exited.then(() => {
          throw new Error(`bridge ${i} exited before publishing its status: ${b.log().slice(-1500)}`);
        });
        const up = waitFor(`bridge ${i} on the session bus`, 60_000, () => watch.adopt(i).then(() => true, () => false), 100);
        await Promise.race([up, exited]).catch((e: Error) => {
          throw new Error(`${e.message}; bridge ${i} (${b.isRunning() ? 'running' : 'exited'}): ${b.log().slice(-1500)}`);
        });
        void exited.catch(() => undefined);
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
