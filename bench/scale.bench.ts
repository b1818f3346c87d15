// Footprint and scale (issue 17 item 4): ten real bridge processes (`node dist/src/cli/main.js`
// with a <vm>.toml, the arguments and Environment= of the user unit's template: as the unit
// starts them; the rig, bench/scale-rig.ts, is shared with bench/wakeups.bench.ts) on one host, each attached to its own fake VM (bench/scale-fakes.ts:
// test/fakes/qemu-peer.ts in QEMU 10's flavour, all ten in one process on one real dbus-daemon),
// playing into one real PipeWire + WirePlumber, publishing on one real session bus. Every fake
// sends audio Writes at real time; in the camera phase bridge 0 also turns 1280x800 Updates at
// 30/s into its PipeWire camera node, which a real consumer (gst-launch pipewiresrc) watches.
//
// Rows, each with a baseline measured in this run:
//   - total CPU of the ten bridges while the guests play and record (each fake also Reads its
//     enabled input voice at QEMU's pace), against the fakes process sending them the same calls;
//   - the same with the guests not recording (the fakes disable the input voice: the bridges close
//     their microphone streams): the audio-only bridges of issue 17's target (< 20 % of one core),
//     against the floor of what each bridge must do: a bare Node 20
//     woken by the same 100 messages/s, plus pw-cat playing at the speaker's node.latency (the
//     bridges stopped meanwhile, so the floor runs alone on the same graph);
//   - resident memory per bridge (Rss and Pss from /proc/PID/smaps_rollup), against a bare Node 20
//     process started the same way; and of the camera bridge while watched;
//   - attach time, VM appears -> every route running, p50/p99: from the fake's RequestName reply
//     (its wall clock) to the bridge's status-bus PropertiesChanged that first shows Attached and
//     every route 'running' (received here, same clock); the bridges were started first and wait;
//   - re-attach time after a VM restart (the fake closes its bus connection and listeners, then a
//     new one with the same name appears), measured the same way;
//   both against one D-Bus round trip to a fake VM (Properties.Get) at the same time.
// A part that cannot start (dbus-daemon, PipeWire, a bridge) fails the bench with its reason.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { openBus, RemoteObject, type BusConnection } from '../src/qemu';
import { cameraNodeName, speakerIdentity } from '../src/stream-identity';
import { writeWav } from '../test/harness/audio-capture';
import { dieWithParent } from '../test/harness/audio-tools';
import { type PipeWire } from '../test/harness/pipewire';
import { spawnManaged, type Managed } from '../test/harness/procs';
import { BenchContext, BenchRow, percentile } from './lib';
import { allRunning, openScaleRig, vmName, type FakeEvent, type ScaleRig } from './scale-rig';

const N = 10;
const CLK_TCK = 100; // USER_HZ on Linux x86_64

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

interface Mem {
  rssMb: number;
  pssMb: number;
  anonMb: number;
}
function memOf(pid: number): Mem {
  const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN) / 1024;
  return { rssMb: kb('Rss'), pssMb: kb('Pss'), anonMb: kb('Anonymous') };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]): number => sum(xs) / xs.length;

/** glibc maps each thread's malloc arena at an address aligned to its 64 MiB HEAP_MAX_SIZE. */
const ARENA_ALIGN = 64n << 20n;

/** Rss of one process by what is mapped (/proc/PID/smaps), in MB: each file by name, Node's own
 *  binary by segment, anonymous memory as V8's heap pages (256 KiB chunks), malloc's thread arenas,
 *  thread stacks (8 MiB) and the rest. */
