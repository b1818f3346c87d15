// One pattern for route state changes (issue 15, "status change" row): each part calls its
// onChange hook from the event that changes what the route reports (no decorator, no poll), and
// the Controller turns ctx.statusChanged() into one routeState event. Plus the Controller's side
// of the status bus: snapshot with retry reason and time, RestartRoute, Reattach.
import { describe, expect, it } from 'vitest';
import type { PlaybackBackend } from '../../src/audio/backend';
import { FakeCaptureServer } from '../fakes/capture';
import { AudioInBridge } from '../../src/audio/in/audio-in-bridge';
import { FakePlayback, openSpeakerCore } from '../fakes/playback';
import { Speaker } from '../../src/audio/out/speaker';
import { CameraConsoleListener } from '../../src/camera/listener';
import { CameraPipeline } from '../../src/camera/pipeline';
import { FakeSink } from '../fakes/camera-sink';
import { InputBridge } from '../../src/input/bridge';
import { FakeEventSource, RecordingVmInput } from '../fakes/input';
import { createLogger, silentLogger } from '../../src/log';
import type { NativePlaybackOptions } from '../../src/native-api/audio';
import type { PcmFormat } from '../../src/qemu/handlers';
import { Controller } from '../../src/service/controller';
import { CodedError, emptyCounters, type Attacher, type Route, type RouteContext, type RouteCounters, type RouteName, type VmLink } from '../../src/service/route';
import { waitFor } from '../harness/procs';

const S16: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: 48000, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: 192000, bigEndian: false };

function fakeBackend(): PlaybackBackend {
  return { kind: 'pipewire', where: '/fake', openSpeakerCore, openPlayback: (o: NativePlaybackOptions) => new FakePlayback(o, 5) };
}

describe('parts report their state changes from the event', () => {
  it('Speaker: one onChange at Init and one at Fini, none per Write', async () => {
    let changes = 0;
    const s = new Speaker({ vmName: 'vm', backend: fakeBackend(), onChange: () => changes++ });
    s.init(1n, S16);
    expect(changes).toBe(1);
    for (let i = 0; i < 10; i++) s.write(1n, new Uint8Array(4096));
    expect(changes).toBe(1);
    s.fini(1n);
    expect(changes).toBe(2);
    await s.close();
  });

  it('AudioInBridge: onChange when the microphone stream opens and when it closes, not on Init', () => {
    let changes = 0;
    const server = new FakeCaptureServer();
    const b = new AudioInBridge({ vmName: 'vm', backend: server, prebufferMs: 0, log: silentLogger, onChange: () => changes++ });
    b.init(7n, S16);
    expect(changes).toBe(0);
    b.setEnabled(7n, true);
    expect([changes, b.capturing]).toEqual([1, true]);
    b.setEnabled(7n, false);
    expect([changes, b.capturing]).toEqual([2, false]);
  });

  it('CameraPipeline: onViewerChange when a consumer comes and when it goes, not per tick', () => {
    let changes = 0;
    const sink = new FakeSink({ width: 64, height: 48, fps: 30, format: null });
    const p = new CameraPipeline({ source: new CameraConsoleListener({ log: silentLogger }), sink, onViewerChange: () => changes++ });
    p.tick();
    expect([changes, p.viewer]).toEqual([0, false]);
    sink.format = 'YUY2';
    p.tick();
    p.tick();
    expect([changes, p.viewer]).toEqual([1, true]);
    sink.format = null;
    p.tick();
    expect([changes, p.viewer]).toEqual([2, false]);
  });

  it('InputBridge: onChange when a device comes and goes', () => {
    let changes = 0;
    const kbd = new FakeEventSource('/dev/input/by-id/kbd');
    const b = new InputBridge({ replay: [kbd.path], log: silentLogger, watcher: { open: () => kbd }, onChange: () => changes++ });
    b.start();
    expect(changes).toBe(1);
    kbd.disappear('ENODEV');
    expect([changes, b.sources().length]).toEqual([2, 0]);
  });

  it('InputBridge: setForwardMode from outside flips the mode once and says so once', () => {
    let changes = 0;
    const kbd = new FakeEventSource('/dev/input/by-id/kbd');
    const b = new InputBridge({ replay: [kbd.path], log: silentLogger, watcher: { open: () => kbd }, onChange: () => changes++ });
    b.setVm(new RecordingVmInput());
    b.start();
    changes = 0;
    b.setForwardMode('host');
    b.setForwardMode('host');
    expect([changes, b.forwardMode]).toEqual([1, 'host']);
    b.setForwardMode('guest');
    expect([changes, b.forwardMode]).toEqual([2, 'guest']);
  });
});

