// Controller with fake routes and a fake attacher: start order, reverse stop order,
// independence of routes, backoff, re-attach when the VM goes away, stop budget with a hung
// route, and the sd_notify sequence (READY/STATUS/WATCHDOG/STOPPING).
import { describe, expect, it } from 'vitest';
import { createLogger, Logger } from '../../src/log';
import { backoffDelay } from '../../src/service/backoff';
import { Controller } from '../../src/service/controller';
import { SystemdNotifier } from '../../src/service/notify';
import { Attacher, CodedError, emptyCounters, Route, RouteContext, RouteCounters, RouteId, RouteName, VmLink } from '../../src/service/route';
import { waitFor } from '../harness/procs';

function recordLog(lines: string[]): Logger {
  return createLogger({ format: 'json', level: 'debug', write: (l) => lines.push(l) });
}

class FakeVm implements VmLink {
  name = 'vm1';
  uuid = '00000000-0000-0000-0000-000000000001';
  closed = 0;
  private resolveLost!: (r: string) => void;
  readonly lost = new Promise<string>((r) => (this.resolveLost = r));
  constructor(readonly serial: number) {}
  private presence = new Set<(p: { present: boolean; reason?: string }) => void>();
  onPresence(cb: (p: { present: boolean; reason?: string }) => void): () => void {
    this.presence.add(cb);
    return () => this.presence.delete(cb);
  }
  setPresent(present: boolean, reason?: string): void {
    for (const cb of this.presence) cb({ present, reason });
  }
  lose(reason: string): void {
    this.resolveLost(reason);
  }
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}

/** A failure retrying cannot fix (isPermanent). */
const permanentError = (code: string, message: string): CodedError => Object.assign(new CodedError(code, message), { permanent: true });

class FakeAttacher implements Attacher<FakeVm> {
  vms: FakeVm[] = [];
  failuresLeft = 0;
  attempts = 0;
  permanentFailure: CodedError | undefined;
  attach(): Promise<FakeVm> {
    this.attempts++;
    if (this.permanentFailure) return Promise.reject(this.permanentFailure);
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      return Promise.reject(new CodedError('ENOVM', 'no VM yet'));
    }
    const vm = new FakeVm(this.vms.length + 1);
    this.vms.push(vm);
    return Promise.resolve(vm);
  }
  describe(): string {
    return "VM 'vm1' on fake bus";
  }
}

/** An attacher that can say "a QEMU appeared" (Attacher.appeared), like the bus attacher's watch. */
class AnnouncingAttacher extends FakeAttacher {
  private announce: (() => void) | undefined;
  /** appeared() waits whose signal has not ended them yet */
  pending = 0;
  appeared(signal: AbortSignal): Promise<void> {
    this.pending++;
    return new Promise<void>((resolve) => {
      this.announce = resolve;
      signal.addEventListener('abort', () => resolve(), { once: true });
    }).finally(() => this.pending--);
  }
  /** A QEMU appeared: the pending appeared() resolves. */
  arrive(): void {
    this.announce?.();
  }
}

class FakeRoute implements Route<FakeVm> {
  starts = 0;
  stops = 0;
  failStarts = 0;
  /** Start fails with this permanent error (like EP2P_AUDIO) this many times. */
  failPermanently: { err: CodedError; times: number } | undefined;
  hangOnStop = false;
  hangOnStart = false;
  ctx: RouteContext<FakeVm> | undefined;
  startTimes: number[] = [];
  constructor(
    readonly name: RouteName,
    private readonly journal: string[],
  ) {}
  start(ctx: RouteContext<FakeVm>): Promise<void> {
    this.starts++;
    this.startTimes.push(Date.now());
    this.journal.push(`start ${this.name} vm${ctx.vm.serial}`);
    if (this.hangOnStart) return new Promise(() => undefined);
    if (this.failPermanently && this.failPermanently.times-- > 0) return Promise.reject(this.failPermanently.err);
    if (this.failStarts > 0) {
      this.failStarts--;
      return Promise.reject(new CodedError('EFAKE', `${this.name} cannot start`));
    }
    this.ctx = ctx;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.stops++;
    this.journal.push(`stop ${this.name}`);
    if (this.hangOnStop) return new Promise(() => undefined);
    return Promise.resolve();
  }
  status(): string {
    return `${this.name} ok`;
  }
  counters(): RouteCounters {
    return emptyCounters(this.name);
  }
}

