// What wakes one audio-only bridge besides QEMU's Writes (issue 17: ten bridges' CPU). One real
// bridge (started as the systemd unit starts it: bench/scale-rig.ts, the scale bench's rig)
// attached to one fake VM of QEMU 10's flavour (bench/scale-fakes.ts), playing into a real PipeWire
// + WirePlumber, publishing on a real session bus where a client watches its PropertiesChanged.
// Per thread of the bridge (/proc/PID/task/*: comm, voluntary and involuntary context switches,
// schedstat run time) over two windows:
//   - playing: the fake Writes 480 frames every 10 ms; the speaker's intake thread takes them
//     (native/speaker_intake.h), so the main thread's wakeups are what the rest costs while audio
//     flows;
//   - enabled, silent: the output voice stays enabled and the fake sends nothing (a guest whose
//     sound device is open but quiet): every wakeup left is one that is not a Write.
//   - VM gone: the fake VM stopped (its bus name gone), the bridge waiting to re-attach.
// Baseline, same windows: a bare Node 20 process started the same way (its own timers and
// V8/libuv threads: what no bridge can go below).
import * as fs from 'fs';
import { BenchContext, BenchRow } from './lib';
import { allRunning, openScaleRig, vmName, type ScaleRig } from './scale-rig';

interface ThreadSample {
  tid: number;
  comm: string;
  /** voluntary context switches: the thread slept and was woken */
  wakeups: number;
  involuntary: number;
  /** schedstat: ns on the CPU */
  runNs: number;
  /** real-time priority (a PipeWire data loop made SCHED_FIFO by module-rt), 0 for the others */
  rtPriority: number;
}