function rssByMapping(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let key = '';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const [size, perms, name] = [(parseInt(m[2], 16) - parseInt(m[1], 16)) / 1024, m[3], m[4]];
      if (name === process.execPath) key = `node binary ${perms.startsWith('r-x') ? 'code' : perms.startsWith('rw') ? 'data' : 'read-only (symbols, rodata)'}`;
      else if (name.startsWith('/')) key = path.basename(name);
      else if (name === '[heap]') key = 'malloc main arena [heap]';
      else if (name.startsWith('memfd:pipewire')) key = 'PipeWire shared memory (memfd)';
      else if (name !== '') key = name;
      else if (perms.includes('x')) key = 'anonymous executable (JIT code)';
      else if (size === 256) key = 'anonymous 256 KiB chunks (V8 heap pages)';
      else if (perms.startsWith('rw') && BigInt(`0x${m[1]}`) % ARENA_ALIGN === 0n) key = 'malloc thread arenas (PipeWire, libuv and V8 worker threads)';
      else if (size === 8192) key = 'thread stacks (8 MiB each)';
      else key = 'anonymous other (V8 large objects, mmapped malloc blocks)';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && key) out.set(key, (out.get(key) ?? 0) + Number(rss[1]) / 1024);
  }
  return out;
}

/** The mappings where `pid` holds more than `bare` does, largest first, as log lines. */
function rssBreakdown(pid: number, bare: number): string[] {
  const a = rssByMapping(bare);
  const b = rssByMapping(pid);
  const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => ({ k, bare: a.get(k) ?? 0, it: b.get(k) ?? 0 })).sort((x, y) => y.it - y.bare - (x.it - x.bare));
  const big = rows.filter((r) => Math.abs(r.it - r.bare) >= 0.1);
  const rest = rows.filter((r) => Math.abs(r.it - r.bare) < 0.1).reduce((t, r) => t + r.it - r.bare, 0);
  return [...big.map((r) => `  ${r.k}: ${r.it.toFixed(2)} MB (bare Node ${r.bare.toFixed(2)}, ${r.it >= r.bare ? '+' : ''}${(r.it - r.bare).toFixed(2)})`), `  ${rows.length - big.length} smaller differences: ${rest >= 0 ? '+' : ''}${rest.toFixed(2)} MB`];
}

/** One 480-frame Write on the wire (a bridge's read() of it: strace shows 2076 bytes). */
const WRITE_MESSAGE_BYTES = 2076;

/**
 * The floor of N audio-only bridges, alone on the graph: N bare Node 20 processes (the unit's
 * NODE_OPTIONS) each woken by a Write-sized message on a pipe 100 times a second, as a bridge's
 * main thread is by QEMU's Writes, doing nothing with them; and N pw-cat playing silence into
 * the sink at `latency` (the speakers' node.latency), as a bridge's speaker stream does. Returns
 * the CPU of each kind over `windowMs` (% of one core, summed).
 */