function setup(opts: { names?: RouteName[]; failAttach?: number; hangStart?: RouteName } = {}) {
  const journal: string[] = [];
  const logLines: string[] = [];
  const notes: string[] = [];
  const attacher = new FakeAttacher();
  attacher.failuresLeft = opts.failAttach ?? 0;
  const routes = (opts.names ?? ['input', 'camera', 'audio-in', 'audio-out']).map((n) => new FakeRoute(n, journal));
  for (const r of routes) r.hangOnStart = r.name === opts.hangStart;
  const notifier = new SystemdNotifier({
    send: (t) => {
      notes.push(t);
      return true;
    },
    env: { NOTIFY_SOCKET: '/fake', WATCHDOG_USEC: '40000' },
  });
  const controller = new Controller<FakeVm>({
    attacher,
    routes,
    log: recordLog(logLines),
    notifier,
    backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0 },
    stableMs: 60_000,
    startWaitMs: 100,
  });
  const byName = (n: RouteName) => routes.find((r) => r.name === n)!;
  return { journal, logLines, notes, attacher, routes, controller, byName };
}

describe('Controller', () => {
  it('starts routes in the fixed order (audio out, audio in, camera, input) and stops them in reverse', async () => {
    const t = setup();
    t.controller.start();
    await waitFor('all routes running', 5000, () => Object.values(t.controller.routeStates()).every((s) => s === 'running'));
    await t.controller.stop();
    expect(t.journal).toEqual([
      'start audio-out vm1',
      'start audio-in vm1',
      'start camera vm1',
      'start input vm1',
      'stop input',
      'stop camera',
      'stop audio-in',
      'stop audio-out',
    ]);
    expect(t.attacher.vms[0].closed).toBe(1);
  });

  it('a route that fails to start is retried with growing backoff while the others keep running', async () => {
    const t = setup();
    const camera = t.byName('camera');
    camera.failStarts = 3;
    t.controller.start();
    await waitFor('camera running after 3 failures', 10_000, () => t.controller.routeStates().camera === 'running');
    expect(camera.starts).toBe(4);
    // The others started once and were never stopped.
    for (const n of ['audio-out', 'audio-in', 'input'] as RouteName[]) {
      expect(t.byName(n).starts).toBe(1);
      expect(t.byName(n).stops).toBe(0);
    }
    const gaps = camera.startTimes.slice(1).map((v, i) => v - camera.startTimes[i]);
    // backoff 20, 40, 80 ms (no jitter): each gap at least its delay and growing
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[1]).toBeGreaterThanOrEqual(39);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    // one warn line for the repeated identical failure, then "recovered"
    const cameraWarns = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.component === 'camera' && l.level === 'warn');
    expect(cameraWarns).toHaveLength(1);
    expect(t.logLines.some((l) => l.includes('"component":"camera"') && l.includes('recovered'))).toBe(true);
    await t.controller.stop();
  });

  it('a route failing for a permanent reason is reported once, not retried, and tried again when the VM comes back', async () => {
    const t = setup({ names: ['audio-out', 'camera'] });
    const audio = t.byName('audio-out');
    audio.failPermanently = { err: permanentError('EFIXED', 'audio-out cannot work on this VM'), times: 1 };
    t.controller.start();
    await waitFor('audio-out unavailable and camera running', 5000, () => t.controller.routeStates()['audio-out'] === 'unavailable' && t.controller.routeStates().camera === 'running');
    await new Promise((r) => setTimeout(r, 300)); // several backoff steps (20, 40, 80, 160 ms) would have passed
    expect(audio.starts).toBe(1);
    expect(t.controller.statusLine()).toBe('audio-out unavailable (EFIXED: audio-out cannot work on this VM) · camera ok');
    const warns = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.component === 'audio-out' && l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ msg: 'cannot start on this VM: audio-out cannot work on this VM', code: 'EFIXED' });
    // The VM restarts under the same link (maybe another QEMU): the route tries once more, and runs.
    t.attacher.vms[0].setPresent(false, 'QEMU exited');
    t.attacher.vms[0].setPresent(true);
    await waitFor('audio-out running after the VM came back', 5000, () => t.controller.routeStates()['audio-out'] === 'running');
    expect(audio.starts).toBe(2);
    expect(t.byName('camera').stops).toBe(0);
    await t.controller.stop();
  });

  it('a route failing with a permanent error is reported once, left unavailable and not retried; a new attach tries it again', async () => {
    const t = setup();
    const audio = t.byName('audio-out');
    audio.failPermanently = { err: permanentError('EP2P_AUDIO', 'this QEMU cannot serve audio over p2p'), times: Infinity };
    t.controller.start();
    await waitFor('audio-out unavailable', 5000, () => t.controller.routeStates()['audio-out'] === 'unavailable');
    await new Promise((r) => setTimeout(r, 300)); // backoff would have retried at 20, 40, 80, 160 ms
    expect(audio.starts).toBe(1);
    expect(t.controller.statusLine()).toContain('audio-out unavailable (EP2P_AUDIO: this QEMU cannot serve audio over p2p)');
    const warns = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.component === 'audio-out' && l.level === 'warn');
    expect(warns.map((w) => w.msg)).toEqual(['cannot start on this VM: this QEMU cannot serve audio over p2p']);
    t.attacher.vms[0].lose('VM restarted');
    await waitFor('second attach', 5000, () => t.attacher.vms.length === 2 && t.controller.routeStates()['audio-out'] === 'unavailable' && audio.starts === 2);
    await t.controller.stop();
  });

  it('an attach failing with a permanent error ends supervision: fatal resolves with it, no retries', async () => {
    const t = setup();
    const err = permanentError('EBUS_PERMISSION', 'the bus lets only qemu connect');
    t.attacher.permanentFailure = err;
    t.controller.start();
    expect(await t.controller.fatal).toBe(err);
    await new Promise((r) => setTimeout(r, 300));
    expect(t.attacher.attempts).toBe(1);
    expect(t.logLines.filter((l) => l.includes('cannot attach'))).toEqual([]);
    await t.controller.stop();
  });

  it('a route whose start hangs does not hold back the routes after it', async () => {
    const t = setup({ hangStart: 'audio-in' });
    t.controller.start();
    await waitFor('input running', 5000, () => t.controller.routeStates().input === 'running');
    expect(t.controller.routeStates()).toEqual({ 'audio-out': 'running', 'audio-in': 'starting', camera: 'running', input: 'running' });
    expect(t.logLines.some((l) => l.includes('audio-in is still starting'))).toBe(true);
    await t.controller.stop();
    expect(t.byName('audio-in').stops).toBe(1);
  });

  it('a running route that reports failure is stopped and restarted alone', async () => {
    const t = setup();
    t.controller.start();
    await waitFor('running', 5000, () => t.controller.routeStates().input === 'running');
    const audio = t.byName('audio-out');
    audio.ctx!.fail(new CodedError('EPIPE', 'sound server went away'));
    await waitFor('audio-out restarted', 5000, () => audio.starts === 2 && t.controller.routeStates()['audio-out'] === 'running');
    expect(audio.stops).toBe(1);
    for (const n of ['audio-in', 'camera', 'input'] as RouteName[]) expect(t.byName(n).stops).toBe(0);
    await t.controller.stop();
  });

  it('retries attaching until the VM appears, then sends READY=1 once', async () => {
    const t = setup({ failAttach: 3 });
    t.controller.start();
    await waitFor('attached', 5000, () => t.controller.attachedVm !== undefined && t.controller.routeStates().input === 'running');
    expect(t.notes.filter((n) => n.startsWith('READY=1'))).toHaveLength(1);
    expect(t.notes.some((n) => n.startsWith('STATUS=waiting for'))).toBe(true);
    // one warning for the three identical attach failures
    expect(t.logLines.filter((l) => l.includes('cannot attach'))).toHaveLength(1);
    await t.controller.stop();
  });

  it('a failed attach is tried again as soon as the attacher says a QEMU appeared, not after the backoff', async () => {
    const attacher = new AnnouncingAttacher();
    attacher.failuresLeft = 1;
    const controller = new Controller<FakeVm>({ attacher, routes: [], log: recordLog([]), backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 }, attachRetryMaxMs: 60_000 });
    controller.start();
    await waitFor('the first attach failed', 5000, () => attacher.attempts === 1 && controller.statusLine().includes('no VM yet'));
    attacher.arrive();
    await waitFor('attached after the arrival', 20_000, () => controller.attachedVm !== undefined);
    expect(attacher.attempts).toBe(2);
    await controller.stop();
  });

  it('a wait for a QEMU that the backoff ended first is ended too: none is left after attaching', async () => {
    const attacher = new AnnouncingAttacher();
    attacher.failuresLeft = 5;
    const controller = new Controller<FakeVm>({ attacher, routes: [], log: recordLog([]), backoff: { initialMs: 5, maxMs: 5, jitter: 0 } });
    controller.start();
    await waitFor('attached on the backoff alone', 5000, () => controller.attachedVm !== undefined);
    expect(attacher.attempts).toBe(6);
    await waitFor('every wait ended', 1000, () => attacher.pending === 0);
    await controller.stop();
  });

  it('stops all routes when the VM goes away and starts them again on the new VM', async () => {
    const t = setup();
    t.controller.start();
    for (let i = 1; i <= 3; i++) {
      await waitFor(`attached #${i}`, 5000, () => t.attacher.vms.length === i && t.controller.routeStates().input === 'running');
      if (i < 3) t.attacher.vms[i - 1].lose('QEMU exited');
    }
    expect(t.journal.filter((j) => j === 'start audio-out vm3')).toHaveLength(1);
    expect(t.byName('input').stops).toBe(2);
    expect(t.attacher.vms[0].closed).toBe(1);
    expect(t.notes.filter((n) => n.startsWith('READY=1'))).toHaveLength(1);
    await t.controller.stop();
  });

  it('a VM that restarts under the same link keeps routes up and says so in STATUS=', async () => {
    const t = setup({ names: ['audio-out'] });
    const seen: string[] = [];
    t.controller.events.on('detached', (r) => seen.push(`detached:${r}`));
    t.controller.events.on('attached', (vm) => seen.push(`attached:${vm.name}`));
    t.controller.start();
    await waitFor('running', 5000, () => t.controller.routeStates()['audio-out'] === 'running');
    t.attacher.vms[0].setPresent(false, 'QEMU exited');
    expect(t.controller.statusLine()).toBe("VM 'vm1' is gone (QEMU exited); waiting for it to come back");
    expect(t.notes.at(-1)).toBe("STATUS=VM 'vm1' is gone (QEMU exited); waiting for it to come back");
    t.attacher.vms[0].setPresent(true);
    expect(t.controller.statusLine()).toBe('audio-out ok');
    expect(t.byName('audio-out').stops).toBe(0);
    expect(t.attacher.vms).toHaveLength(1);
    expect(seen).toEqual(['attached:vm1', 'detached:QEMU exited', 'attached:vm1']);
    await t.controller.stop();
  });

  it('stop() finishes within its budget even when a route hangs, and still stops the others', async () => {
    const t = setup();
    t.byName('camera').hangOnStop = true;
    t.controller.start();
    await waitFor('running', 5000, () => t.controller.routeStates().input === 'running');
    const t0 = Date.now();
    await t.controller.stop();
    // stop() returned at all although a route never does: the budget gave up on it (the log line
    // below says so). The time is reported, not asserted (shared machines).
    console.log(`[controller] stop with a hung route took ${Date.now() - t0} ms`);
    expect(t.journal.slice(-4)).toEqual(['stop input', 'stop camera', 'stop audio-in', 'stop audio-out']);
    expect(t.logLines.some((l) => l.includes('did not stop within'))).toBe(true);
  });

  it('sends READY=1 with a STATUS line per route, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1', async () => {
    const t = setup({ names: ['audio-out', 'camera'] });
    t.controller.start();
    await waitFor('ready', 5000, () => t.notes.some((n) => n.startsWith('READY=1')));
    await waitFor('3 watchdog pings', 5000, () => t.notes.filter((n) => n === 'WATCHDOG=1').length >= 3);
    await t.controller.stop();
    const ready = t.notes.find((n) => n.startsWith('READY=1'))!;
    expect(ready).toBe('READY=1\nSTATUS=audio-out ok · camera ok');
    expect(t.notes).toContain('STOPPING=1');
    const pingsAfterStop = t.notes.slice(t.notes.indexOf('STOPPING=1')).filter((n) => n === 'WATCHDOG=1');
    expect(pingsAfterStop).toHaveLength(0);
  });

  it('typed events can be removed in bulk by owner', async () => {
    const t = setup({ names: ['input'] });
    const owner = {};
    const seen: string[] = [];
    t.controller.events.on('routeState', (r, s) => seen.push(`${r}:${s}`), owner);
    t.controller.events.on('status', (l) => seen.push(`status:${l}`), owner);
    t.controller.start();
    await waitFor('running', 5000, () => t.controller.routeStates().input === 'running');
    expect(seen).toContain('input:running');
    t.controller.events.removeAll(owner);
    expect(t.controller.events.listenerCount('routeState')).toBe(0);
    await t.controller.stop();
    expect(seen).not.toContain('input:stopped');
  });
});