function threads(pid: number): Map<number, ThreadSample> {
  const out = new Map<number, ThreadSample>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${t}`;
      const status = fs.readFileSync(`${dir}/status`, 'utf8');
      const field = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
      out.set(Number(t), {
        tid: Number(t),
        comm: fs.readFileSync(`${dir}/comm`, 'utf8').trim(),
        wakeups: field('voluntary_ctxt_switches'),
        involuntary: field('nonvoluntary_ctxt_switches'),
        runNs: Number(fs.readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0]),
        rtPriority: Number(fs.readFileSync(`${dir}/stat`, 'utf8').split(') ')[1].split(' ')[37]),
      });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

interface ThreadRate {
  name: string;
  /** voluntary switches per second */
  wakeups: number;
  involuntary: number;
  /** ms on the CPU per second */
  cpuMs: number;
}

/** Per-thread rates of `pid` over `ms`; the main thread is "main", the others by comm (and tid), `[fifo]` for a real-time one. */
async function rates(pid: number, ms: number): Promise<ThreadRate[]> {
  const a = threads(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const b = threads(pid);
  const s = (performance.now() - t0) / 1000;
  const out: ThreadRate[] = [];
  for (const [tid, y] of b) {
    const x = a.get(tid) ?? { ...y, wakeups: 0, involuntary: 0, runNs: 0 };
    out.push({ name: tid === pid ? 'main' : `${y.comm}${y.rtPriority > 0 ? '[fifo]' : ''}/${tid}`, wakeups: (y.wakeups - x.wakeups) / s, involuntary: (y.involuntary - x.involuntary) / s, cpuMs: (y.runNs - x.runNs) / 1e6 / s });
  }
  return out.sort((p, q) => q.wakeups - p.wakeups);
}

const total = (r: ThreadRate[]): number => r.reduce((t, x) => t + x.wakeups, 0);
const main = (r: ThreadRate[]): ThreadRate => r.find((x) => x.name === 'main')!;
const cpu = (r: ThreadRate[]): number => r.reduce((t, x) => t + x.cpuMs, 0);
const show = (r: ThreadRate[]): string =>
  `all threads ${total(r).toFixed(1)}/s, ${cpu(r).toFixed(2)} ms/s: ` +
  r
    .filter((x) => x.wakeups > 0 || x.cpuMs > 0.05)
    .map((x) => `${x.name} ${x.wakeups.toFixed(1)}/s (+${x.involuntary.toFixed(1)} preempted, ${x.cpuMs.toFixed(2)} ms/s)`)
    .join('; ');

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  let rig: ScaleRig | undefined;
  try {
    rig = await openScaleRig('wakeups-bench');
    const { fakes, watch, bare } = rig;
    const b = rig.startBridge(0, false);
    const failed = (what: string) => (e: Error): never => {
      throw new Error(`${what}: ${e.message}; bridge (${b.isRunning() ? 'running' : 'exited'}): ${b.log().slice(-1500)}`);
    };
    await rig.published(0, b);
    await fakes.ask({ cmd: 'start', i: 0, name: vmName(0) }, (e) => e.ev === 'up' && e.i === 0);
    await watch.when(0, allRunning, 'attached with every route running').catch(failed('attach'));
    // The guest plays and does not record: the microphone stream is closed (once the fake has the
    // bridge's input listener to tell).
    for (let tries = 0; ; tries++) {
      const mic = await fakes.ask({ cmd: 'mic', on: false }, (e) => e.ev === 'mic');
      if (mic.voices === 1) break;
      if (tries >= 100) throw new Error(`mic off: the fake has ${String(mic.voices)} input listeners after 10 s; bridge: ${b.log().slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const windowMs = Math.max(10_000, 30_000 * ctx.durationScale);

    const s0 = await fakes.ask({ cmd: 'stats' }, (e) => e.ev === 'stats');
    const [playing, barePlaying] = await Promise.all([rates(b.pid, windowMs), rates(bare.pid, windowMs)]);
    const s1 = await fakes.ask({ cmd: 'stats' }, (e) => e.ev === 'stats');
    const writesPerS = ((s1.writes as number) - (s0.writes as number)) / (windowMs / 1000);
    ctx.log(`playing (${writesPerS.toFixed(1)} Writes/s): ${show(playing)}`);
    ctx.log(`bare Node meanwhile: ${show(barePlaying)}`);

    await fakes.ask({ cmd: 'writes', on: false }, (e) => e.ev === 'writes');
    await new Promise((r) => setTimeout(r, 3000));
    const [silent, bareSilent] = await Promise.all([rates(b.pid, windowMs), rates(bare.pid, windowMs)]);
    ctx.log(`voice enabled, no Writes: ${show(silent)}`);
    ctx.log(`bare Node meanwhile: ${show(bareSilent)}`);
    // The VM goes away and does not come back: what a bridge waiting for it costs.
    await fakes.ask({ cmd: 'stop', i: 0 }, (e) => e.ev === 'down' && e.i === 0);
    await watch.when(0, (st) => !st.attached, 'detached after its VM stopped').catch(failed('detach'));
    await new Promise((r) => setTimeout(r, 3000));
    const [gone, bareGone] = await Promise.all([rates(b.pid, windowMs), rates(bare.pid, windowMs)]);
    ctx.log(`VM gone, waiting for it: ${show(gone)}`);
    ctx.log(`bare Node meanwhile: ${show(bareGone)}`);
    if (!b.isRunning()) throw new Error(`the bridge exited during the windows: ${b.log().slice(-1500)}`);
    if (fakes.errors.length) throw new Error(`fake VM reported: ${fakes.errors.join('; ')}`);
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    return [
      {
        name: 'one audio-only bridge, voice enabled, no Writes: wakeups/s, all threads',
        value: total(silent),
        unit: '/s',
        better: 'lower',
        baseline: { name: 'bare Node 20 process, all threads', value: total(bareSilent) },
        note: `${(windowMs / 1000).toFixed(0)} s window; ${show(silent)}; load average ${load}`,
      },
      {
        name: 'the same, main thread',
        value: main(silent).wakeups,
        unit: '/s',
        better: 'lower',
        baseline: { name: 'bare Node 20, main thread', value: main(bareSilent).wakeups },
        note: `main thread on the CPU ${main(silent).cpuMs.toFixed(2)} ms/s (bare Node ${main(bareSilent).cpuMs.toFixed(2)})`,
      },
      {
        name: 'one audio-only bridge whose VM is gone (waiting to re-attach): main-thread wakeups/s',
        value: main(gone).wakeups,
        unit: '/s',
        better: 'lower',
        baseline: { name: 'bare Node 20, main thread', value: main(bareGone).wakeups },
        note: `main thread on the CPU ${main(gone).cpuMs.toFixed(2)} ms/s; ${show(gone)}`,
      },
      {
        name: 'one audio-only bridge playing: main-thread wakeups/s (the Writes go to the intake thread)',
        value: main(playing).wakeups,
        unit: '/s',
        better: 'lower',
        baseline: { name: 'bare Node 20, main thread', value: main(barePlaying).wakeups },
        note: `${writesPerS.toFixed(1)} Writes/s; main thread on the CPU ${main(playing).cpuMs.toFixed(2)} ms/s; all threads: ${show(playing)}; load average ${load}`,
      },
    ];
  } finally {
    await rig?.close();
  }
}
