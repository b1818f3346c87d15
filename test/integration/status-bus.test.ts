// The status bus end to end (issue 16), on real parts started here: the VM's private bus and a
// separate session bus (two dbus-daemons), the QEMU TCG test guest playing a tone, PipeWire +
// WirePlumber, and `qemu-dbus-bridge run` as real processes (the bundled CLI). Read back with
// the real `status`/`grab`/`release` commands and busctl. Checked: `status --json` matches the
// documented schema and its counters move while the guest plays; a stalled guest shows as
// underruns and a stopped sound server as lost frames and a reconnect; Release/Grab through D-Bus
// move input between host and guest (replayed keys dropped, then forwarded to the guest); two
// bridges are two rows; a second bridge of the same VM ends with one line naming the first's PID;
// the live object introspects as bridge1.xml; counters go out at most once per second; without a
// session bus the bridge says so once and runs on.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventScript, writeEvents } from '../../src/input/replay-writer';
import { openBus, RemoteObject, type BusConnection } from '../../src/qemu';
import { INTERFACE, OBJECT_PATH, busNameFor } from '../../src/service/status-bus/interface';
import { statusJson, type BridgeJson, type StatusJson } from '../../src/service/status-bus/json';
import type { AudioOutCounters, CameraCounters, InputCounters } from '../../src/service/route';
import { cameraNodeName } from '../../src/camera/sinks/pipewire';
import { captureCameraFrames } from '../harness/gst';
import { runCli as runCliToEnd, startBridgeProcess, type BridgeProcess, type CliResult } from '../harness/bridge-process';
import { bundleCli } from '../harness/cli';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { parseIntrospection } from '../harness/introspection';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { sleep, tempDir, waitFor } from '../harness/procs';
import { parseInputEvents, startGuest, type Guest } from '../harness/qemu';

const KEY_A = 30;
const KEY_B = 48;

let cli: string;
let dir: string;
let pw: PipeWire;
let vmBus: DbusDaemon;
let session: DbusDaemon;
let guest: Guest;
let fifo: string;
let writer: fs.promises.FileHandle | undefined;
const started: BridgeProcess[] = [];
const t0 = Date.now();

/** `run` on the VM bus; env: the whole environment. */
function startBridge(args: string[], env: NodeJS.ProcessEnv): BridgeProcess {
  const b = startBridgeProcess(['run', '--address', vmBus.address, ...args], { cli, env, cleanEnv: true });
  started.push(b);
  return b;
}

const sessionEnv = (): NodeJS.ProcessEnv => ({ ...process.env, ...pw.env, DBUS_SESSION_BUS_ADDRESS: session.address });

/** Runs the CLI; resolves with its exit code and output (never rejects on a non-zero exit). */
const runCli = (args: string[], env = sessionEnv()): Promise<CliResult> => runCliToEnd(args, { cli, env, cleanEnv: true, timeoutMs: 30_000 });

/** `status --json` (optionally --vm), checked against the documented schema. */
async function statusOf(vm?: string): Promise<StatusJson> {
  const r = await runCli(['status', '--json', ...(vm ? ['--vm', vm] : [])]);
  expect(r.code, r.stderr).toBe(0);
  const parsed = statusJson.safeParse(JSON.parse(r.stdout));
  expect(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues)).toBe(true);
  return parsed.data!;
}

const routeOf = (b: BridgeJson, name: string) => b.routes.find((r) => r.name === name);
const audioOut = (s: StatusJson): AudioOutCounters => routeOf(s.bridges[0], 'audio-out')!.counters as AudioOutCounters;
const camera = (s: StatusJson): CameraCounters => routeOf(s.bridges[0], 'camera')!.counters as CameraCounters;
const input = (s: StatusJson): InputCounters => routeOf(s.bridges[0], 'input')!.counters as InputCounters;