describe('Controller with several cameras (one route per [[camera]] entry)', () => {
  function cameras() {
    const journal: string[] = [];
    const logLines: string[] = [];
    const cam = (id: RouteId) => Object.assign(new FakeRoute('camera', journal), { id });
    const routes = [new FakeRoute('input', journal), cam('camera-0'), cam('camera-1'), new FakeRoute('audio-out', journal)];
    const controller = new Controller<FakeVm>({ attacher: new FakeAttacher(), routes, log: recordLog(logLines), backoff: { initialMs: 20, maxMs: 200, factor: 2, jitter: 0 }, startWaitMs: 100 });
    return { controller, routes, logLines, byId: (id: RouteId) => routes.find((r) => (r as { id?: RouteId }).id === id)! };
  }

  it('each camera is its own entry by id, started in the order given among the kinds', async () => {
    const t = cameras();
    t.controller.start();
    await waitFor('all running', 5000, () => Object.values(t.controller.routeStates()).length === 4 && Object.values(t.controller.routeStates()).every((s) => s === 'running'));
    expect(t.controller.snapshot().routes.map((r) => r.name)).toEqual(['audio-out', 'camera-0', 'camera-1', 'input']);
    await t.controller.stop();
  });

  it('a camera failing for a permanent reason leaves the other camera running, and its log lines carry its id', async () => {
    const t = cameras();
    t.byId('camera-1').failPermanently = { err: permanentError('ECONSOLE_UNKNOWN', 'no console 5'), times: 1 };
    t.controller.start();
    await waitFor('camera-1 unavailable', 5000, () => t.controller.routeStates()['camera-1'] === 'unavailable');
    await waitFor('input running', 5000, () => t.controller.routeStates().input === 'running');
    expect(t.controller.routeStates()['camera-0']).toBe('running');
    expect(t.byId('camera-0').stops).toBe(0);
    const warn = t.logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === 'ECONSOLE_UNKNOWN');
    expect(warn.map((l) => l.component)).toEqual(['camera-1']);
    await t.controller.stop();
  });

  it('restartRoutes by id restarts that camera alone; by kind, every camera', async () => {
    const t = cameras();
    t.controller.start();
    await waitFor('input running', 5000, () => t.controller.routeStates().input === 'running');
    expect(await t.controller.restartRoutes(['camera-1'])).toEqual(['camera-1']);
    expect([t.byId('camera-0').starts, t.byId('camera-1').starts]).toEqual([1, 2]);
    expect(await t.controller.restartRoutes(['camera'])).toEqual(['camera-0', 'camera-1']);
    expect([t.byId('camera-0').starts, t.byId('camera-1').starts]).toEqual([2, 3]);
    await t.controller.stop();
  });
});

