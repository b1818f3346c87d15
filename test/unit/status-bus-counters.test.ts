// When the status service reads the routes' counters on its timer, and what it sends then
// (src/service/status-bus/service.ts): only while a route runs, and only Counters/Routes. On a
// real dbus-daemon, with the Controller and a fake route whose counters move at every reading.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log';
import { openBus, RemoteObject, type BusConnection } from '../../src/qemu';
import { Controller } from '../../src/service/controller';
import { emptyCounters, type Attacher, type Route, type RouteContext, type RouteCounters, type VmLink } from '../../src/service/route';
import { busNameFor, INTERFACE, OBJECT_PATH } from '../../src/service/status-bus/interface';
import { StatusService } from '../../src/service/status-bus/service';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { sleep, waitFor } from '../harness/procs';

const PERIOD = 50;

class Vm implements VmLink {
  readonly name = 'counted';
  readonly uuid = '00000000-0000-0000-0000-00000000c0de';
  onPresence(): () => void {
    return () => undefined;
  }
  readonly lost = new Promise<string>(() => undefined);
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** An audio-out route whose `frames` counter grows at every reading (as while the guest plays). */
class CountingRoute implements Route<Vm> {
  readonly name = 'audio-out' as const;
  reads = 0;
  start(_ctx: RouteContext<Vm>): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  status(): string {
    return 'audio-out playing';
  }
  counters(): RouteCounters {
    this.reads++;
    return { ...emptyCounters('audio-out', 'vm-sink (pipewire)'), frames: this.reads * 480 };
  }
}

describe('status service: the counters timer', () => {
  let bus: DbusDaemon;
  let client: BusConnection | undefined;
  let service: StatusService<Vm> | undefined;
  let controller: Controller<Vm> | undefined;
  const log = createLogger({ format: 'text', level: 'error', write: () => undefined, journal: false });

  beforeEach(async () => {
    bus = await startDbusDaemon();
  });
  afterEach(async () => {
    await controller?.stop();
    await service?.close();
    await client?.close();
    controller = service = client = undefined;
    await bus.stop();
  });

  /** A service over a controller with one counting route; `attach` false: the VM never comes. */
  async function setup(attach: boolean) {
    const route = new CountingRoute();
    const attacher: Attacher<Vm> = { attach: () => (attach ? Promise.resolve(new Vm()) : new Promise(() => undefined)), describe: () => 'the test VM' };
    controller = new Controller<Vm>({ attacher, routes: [route], log, startWaitMs: 100 });
    service = await StatusService.start({ controller, log, vmName: 'counted', address: bus.address, countersMs: PERIOD });
    client = await openBus(bus.address);
    const owner = await client.bus.getNameOwner(busNameFor('counted'));
    const signals: string[][] = [];
    await new RemoteObject({ bus: client.bus, destination: owner, canPassFds: false }, OBJECT_PATH).onPropertiesChanged(INTERFACE, (c) => signals.push(Object.keys(c)));
    return { route, signals };
  }

  it('waiting for the VM, no route runs: after the start\'s own flush, the counters are not read and nothing is sent', async () => {
    const { route, signals } = await setup(false);
    controller!.start();
    await waitFor('the start flushed (the status line changed)', 5000, () => signals.length > 0);
    const [reads, sent] = [route.reads, signals.length];
    await sleep(PERIOD * 10);
    expect(controller!.routeStates()['audio-out']).toBe('idle');
    expect(route.reads).toBe(reads);
    expect(signals).toHaveLength(sent);
  });

  it('kept: a running route whose counters move is read each period, and each reading sends Counters alone', async () => {
    const { route, signals } = await setup(true);
    controller!.start();
    await waitFor('audio-out running', 5000, () => controller!.routeStates()['audio-out'] === 'running');
    await waitFor('the start flushed', 5000, () => signals.some((k) => k.includes('Routes')));
    const startSignals = signals.length;
    const readsAtStart = route.reads;
    await waitFor('three timer readings sent', 5000, () => signals.length >= startSignals + 3);
    expect(route.reads).toBeGreaterThan(readsAtStart);
    expect(signals.slice(startSignals)).toEqual(Array(signals.length - startSignals).fill(['Counters']));
  });

  it('once the route stopped, the timer stops: no reading after the stop', async () => {
    const { route } = await setup(true);
    controller!.start();
    await waitFor('audio-out running', 5000, () => controller!.routeStates()['audio-out'] === 'running');
    await waitFor('a timer reading', 5000, () => route.reads >= 3);
    await controller!.stop();
    await sleep(PERIOD * 2); // the stop's own flush
    const reads = route.reads;
    await sleep(PERIOD * 10);
    expect(route.reads).toBe(reads);
  });
});