/** Polls `status --json --vm` until cond holds; the last reading is in the failure message. */
async function waitStatus(what: string, vm: string, cond: (s: StatusJson) => boolean, timeoutMs = 60_000): Promise<StatusJson> {
  let last: StatusJson | undefined;
  try {
    await waitFor(what, timeoutMs, async () => cond((last = await statusOf(vm))), 500);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last: ${JSON.stringify(last)}`);
  }
  return last!;
}

let a: BridgeProcess;

beforeAll(async () => {
  dir = tempDir('status-bus');
  cli = bundleCli('status-bus');
  [pw, vmBus, session] = await Promise.all([startPipeWire(), startDbusDaemon(), startDbusDaemon()]);
  guest = await startGuest({ scenario: ['tone'], busAddress: vmBus.address, name: 'st-a', params: { tone_hz: 1000, tone_ms: 90_000 } });
  fifo = path.join(dir, 'keys.fifo');
  await new Promise<void>((r, j) => execFile('mkfifo', [fifo], (e) => (e ? j(e) : r())));
  a = startBridge(['--vm', 'st-a', '--audio', 'pipewire', '--audio-sink', 'vm-sink', '--camera', 'pipewire', '--camera-size', '320x240', '--camera-fps', '10', '--input-replay', fifo], sessionEnv());
  // The bridge opens the FIFO's reading end once attached; opening the writer waits for that.
  writer = await fs.promises.open(fifo, 'w');
  console.log(`status-bus: setup ${Date.now() - t0} ms`);
}, 240_000);

afterAll(async () => {
  await writer?.close().catch(() => undefined);
  for (const p of started) p.kill('SIGKILL');
  await guest?.stop();
  await Promise.all([pw?.stop(), vmBus?.stop(), session?.stop()]);
  if (cli) fs.rmSync(path.dirname(cli), { recursive: true, force: true });
  console.log(`status-bus: whole file ${Date.now() - t0} ms`);
});

/** On failure, the bridge's own log says what it saw. */
async function withLog<T>(b: BridgeProcess, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    console.log(`bridge log:\n${b.log()}`);
    throw err;
  }
}

describe('status bus of a bridge on the real guest', () => {
  it('status --json: the documented schema, and audio counters move while the guest plays a tone', () =>
    withLog(a, async () => {
      await guest.waitForSerial(/MARK play-start/, 120_000);
      const s1 = await waitStatus('audio-out playing', 'st-a', (s) => audioOut(s).format !== '' && audioOut(s).frames > 0);
      const b = s1.bridges[0];
      expect(b).toMatchObject({ vm: 'st-a', uuid: guest.uuid, pid: a.pid, busName: busNameFor('st-a'), attached: true });
      expect(b.qemuFeatures).toContain('audio');
      expect(routeOf(b, 'audio-out')).toMatchObject({ state: 'running', target: 'vm-sink (pipewire)', nextRetryAt: null });
      expect(audioOut(s1).format).toBe('s16le 44100 Hz 2ch');
      await sleep(2000);
      const s2 = await statusOf('st-a');
      // 2 s of a 44.1 kHz tone: well over one second's worth of frames arrived in between.
      expect(audioOut(s2).frames - audioOut(s1).frames).toBeGreaterThan(44_100);
      expect(audioOut(s2).measuredLatencyMs).toBeGreaterThan(0);
      console.log(`audio-out counters: ${JSON.stringify(audioOut(s2))}`);
    }),
  120_000);

  it('a stalled guest shows as underruns; a stopped sound server as lost frames, then a reconnect', () =>
    withLog(a, async () => {
      const before = audioOut(await statusOf('st-a'));
      // QEMU frozen for 2 s: no Writes, the sink runs dry while the voice is enabled.
      process.kill(guest.pid, 'SIGSTOP');
      await sleep(2000);
      process.kill(guest.pid, 'SIGCONT');
      const stalled = audioOut(await waitStatus('underruns counted', 'st-a', (s) => audioOut(s).underruns > before.underruns, 20_000));
      console.log(`after a 2 s guest stall: underruns ${before.underruns} -> ${stalled.underruns}`);

      await pw.halt();
      const gone = await waitStatus('frames lost while PipeWire is gone', 'st-a', (s) => audioOut(s).lostFrames > before.lostFrames, 30_000);
      expect(routeOf(gone.bridges[0], 'audio-out')!.state).toBe('running'); // the Speaker reconnects by itself
      await pw.resume();
      const back = audioOut(await waitStatus('stream reopened', 'st-a', (s) => audioOut(s).reconnects > before.reconnects, 60_000));
      console.log(`PipeWire halted and resumed: lostFrames ${back.lostFrames}, reconnects ${back.reconnects}`);
    }),
  120_000);

  it('camera: a viewer shows as viewer and fps while it watches, and goes again', () =>
    withLog(a, async () => {
      expect(camera(await statusOf('st-a'))).toMatchObject({ viewer: false, target: 'PipeWire camera' });
      // 80 frames at 10 fps: about 8 s of a real PipeWire consumer.
      const capture = captureCameraFrames({ env: pw.env, target: cameraNodeName('st-a'), count: 80, timeoutMs: 60_000 });
      try {
        // fps is measured between two readings a second apart: the first one after the viewer came is partial.
        const watching = camera(await waitStatus('viewer and about 10 fps delivered', 'st-a', (s) => camera(s).viewer && camera(s).fps >= 5, 30_000));
        console.log(`camera while watched: ${JSON.stringify(watching)}`);
        expect(watching.converted).toBeGreaterThan(0);
      } finally {
        await capture;
      }
      await waitStatus('viewer gone', 'st-a', (s) => !camera(s).viewer, 30_000);
    }),
  90_000);

  it('Release and Grab through D-Bus move input between host and guest (replayed keys dropped, then forwarded)', () =>
    withLog(a, async () => {
      expect(input(await statusOf('st-a')).forwardTo).toBe('guest');
      const rel = await runCli(['release', '--vm', 'st-a']);
      expect(rel, rel.stderr).toMatchObject({ code: 0, stdout: "VM 'st-a': input goes to the host\n" });
      const released = input(await statusOf('st-a'));
      expect(released).toMatchObject({ forwardTo: 'host', grabbed: false, devices: [fifo] });
      writeEvents(writer!.fd, new EventScript().key(KEY_A, 1).key(KEY_A, 0));
      const dropped = input(await waitStatus('released key dropped', 'st-a', (s) => input(s).dropped > released.dropped, 20_000));
      expect(dropped.forwarded).toBe(released.forwarded);

      const grab = await runCli(['grab', '--vm', 'st-a']);
      expect(grab, grab.stderr).toMatchObject({ code: 0, stdout: "VM 'st-a': input goes to the guest\n" });
      expect(input(await statusOf('st-a')).forwardTo).toBe('guest');
      writeEvents(writer!.fd, new EventScript().key(KEY_B, 1).key(KEY_B, 0));
      await waitStatus('grabbed key forwarded', 'st-a', (s) => input(s).forwarded >= dropped.forwarded + 2, 20_000);
      await waitFor('the guest saw B and not A', 60_000, () => parseInputEvents(guest.serial()).some((e) => e.type === 1 && e.code === KEY_B && e.value === 0));
      expect(parseInputEvents(guest.serial()).some((e) => e.type === 1 && e.code === KEY_A)).toBe(false);
    }),
  90_000);

  it('the live object introspects as bridge1.xml (busctl shows it) and sends counters at most once per second', () =>
    withLog(a, async () => {
      const name = busNameFor('st-a');
      const busctl = await new Promise<string>((resolve, reject) =>
        execFile('busctl', [`--address=${session.address}`, 'introspect', name, OBJECT_PATH], { timeout: 15_000 }, (e, out) => (e ? reject(e) : resolve(out))),
      );
      expect(busctl).toMatch(/^\.Grab\s+method\s+-\s+b/m);
      expect(busctl).toMatch(/^\.Counters\s+property\s+a\{sa\{sv\}\}/m);
      let conn: BusConnection | undefined;
      try {
        conn = await openBus(session.address);
        // Signals carry the sender's unique name, so subscribe with the name's owner.
        const owner = await conn.bus.getNameOwner(name);
        const obj = new RemoteObject({ bus: conn.bus, destination: owner, canPassFds: false }, OBJECT_PATH);
        const live = parseIntrospection(await obj.introspect(), INTERFACE);
        const committed = parseIntrospection(fs.readFileSync(path.join(__dirname, '../../src/service/status-bus/bridge1.xml'), 'utf8'), INTERFACE);
        expect(live).toEqual(committed);
        const counters: number[] = [];
        const off = await obj.onPropertiesChanged(INTERFACE, (changed) => {
          if ('Counters' in changed) counters.push(Date.now());
        });
        const start = Date.now();
        await sleep(4000);
        const seconds = (Date.now() - start) / 1000;
        await off();
        console.log(`Counters PropertiesChanged: ${counters.length} in ${seconds.toFixed(1)} s`);
        // The tone plays, so the counters change every second: some arrive, never more than one a second.
        expect(counters.length).toBeGreaterThan(0);
        expect(counters.length).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
      } finally {
        await conn?.close();
      }
    }),
  60_000);

  it('status --watch --json prints one schema-valid object per second until stopped', async () => {
    const watch = startBridgeProcess(['status', '--watch', '--json'], { cli, env: sessionEnv(), cleanEnv: true });
    started.push(watch);
    await watch.until('three readings', 20_000, () => watch.stdout().split('\n').filter((l) => l.trim()).length >= 3);
    watch.kill('SIGTERM');
    const lines = watch.stdout().split('\n').filter((l) => l.trim());
    for (const l of lines) expect(statusJson.safeParse(JSON.parse(l)).success, l).toBe(true);
    expect(JSON.parse(lines[0]).bridges[0].vm).toBe('st-a');
  }, 30_000);

  it('RestartRoute and Reattach through D-Bus (busctl): the route, then the whole attach, come back running', () =>
    withLog(a, async () => {
      const call = (member: string, ...args: string[]) =>
        new Promise<string>((resolve, reject) =>
          execFile('busctl', [`--address=${session.address}`, 'call', busNameFor('st-a'), OBJECT_PATH, INTERFACE, member, ...args], { timeout: 30_000 }, (e, out, err) => (e ? reject(new Error(`${e.message}: ${err}`)) : resolve(out.trim()))),
        );
      const before = routeOf((await statusOf('st-a')).bridges[0], 'audio-out')!.counters as AudioOutCounters;
      expect(await call('RestartRoute', 's', 'audio-out')).toBe('as 1 "audio-out"');
      // A fresh route counts from zero; it runs again and the tone flows into it.
      await waitStatus('audio-out restarted and playing', 'st-a', (s) => {
        const c = audioOut(s);
        return routeOf(s.bridges[0], 'audio-out')!.state === 'running' && c.frames > 0 && c.frames < before.frames;
      });
      await expect(call('RestartRoute', 's', 'speaker')).rejects.toThrow(/no route 'speaker'/);

      expect(await call('Reattach')).toBe('');
      await waitStatus('attached again, every route running', 'st-a', (s) => s.bridges[0].attached && s.bridges[0].routes.every((r) => r.state === 'running'));
      expect(a.log()).toMatch(/re-attach requested on the status bus/);
    }),
  90_000);

  it('two bridges are two rows; a second bridge of the same VM ends with one line naming the first', async () => {
    const b = startBridge(['--vm', 'st-b', '--audio', 'none', '--camera', 'none'], sessionEnv());
    await withLog(b, async () => {
      await waitFor('st-b on the session bus', 30_000, async () => (await statusOf()).bridges.length === 2, 500);
      const table = await runCli(['status']);
      expect(table.code, table.stderr).toBe(0);
      const rows = table.stdout.trim().split('\n');
      expect(rows).toHaveLength(3); // header + one row per bridge
      expect(rows[0]).toMatch(/^VM\s+PID\s+VM LINK\s+AUDIO OUT\s+MIC\s+CAMERA\s+INPUT$/);
      expect(rows[1]).toMatch(new RegExp(`^st-a\\s+${a.pid}\\s+attached\\s+44100 Hz 2ch`));
      expect(rows[2]).toMatch(new RegExp(`^st-b\\s+${b.pid}\\s+waiting\\s`));
      console.log(`status table:\n${table.stdout}`);

      const again = await runCli(['run', '--address', vmBus.address, '--vm', 'st-a', '--audio', 'none', '--camera', 'none']);
      const lines = again.stderr.trim().split('\n');
      expect(again.code).toBe(3);
      expect(lines.filter((l) => l.startsWith('qemu-dbus-bridge:'))).toEqual([
        `qemu-dbus-bridge: VM 'st-a' is already bridged by PID ${a.pid} [EALREADY_BRIDGED] Fix: stop that bridge first (qemu-dbus-bridge status shows it; systemctl --user stop qemu-dbus-bridge@st-a if it is the unit)`,
      ]);
      // The first bridge is untouched: still attached and playing.
      expect((await statusOf('st-a')).bridges[0].attached).toBe(true);
      expect((await b.stop()).code).toBe(0);
    });
  }, 60_000);

  it('without a session bus the bridge says once that status is unavailable and runs on', async () => {
    const env = { ...process.env, ...pw.env };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    const c = startBridge(['--vm', 'st-c', '--audio', 'none', '--camera', 'none', '--log-format', 'json'], env);
    await withLog(c, async () => {
      await waitFor('the "cannot attach" line', 30_000, () => c.log().includes('cannot attach'));
      await sleep(1500);
      expect(c.log().split('\n').filter((l) => l.includes('status is unavailable'))).toHaveLength(1);
      expect(c.running).toBe(true);
      expect((await c.stop()).code).toBe(0);
    });
  }, 60_000);

  it('SIGTERM ends the bridge cleanly and its name leaves the session bus', () =>
    withLog(a, async () => {
      expect((await a.stop()).code).toBe(0);
      expect((await statusOf()).bridges).toEqual([]);
    }),
  30_000);
});