describe('backoff', () => {
  it('grows exponentially, is capped, and jitter only shortens', () => {
    const o = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2 };
    expect([0, 1, 2, 3].map((a) => backoffDelay(a, o, () => 0))).toEqual([500, 1000, 2000, 4000]);
    expect(backoffDelay(20, o, () => 0)).toBe(30_000);
    expect(backoffDelay(0, o, () => 1)).toBe(400);
  });
});

describe('SystemdNotifier', () => {
  it('is a no-op without NOTIFY_SOCKET and ignores a watchdog meant for another PID', () => {
    const n = new SystemdNotifier({ env: {} });
    expect(n.active).toBe(false);
    expect(n.watchdogIntervalMs()).toBeUndefined();
    const other = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '1' }, pid: 2, send: () => true });
    expect(other.watchdogIntervalMs()).toBeUndefined();
    const mine = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '2' }, pid: 2, send: () => true });
    expect(mine.watchdogIntervalMs()).toBe(5000);
  });

  it('sends STATUS only when it changed and survives a throwing sender', () => {
    const sent: string[] = [];
    const n = new SystemdNotifier({
      env: { NOTIFY_SOCKET: '/x' },
      send: (t) => {
        sent.push(t);
        if (t === 'STATUS=boom') throw new Error('socket gone');
        return true;
      },
    });
    n.status('a');
    n.status('a');
    n.status('boom');
    n.status('b');
    expect(sent).toEqual(['STATUS=a', 'STATUS=boom', 'STATUS=b']);
  });
});
