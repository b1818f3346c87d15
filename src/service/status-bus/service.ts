// The bridge on the user's session bus: one well-known name per VM
// (io.github.qemu_dbus_bridge.Vm.<escaped name>) and one object with Bridge1 (bridge1.xml), so
// `qemu-dbus-bridge status`, busctl and desktop tools see what each bridge does and can grab or
// release its input. Separate from the VM's bus (which may be libvirt's private one): this
// connection carries no VM traffic.
//
// Rules: state changes (a route's state or status, attach, detach, a grab or release) go out as
// PropertiesChanged when they happen, with the counters read anew (the input route's grab state is
// in its counters, and a `status` right after `release` must see it); otherwise counters are read
// from the routes at most once per second (a timer, and Get answered from that reading) and sent
// only when a value changed. Between events only Counters (and Routes, whose target is a counter)
// can change, so the timer compares only those; and a route's counters move only while it runs
// (zeros before start and after stop, Route.counters()), so the timer runs only while one does: a
// bridge waiting for its VM wakes for nothing. Whether anybody listens cannot be known (the bus
// filters signals by its clients' match rules and does not tell the sender), so while a route
// runs the reading stays. Nothing here is on a hot path.
// Without a session bus the bridge runs on and says once that its status is not published. A
// second bridge for the same VM gets the name refused and ends with AlreadyBridgedError.
import * as dbus from 'dbus-native';
import { CodedError } from '../../errors';
import { EXIT_PERMISSION } from '../../config/errors';
import type { Logger } from '../../log';
import { openBus, type BusConnection } from '../../qemu';
import type { Controller } from '../controller';
import { idOfRoute, routeKindOf, type GrabRequest, type HandOverPort, type VmLink } from '../route';
import { StatusClient } from './client';
import { decideNext, heldAtPress, mustAskOthers, ringOf, type RingMember } from './ring';
import { BRIDGE1, ERROR_PREFIX, INTERFACE, OBJECT_PATH, busNameFor, countersToDict, type Bridge1Property, type RouteTuple, type VariantDict } from './interface';

const ALL_PROPERTIES = Object.keys(BRIDGE1.properties) as Bridge1Property[];
/** What can change between state-change events: the counters, and Routes through its target column. */
const COUNTERS: readonly Bridge1Property[] = ['Counters', 'Routes'];

/** RequestName flag: fail at once instead of waiting in the queue behind the owner. */
const DO_NOT_QUEUE = 4;
const PRIMARY_OWNER = 1;

export class AlreadyBridgedError extends CodedError<'EALREADY_BRIDGED'> {
  constructor(vm: string, pid: number | undefined) {
    super(
      'EALREADY_BRIDGED',
      `VM '${vm}' is already bridged by PID ${pid ?? '(unknown)'}`,
      `stop that bridge first (qemu-dbus-bridge status shows it; systemctl --user stop qemu-dbus-bridge@${vm} if it is the unit)`,
      { permanent: true, exitCode: EXIT_PERMISSION },
    );
    this.name = 'AlreadyBridgedError';
  }
}

/** A method call refused with one of our error names (ERROR_PREFIX + name). */
class BridgeMethodError extends Error {
  readonly dbusName: string;
  constructor(name: 'NoInputRoute' | 'NotRunning' | 'UnknownRoute' | 'NotAttached', message: string) {
    super(message);
    this.dbusName = ERROR_PREFIX + name;
  }
}

export interface StatusServiceOptions<V extends VmLink> {
  controller: Controller<V>;
  log: Logger;
  /** The VM as configured (--vm / --libvirt / the unit's instance); undefined: taken from the first attach. */
  vmName: string | undefined;
  /** Session bus address; default DBUS_SESSION_BUS_ADDRESS (unset: status is unavailable). */
  address?: string;
  /** Counter reading period, ms (default 1000: also the fastest counters are ever read). */
  countersMs?: number;
  /** How long each attempt to reach the session bus may take, ms (default CONNECT_TRIES_MS). */
  connectTriesMs?: readonly number[];
}

/**
 * Attempts to reach the session bus before the bridge gives its status up, ms each. A loaded host
 * (a desktop logging in, a TCG guest on every core) made one 5 s attempt time out: the bridge then
 * ran its whole life without status or hand-over. A second, longer try covers that; a bus that
 * still does not answer after both is said once, and the bridge runs on without it.
 */