class Vm implements VmLink {
  name = 'vm1';
  uuid = '00000000-0000-0000-0000-000000000001';
  private resolveLost!: (r: string) => void;
  readonly lost = new Promise<string>((r) => (this.resolveLost = r));
  closed = false;
  close(): Promise<void> {
    this.closed = true;
    this.resolveLost('closed');
    return Promise.resolve();
  }
}

class TestRoute implements Route<Vm> {
  ctx: RouteContext<Vm> | undefined;
  starts = 0;
  failWith: Error | undefined;
  constructor(readonly name: RouteName) {}
  start(ctx: RouteContext<Vm>): Promise<void> {
    this.starts++;
    if (this.failWith) return Promise.reject(this.failWith);
    this.ctx = ctx;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  status(): string {
    return `${this.name} ok`;
  }
  counters(): RouteCounters {
    return emptyCounters(this.name);
  }
}

function setup(names: RouteName[] = ['audio-out', 'input']) {
  const vms: Vm[] = [];
  const attacher: Attacher<Vm> = {
    attach: () => {
      const vm = new Vm();
      vms.push(vm);
      return Promise.resolve(vm);
    },
    describe: () => 'fake',
  };
  const routes = names.map((n) => new TestRoute(n));
  const controller = new Controller<Vm>({ attacher, routes, log: createLogger({ format: 'json', level: 'error', write: () => undefined }), backoff: { initialMs: 60_000, maxMs: 60_000, factor: 2, jitter: 0 }, startWaitMs: 100 });
  return { controller, routes, vms };
}

const allRunning = (c: Controller<Vm>) => Object.values(c.routeStates()).every((s) => s === 'running');

describe('Controller side of the status bus', () => {
  it("a running route's statusChanged() becomes one routeState event for that route", async () => {
    const t = setup();
    t.controller.start();
    await waitFor('running', 5000, () => allRunning(t.controller));
    const seen: string[] = [];
    t.controller.events.on('routeState', (name, state) => seen.push(`${name} ${state}`));
    t.routes[1].ctx!.statusChanged();
    expect(seen).toEqual(['input running']);
    await t.controller.stop();
  });

  it('snapshot: a retrying route carries its reason and when the retry is due', async () => {
    const t = setup(['camera']);
    t.routes[0].failWith = new CodedError('ENODEV', 'no camera device');
    const before = Date.now();
    t.controller.start();
    await waitFor('retrying', 5000, () => t.controller.routeStates().camera === 'retrying');
    const r = t.controller.snapshot().routes[0];
    expect(r).toMatchObject({ name: 'camera', state: 'retrying', reason: 'ENODEV: no camera device' });
    expect(r.nextRetryAt).toBeGreaterThanOrEqual(before + 60_000);
    expect(r.nextRetryAt).toBeLessThanOrEqual(Date.now() + 60_000);
    await t.controller.stop();
  });

  it('restartRoutes restarts only the routes named, on the same VM', async () => {
    const t = setup();
    t.controller.start();
    await waitFor('running', 5000, () => allRunning(t.controller));
    expect(await t.controller.restartRoutes(['input'])).toEqual(['input']);
    expect(t.routes.map((r) => r.starts)).toEqual([1, 2]);
    expect(t.vms).toHaveLength(1);
    expect(allRunning(t.controller)).toBe(true);
    await t.controller.stop();
  });

  it('reattach drops the VM link and attaches anew; every route starts again', async () => {
    const t = setup();
    t.controller.start();
    await waitFor('running', 5000, () => allRunning(t.controller));
    expect(t.controller.reattach()).toBe(true);
    await waitFor('second attach, routes running', 5000, () => t.vms.length === 2 && t.routes.every((r) => r.starts === 2) && allRunning(t.controller));
    expect(t.vms[0].closed).toBe(true);
    await t.controller.stop();
  });
});