async function measureFloor(o: { n: number; dir: string; pwEnv: NodeJS.ProcessEnv; nodeEnv: NodeJS.ProcessEnv; latency: string; windowMs: number; cpu: (pids: number[]) => Promise<{ per: number[]; wall: number }>; pw: PipeWire }): Promise<{ node: number; pwCat: number }> {
  const wav = path.join(o.dir, 'silence.wav');
  writeWav(wav, new Int16Array(48_000 * 2 * Math.ceil(o.windowMs / 1000 + 8)), 48_000, 2);
  const frames = /^(\d+)\//.exec(o.latency)?.[1];
  if (!frames) throw new Error(`the speakers' node.latency '${o.latency}' is not frames/rate`);
  const players: Managed[] = [];
  const sleepers: ChildProcess[] = [];
  const msg = Buffer.alloc(WRITE_MESSAGE_BYTES);
  let feeder: NodeJS.Timeout | undefined;
  try {
    for (let i = 0; i < o.n; i++) {
      players.push(spawnManaged(`pw-cat-${i}`, 'pw-cat', ['--playback', '--latency', frames, '--target', 'vm-sink', wav], { env: { ...process.env, ...o.pwEnv }, logFile: path.join(o.dir, `pw-cat-${i}.log`) }));
      const [cmd, args] = dieWithParent(process.execPath, ['-e', "process.stdin.on('data', () => undefined)"]);
      sleepers.push(spawn(cmd, args, { env: o.nodeEnv, stdio: ['pipe', 'ignore', 'inherit'] }));
    }
    // Paced like the fakes: the messages that became due since the last 10 ms tick.
    const t0 = performance.now();
    let sent = 0;
    feeder = setInterval(() => {
      const due = Math.floor((performance.now() - t0) / 10);
      for (; sent < due; sent++) for (const p of sleepers) p.stdin!.write(msg);
    }, 10);
    await new Promise((r) => setTimeout(r, 2000));
    const running = (await o.pw.pwDump()).filter((x) => x.type === 'PipeWire:Interface:Node' && x.info?.props?.['application.name'] === 'pw-cat' && (x.info as { state?: string }).state === 'running');
    if (running.length !== o.n) throw new Error(`floor: ${running.length} of ${o.n} pw-cat streams running; ${players.map((p) => p.log().slice(-300)).join(' | ')}`);
    const pids = [...sleepers.map((p) => p.pid!), ...players.map((p) => p.pid)];
    const c = await o.cpu(pids);
    const dead = players.filter((p) => !p.isRunning());
    if (dead.length) throw new Error(`floor: pw-cat exited during the window: ${dead[0].log().slice(-500)}`);
    return { node: sum(c.per.slice(0, o.n)), pwCat: sum(c.per.slice(o.n)) };
  } finally {
    clearInterval(feeder);
    for (const p of sleepers) p.kill('SIGKILL');
    await Promise.all(players.map((p) => p.stop(1000)));
  }
}

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  let rig: ScaleRig | undefined;
  let probe: BusConnection | undefined;
  let viewer: Managed | undefined;
  const bridges: (Managed | undefined)[] = [];
  const t0 = Date.now();
  try {
    rig = await openScaleRig('scale-bench');
    const { dir, pw, fakes, watch, env, nodeOptions, bare } = rig;
    probe = await openBus(rig.vmBus.address, 10_000);
    // As the unit runs a bridge: its config file, the unit's ExecStart arguments and Environment= (scale-rig.ts).
    const startBridge = (i: number, camera: boolean): Managed => rig!.startBridge(i, camera);
    const bridgeFailed = (i: number): string => `bridge ${i} (${bridges[i]?.isRunning() ? 'running' : 'exited'}): ${bridges[i]?.log().slice(-1500)}`;
    /** Bridge i's name is on the session bus (a bridge that exits fails the bench with its log). */
    const published = (i: number): Promise<void> => rig!.published(i, bridges[i]!);

    // The baseline process: Node 20 doing nothing, started like a bridge.
    for (let i = 0; i < N; i++) bridges[i] = startBridge(i, false);
    // Every bridge publishes its status before attaching: then it waits for its VM.
    for (let i = 0; i < N; i++) await published(i);
    ctx.log(`10 bridges up and waiting for their VMs after ${Date.now() - t0} ms`);

    const rtts: number[] = [];
    const rtt = async (unique: string): Promise<void> => {
      const a = performance.now();
      await new RemoteObject({ bus: probe!.bus, destination: unique, canPassFds: false }, '/org/qemu/Display1/VM').getProperty('org.qemu.Display1.VM', 'Name', 5000);
      rtts.push(performance.now() - a);
    };

    // Attach: the VMs appear one at a time, each bridge measured alone.
    const attach: number[] = [];
    /** Starts fake VM i; resolves with ms from its appearance to bridge i running every route. */
    const appear = async (i: number, what: string): Promise<number> => {
      const up = await fakes!.ask({ cmd: 'start', i, name: vmName(i) }, (e) => e.ev === 'up' && e.i === i);
      const ran = await watch!.when(i, allRunning, what).catch((e: Error) => {
        throw new Error(`${e.message}; ${bridgeFailed(i)}`);
      });
      await rtt(up.unique!);
      return ran - up.t!;
    };
    for (let i = 0; i < N; i++) attach.push(await appear(i, 'attached with every route running'));
    ctx.log(`attach (ms): ${attach.map((x) => x.toFixed(0)).join(' ')}`);

    // Steady state: ten bridges playing audio at real time.
    await new Promise((r) => setTimeout(r, 2000));
    const windowMs = Math.max(5000, 15_000 * ctx.durationScale);
    const measureCpu = async (pids: number[]): Promise<{ total: number; per: number[]; fakes: number; wall: number }> => {
      const a = pids.map(cpuSeconds);
      const fa = cpuSeconds(fakes!.pid);
      const w0 = performance.now();
      await new Promise((r) => setTimeout(r, windowMs));
      const wall = (performance.now() - w0) / 1000;
      const per = pids.map((p, k) => ((cpuSeconds(p) - a[k]) / wall) * 100);
      return { total: sum(per), per, fakes: ((cpuSeconds(fakes!.pid) - fa) / wall) * 100, wall };
    };
    const pids = bridges.map((b) => b!.pid);
    const stats0 = await fakes.ask({ cmd: 'stats' }, (e) => e.ev === 'stats');
    const audioCpu = await measureCpu(pids);
    const stats1 = await fakes.ask({ cmd: 'stats' }, (e) => e.ev === 'stats');
    const delta = (k: string): number => (stats1[k] as number) - (stats0[k] as number);
    const [writes, reads, shortReads] = [delta('writes'), delta('reads'), delta('shortReads')];
    if (reads === 0) throw new Error(`the fakes made no Read of the enabled input voices; ${bridgeFailed(0)}`);
    const mems = pids.map(memOf);
    const bareMem = memOf(bare.pid);
    ctx.log(`playing and recording: CPU per bridge (%): ${audioCpu.per.map((x) => x.toFixed(1)).join(' ')}; fakes ${audioCpu.fakes.toFixed(1)} %; ${(writes / audioCpu.wall).toFixed(0)} Writes/s and ${(reads / audioCpu.wall).toFixed(0)} Reads/s in all (${shortReads} short)`);
    ctx.log(`RSS per bridge (MB): ${mems.map((m) => m.rssMb.toFixed(1)).join(' ')}; PSS ${mems.map((m) => m.pssMb.toFixed(1)).join(' ')}; bare node RSS ${bareMem.rssMb.toFixed(1)} PSS ${bareMem.pssMb.toFixed(1)}`);
    ctx.log(`Rss of bridge 1 against the bare Node process, by mapping:\n${rssBreakdown(pids[1], bare.pid).join('\n')}`);
    // The guests stop recording (QEMU enables the input voice only while the guest records).
    const mic = await fakes.ask({ cmd: 'mic', on: false }, (e) => e.ev === 'mic');
    if (mic.voices !== N) throw new Error(`mic off: ${String(mic.voices)} input voices, expected ${N}`);
    await new Promise((r) => setTimeout(r, 2000));
    const speakerCpu = await measureCpu(pids);
    const speakerNode = speakerIdentity(vmName(0), 'pipewire').props['node.name'];
    const speakerLatency = (await pw.nodesByName()).get(speakerNode)?.info?.props?.['node.latency'];
    if (typeof speakerLatency !== 'string') throw new Error(`no node.latency on the PipeWire node ${speakerNode}; ${bridgeFailed(0)}`);
    ctx.log(`mic disabled: CPU per bridge (%): ${speakerCpu.per.map((x) => x.toFixed(1)).join(' ')}; speaker node.latency ${speakerLatency}`);

    // Re-attach: each VM restarts (its QEMU goes away, a new one with the same name comes).
    const reattach: number[] = [];
    const rounds = ctx.durationScale < 1 ? 1 : 2;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < N; i++) {
        await fakes.ask({ cmd: 'stop', i }, (e) => e.ev === 'down' && e.i === i);
        await watch.when(i, (s) => !s.attached, 'detached after its VM stopped');
        reattach.push(await appear(i, 're-attached with every route running'));
      }
    }
    ctx.log(`re-attach (ms): ${reattach.map((x) => x.toFixed(0)).join(' ')}`);

    // Camera: bridge 0 again, now with a PipeWire camera node, its VM sending 1280x800 at 30/s.
    await bridges[0]!.stop();
    await fakes.ask({ cmd: 'stop', i: 0 }, (e) => e.ev === 'down' && e.i === 0);
    bridges[0] = startBridge(0, true);
    await published(0);
    await fakes.ask({ cmd: 'start', i: 0, name: vmName(0), camera: true }, (e) => e.ev === 'up' && e.i === 0);
    await watch.when(0, allRunning, 'attached with audio and camera running').catch((e: Error) => {
      throw new Error(`${e.message}; ${bridgeFailed(0)}`);
    });
    await fakes.ask({ cmd: 'updates', i: 0, on: true }, (e) => e.ev === 'updates');
    const node = cameraNodeName(vmName(0));
    await pw.waitForNode(node, 20_000).catch(async () => {
      const names = [...(await pw!.nodesByName()).keys()];
      throw new Error(`no PipeWire camera node ${node}; nodes: ${names.join(', ')}; ${bridgeFailed(0)}`);
    });
    viewer = spawnManaged('gst-viewer', ...dieWithParent('gst-launch-1.0', ['-q', 'pipewiresrc', `target-object=${node}`, '!', 'fakesink', 'sync=false']), {
      env: { ...process.env, ...pw.env },
      logFile: path.join(dir, 'viewer.log'),
    });
    await new Promise((r) => setTimeout(r, 3000)); // negotiation, first frames
    if (!viewer.isRunning()) throw new Error(`the camera viewer (gst-launch-1.0 pipewiresrc) exited: ${viewer.log().slice(-1500)}`);
    const u0 = (await fakes.ask({ cmd: 'stats' }, (e) => e.ev === 'stats')) as FakeEvent;
    const camCpu = await measureCpu(bridges.map((b) => b!.pid));
    const u1 = (await fakes.ask({ cmd: 'stats' }, (e) => e.ev === 'stats')) as FakeEvent;
    const camMem = memOf(bridges[0]!.pid);
    const updatesPerS = ((u1.updates as number) - (u0.updates as number)) / camCpu.wall;
    ctx.log(`camera phase: bridge 0 ${camCpu.per[0].toFixed(1)} %, all ${camCpu.total.toFixed(1)} %, fakes ${camCpu.fakes.toFixed(1)} %; ${updatesPerS.toFixed(1)} Updates/s sent, ${(u1.skipped as number) - (u0.skipped as number)} skipped (socket full); camera bridge RSS ${camMem.rssMb.toFixed(1)} MB PSS ${camMem.pssMb.toFixed(1)} MB`);
    if (fakes.errors.length) throw new Error(`fake VMs reported: ${fakes.errors.join('; ')}`);

    // The floor, alone on the same graph: the bridges go first.
    await viewer.stop(1000);
    await Promise.all(bridges.map((b) => b!.stop()));
    const floor = await measureFloor({
      n: N,
      dir,
      pwEnv: pw.env,
      nodeEnv: env,
      latency: speakerLatency,
      windowMs,
      pw,
      cpu: (p) => measureCpu(p),
    });
    ctx.log(`floor: ${N} bare Node ${floor.node.toFixed(1)} %, ${N} pw-cat ${floor.pwCat.toFixed(1)} %`);

    const sortedA = [...attach].sort((a, b) => a - b);
    const sortedR = [...reattach].sort((a, b) => a - b);
    const sortedRtt = [...rtts].sort((a, b) => a - b);
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const rssMean = mean(mems.map((m) => m.rssMb));
    const pssMean = mean(mems.map((m) => m.pssMb));
    return [
      {
        name: '10 bridges, guests playing and recording (QEMU reading each mic voice), total CPU (% of one core)',
        value: audioCpu.total,
        unit: '%',
        better: 'lower',
        baseline: { name: 'the fake VMs sending them the audio and reading the mics (one process)', value: audioCpu.fakes },
        note: `${(windowMs / 1000).toFixed(0)} s window; per bridge ${audioCpu.per.map((x) => x.toFixed(1)).join(', ')} %; ${(writes / audioCpu.wall).toFixed(0)} Writes/s (480 frames each) and ${(reads / audioCpu.wall).toFixed(0)} Reads/s (1920 bytes asked, ${shortReads} answered short) in all; load average ${load}`,
      },
      {
        name: '10 bridges playing, guests not recording (mic voice disabled), total CPU (% of one core)',
        value: speakerCpu.total,
        unit: '%',
        better: 'lower',
        baseline: { name: `floor: 10 × (bare Node 20 woken by 100 Write-sized messages/s + pw-cat playing at node.latency ${speakerLatency})`, value: floor.node + floor.pwCat },
        note: `issue 17's audio-only target row (< 20 %); per bridge ${speakerCpu.per.map((x) => x.toFixed(1)).join(', ')} %; floor: the Node processes ${floor.node.toFixed(1)} %, the pw-cat ${floor.pwCat.toFixed(1)} %; load average ${load}`,
      },
      {
        name: 'resident memory per audio-only bridge (mean Rss)',
        value: rssMean,
        unit: 'MB',
        better: 'lower',
        baseline: { name: 'bare Node 20 process (Rss)', value: bareMem.rssMb },
        note: `NODE_OPTIONS of the unit: ${nodeOptions || '(none)'}; Rss ${Math.min(...mems.map((m) => m.rssMb)).toFixed(1)}-${Math.max(...mems.map((m) => m.rssMb)).toFixed(1)} MB; Pss (shared pages split among the processes that map them) ${pssMean.toFixed(1)} MB vs bare Node ${bareMem.pssMb.toFixed(1)} MB; anonymous ${mean(mems.map((m) => m.anonMb)).toFixed(1)} MB vs ${bareMem.anonMb.toFixed(1)} MB`,
      },
      {
        name: 'resident memory of the audio + PipeWire camera bridge, watched (Rss)',
        value: camMem.rssMb,
        unit: 'MB',
        better: 'lower',
        baseline: { name: 'bare Node 20 process (Rss)', value: bareMem.rssMb },
        note: `Pss ${camMem.pssMb.toFixed(1)} MB, anonymous ${camMem.anonMb.toFixed(1)} MB; CPU of that bridge ${camCpu.per[0].toFixed(1)} % of one core at ${updatesPerS.toFixed(1)} full-frame 1280x800 Updates/s -> 1280x720 camera node; all ten ${camCpu.total.toFixed(1)} %`,
      },
      {
        name: `attach, VM appears -> every route running, p50 (n=${attach.length})`,
        value: percentile(sortedA, 50),
        unit: 'ms',
        better: 'lower',
        baseline: { name: 'one D-Bus round trip to a fake VM (Properties.Get), p50', value: percentile(sortedRtt, 50) },
        note: 'from the fake VM owning org.qemu to the status-bus PropertiesChanged showing Attached and every route running; the bridges were started first and waited for their VMs',
      },
      { name: `attach p99 (n=${attach.length})`, value: percentile(sortedA, 99), unit: 'ms', better: 'lower', baseline: { name: 'D-Bus round trip p99', value: percentile(sortedRtt, 99) } },
      {
        name: `re-attach after a VM restart, p50 (n=${reattach.length})`,
        value: percentile(sortedR, 50),
        unit: 'ms',
        better: 'lower',
        baseline: { name: 'D-Bus round trip p50', value: percentile(sortedRtt, 50) },
        note: 'the fake VM closes its bus connection and listeners, then a new one with the same name requests org.qemu (queued behind the other VMs'
          + ' unless it is the first); to the PropertiesChanged showing Attached again with every route running',
      },
      { name: `re-attach p99 (n=${reattach.length})`, value: percentile(sortedR, 99), unit: 'ms', better: 'lower', baseline: { name: 'D-Bus round trip p99', value: percentile(sortedRtt, 99) } },
    ];
  } finally {
    await viewer?.stop(1000);
    await probe?.close();
    await rig?.close();
  }
}