export const CONNECT_TRIES_MS: readonly number[] = [5000, 10_000];

export class StatusService<V extends VmLink> {
  private conn: BusConnection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sent = new Map<Bridge1Property, string>();
  private counters: [string, VariantDict][] = [];
  private countersAt = 0;
  private flushPending = false;
  private closed = false;
  private vmName: string | undefined;
  /** the grab-next press this bridge is about to grab for from the host (ring.ts heldAtPress) */
  private claimedUs: number | undefined;
  private resolveFatal!: (err: Error) => void;
  /** Resolves when the bridge must end (the name turned out to be taken at the first attach). */
  readonly fatal: Promise<Error> = new Promise((r) => (this.resolveFatal = r));

  private constructor(private readonly opts: StatusServiceOptions<V>) {
    this.vmName = opts.vmName;
  }

  /**
   * Publishes the bridge. Resolves with the service, or undefined when there is no session bus
   * (said once in the log); rejects with AlreadyBridgedError when another bridge has the name.
   */
  static async start<V extends VmLink>(opts: StatusServiceOptions<V>): Promise<StatusService<V> | undefined> {
    const address = opts.address ?? process.env.DBUS_SESSION_BUS_ADDRESS;
    if (!address) {
      opts.log.warn('status is unavailable: no session bus (DBUS_SESSION_BUS_ADDRESS is unset); the bridge runs on, see journalctl for what it does');
      return undefined;
    }
    let conn: BusConnection | undefined;
    const tries = opts.connectTriesMs ?? CONNECT_TRIES_MS;
    for (let i = 0; conn === undefined; i++) {
      try {
        conn = await openBus(address, tries[i]);
      } catch (err) {
        const why = (err as CodedError).problem ?? String(err);
        if (i + 1 >= tries.length) {
          opts.log.warn(`status is unavailable: the session bus does not answer (${why}); the bridge runs on`);
          return undefined;
        }
        opts.log.info(`the session bus did not answer (${why}); trying once more for ${tries[i + 1] / 1000} s`);
      }
    }
    const s = new StatusService(opts);
    s.conn = conn;
    try {
      s.export();
      if (s.vmName !== undefined) await s.claim(s.vmName);
    } catch (err) {
      await s.close();
      throw err;
    }
    s.watch();
    return s;
  }

  /** Takes the VM's name on the bus; AlreadyBridgedError when another process has it. */
  private async claim(vm: string): Promise<void> {
    const bus = this.conn!.bus;
    const name = busNameFor(vm);
    const reg = await bus.ownName(name, DO_NOT_QUEUE);
    if (reg.result === PRIMARY_OWNER) {
      this.opts.log.info(`status on the session bus as ${name}`);
      return;
    }
    const pid = await bus.getConnectionUnixProcessId(name).then(
      (p) => Number(p),
      () => undefined,
    );
    throw new AlreadyBridgedError(vm, pid);
  }

  private export(): void {
    const bus = this.conn!.bus;
    const props: Record<string, dbus.PropertyDefinition> = {};
    for (const [name, type] of Object.entries(BRIDGE1.properties)) {
      props[name] = { type, access: 'read', get: () => this.value(name as Bridge1Property) };
    }
    const grab = (want: GrabRequest) => (): boolean => this.grab(want);
    const iface = dbus.defineInterface({
      name: INTERFACE,
      properties: props,
      methods: {
        Grab: { out: { forwarding: 'b' }, handler: grab('grab') },
        Release: { out: { forwarding: 'b' }, handler: grab('release') },
        ToggleGrab: { out: { forwarding: 'b' }, handler: grab('toggle') },
        RestartRoute: { in: { route: 's' }, out: { restarted: 'as' }, handler: ({ route }: { route: string }) => this.restart(route) },
        TakeOver: {
          in: { stamp: 't' },
          out: { forwarding: 'b' },
          handler: ({ stamp }: { stamp: unknown }) => {
            const port = this.handOverPort();
            this.opts.log.info('the devices are handed over to this bridge (grab-next)');
            if (!port.takeOver(Number(stamp))) throw new BridgeMethodError('NotRunning', 'the input route is not running now (see the Routes property for why)');
            this.scheduleFlush();
            return true;
          },
        },
        ForwardingAtNext: {
          in: { stamp: 't' },
          out: { forwarding: 'b' },
          handler: ({ stamp }: { stamp: unknown }) => heldAtPress(this.handOverPort().forwardingAt(Number(stamp)), this.claimedUs, Number(stamp)),
        },
        Reattach: {
          handler: () => {
            if (!this.opts.controller.reattach('re-attach requested on the status bus')) throw new BridgeMethodError('NotAttached', 'not attached to the VM now; the bridge is already trying to attach');
            return null;
          },
        },
      },
    });
    bus.exportInterface(iface.impl, OBJECT_PATH, iface.descriptor);
  }

  private handOverPort(): HandOverPort {
    const port = this.opts.controller.routes.find((r) => r.handOver)?.handOver;
    if (!port) throw new BridgeMethodError('NoInputRoute', 'this bridge forwards no input (no --input or --input-replay)');
    return port;
  }

  /**
   * The grab-next hotkey fired here (ring.ts says who acts). The old side releases every key and
   * button in its guest and lets the devices go BEFORE the next bridge is asked to take them.
   */
  private async next(stampUs: number, forwarding: boolean): Promise<void> {
    const port = this.handOverPort();
    const client = StatusClient.over(this.conn!);
    const own = busNameFor(this.vmName ?? '');
    const input = this.readCounters(true).find(([n]) => n === 'input')?.[1];
    const devices = (input?.find(([k]) => k === 'devices')?.[1][1] as string[] | undefined) ?? [];
    const order = Number(input?.find(([k]) => k === 'ringOrder')?.[1][1] ?? 0);
    const self: RingMember = { busName: own, vm: String(this.value('VmName')), order, devices };
    const others: RingMember[] = [];
    for (const name of await client.names()) {
      if (name === own) continue;
      try {
        const b = await client.read(name);
        const c = b.routes.find((r) => r.name === 'input')?.counters;
        if (c?.route === 'input') others.push({ busName: name, vm: b.vm, order: c.ringOrder, devices: c.devices });
      } catch {
        // gone meanwhile: not in the ring
      }
    }
    const ring = ringOf(self, others);
    let otherHeld = false;
    if (mustAskOthers(ring, self, forwarding)) {
      this.claimedUs = stampUs; // before asking: another bridge that also thinks it is first then stands back
      for (const m of ring.slice(1)) {
        if (await client.forwardingAtNext(m.busName, stampUs).catch(() => false)) otherHeld = true;
      }
    }
    const d = decideNext(ring, self, forwarding, otherHeld);
    if (d.act === 'none') return;
    if (d.act === 'grab') {
      this.opts.log.info(`grab-next: the host hands the devices to this bridge (first of ${ring.map((m) => m.vm).join(' → ')})`);
      port.takeOver(stampUs);
      this.scheduleFlush();
      return;
    }
    await port.release();
    this.scheduleFlush();
    if (!d.to) {
      this.opts.log.info('grab-next: the devices go back to the host');
      return;
    }
    this.opts.log.info(`grab-next: handing the devices to VM '${d.to.vm}'`);
    await client.takeOver(d.to.busName, stampUs).catch((err: unknown) => {
      this.opts.log.warn(`grab-next: VM '${d.to!.vm}' did not take the devices (${(err as CodedError).problem ?? (err as Error).message}); they stay with the host`);
    });
  }

  private grab(want: GrabRequest): boolean {
    const input = this.opts.controller.routes.find((r) => r.setGrab);
    if (!input?.setGrab) throw new BridgeMethodError('NoInputRoute', 'this bridge forwards no input (no --input or --input-replay)');
    this.opts.log.info(`${want} requested on the status bus`);
    const forwarding = input.setGrab(want);
    if (forwarding === undefined) throw new BridgeMethodError('NotRunning', 'the input route is not running now (see the Routes property for why)');
    this.scheduleFlush();
    return forwarding;
  }

  private async restart(route: string): Promise<string[]> {
    if (route !== '' && !routeKindOf(route)) throw new BridgeMethodError('UnknownRoute', `no route '${route}': audio-out, audio-in, camera (or camera-N), input, or '' for all`);
    const c = this.opts.controller;
    if (route !== '' && !c.routes.some((r) => r.name === route || idOfRoute(r) === route)) throw new BridgeMethodError('UnknownRoute', `route ${route} is not enabled in this bridge`);
    if (!c.attachedVm) throw new BridgeMethodError('NotAttached', 'not attached to the VM now; routes start once it is');
    return c.restartRoutes(route === '' ? [] : [route]);
  }

  /** Current value of a property (counters: the last reading, refreshed when older than the period). */
  private value(name: Bridge1Property): unknown {
    const c = this.opts.controller;
    const snap = c.snapshot();
    switch (name) {
      case 'VmName':
        return snap.vm?.name ?? this.vmName ?? '';
      case 'VmUuid':
        return snap.vm?.uuid ?? '';
      case 'Pid':
        return process.pid;
      case 'Attached':
        return snap.vm !== undefined && snap.vmPresent;
      case 'Status':
        return snap.status;
      case 'QemuFeatures':
        return c.attachedVm?.features?.() ?? [];
      case 'Counters':
        return this.readCounters(false);
      case 'Routes': {
        const counters = this.readCounters(false);
        const targetOf = (route: string): string => String(counters.find(([n]) => n === route)?.[1].find(([k]) => k === 'target')?.[1][1] ?? '');
        return snap.routes.map((r): RouteTuple => [r.name, r.state, r.reason, r.nextRetryAt, r.summary, targetOf(r.name)]);
      }
    }
  }

  /** The routes' counters: read now when `force` or when the last reading is older than the period. */
  private readCounters(force: boolean): [string, VariantDict][] {
    const now = Date.now();
    if (!force && this.countersAt !== 0 && now - this.countersAt < (this.opts.countersMs ?? 1000)) return this.counters;
    this.countersAt = now;
    const out: [string, VariantDict][] = [];
    for (const r of this.opts.controller.routes) {
      try {
        out.push([idOfRoute(r), countersToDict(r.counters())]);
      } catch (err) {
        this.opts.log.debug(`counters of ${idOfRoute(r)} failed: ${String(err)}`);
      }
    }
    this.counters = out;
    return out;
  }

  private watch(): void {
    this.opts.controller.routes
      .find((r) => r.handOver)
      ?.handOver?.onNext((stampUs, forwarding) => {
        this.next(stampUs, forwarding).catch((err: unknown) => this.opts.log.warn(`grab-next failed: ${(err as CodedError).problem ?? (err as Error).message}`));
      });
    const ev = this.opts.controller.events;
    const changed = (): void => this.scheduleFlush();
    ev.on('routeState', changed, this);
    ev.on('status', changed, this);
    ev.on('detached', changed, this);
    ev.on('attached', (vm) => {
      if (this.vmName === undefined) {
        // No name configured (the only VM on the bus, a QMP socket): the first attach names it.
        this.vmName = vm.name;
        this.claim(vm.name).catch((err: Error) => this.resolveFatal(err));
      }
      changed();
    }, this);
    this.readWhileRunning();
  }

  /** The counters' timer runs while a route runs, and only then (route states change by events). */
  private readWhileRunning(): void {
    const running = !this.closed && Object.values(this.opts.controller.routeStates()).includes('running');
    if (running && !this.timer) {
      this.timer = setInterval(() => this.flush(COUNTERS), this.opts.countersMs ?? 1000);
      this.timer.unref();
    } else if (!running && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Coalesces a burst of events (a whole attach) into one PropertiesChanged. */
  private scheduleFlush(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    setImmediate(() => {
      this.flushPending = false;
      // State changes are rare (they are events, not a rate): reading the counters with them costs
      // nothing and keeps the state they carry (forwardTo, grabbed, open, viewer) current.
      this.flush(ALL_PROPERTIES);
      this.readWhileRunning();
    });
  }

  /**
   * Sends PropertiesChanged with each of `names` whose value differs from what was last sent,
   * reading the counters anew first (the timer and every state change).
   */
  private flush(names: readonly Bridge1Property[]): void {
    if (this.closed || !this.conn) return;
    this.readCounters(true);
    const changed: Record<string, unknown> = {};
    for (const name of names) {
      const v = this.value(name);
      const text = JSON.stringify(v);
      if (this.sent.get(name) === text) continue;
      this.sent.set(name, text);
      changed[name] = v;
    }
    if (Object.keys(changed).length === 0) return;
    try {
      this.conn.bus.emitPropertiesChanged(OBJECT_PATH, INTERFACE, changed);
    } catch (err) {
      this.opts.log.debug(`PropertiesChanged not sent: ${String(err)}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.opts.controller.events.removeAll(this);
    this.opts.controller.routes.find((r) => r.handOver)?.handOver?.onNext(undefined);
    await this.conn?.close();
    this.conn = undefined;
  }
}
