// Reading bridges off the session bus (`status`) and calling their methods (`grab`, `release`):
// the other side of service.ts, through the same member table (interface.ts).
import { RemoteCallError, RemoteObject, openBus, type BusConnection } from '../../qemu';
import { plainDict } from '../../qemu/remote-object';
import { CodedError } from '../../errors';
import { routeKindOf, type RouteId } from '../route';
import { BUS_NAME_PREFIX, ERROR_PREFIX, INTERFACE, OBJECT_PATH, busNameFor, countersFromDict, unescapeVmName } from './interface';
import type { BridgeJson, RouteJson, StatusJson } from './json';

export type StatusErrorCode = 'ENO_SESSION_BUS' | 'ENOT_BRIDGED' | 'ESTATUS_CALL';

export class StatusClientError extends CodedError<StatusErrorCode> {
  constructor(code: StatusErrorCode, problem: string, fix: string, opts: { cause?: unknown } = {}) {
    super(code, problem, fix, opts);
    this.name = 'StatusClientError';
  }
}

const CALL_TIMEOUT_MS = 5000;

export class StatusClient {
  private constructor(private readonly conn: BusConnection) {}

  /** Connects to the session bus (`address`, else DBUS_SESSION_BUS_ADDRESS). */
  static async open(address = process.env.DBUS_SESSION_BUS_ADDRESS): Promise<StatusClient> {
    if (!address) {
      throw new StatusClientError('ENO_SESSION_BUS', 'no session bus: DBUS_SESSION_BUS_ADDRESS is unset', 'run this in the session of the user the bridges run as (systemctl --user shows them), or set DBUS_SESSION_BUS_ADDRESS');
    }
    try {
      return new StatusClient(await openBus(address, CALL_TIMEOUT_MS));
    } catch (err) {
      throw new StatusClientError('ENO_SESSION_BUS', `cannot reach the session bus ${address}`, 'check DBUS_SESSION_BUS_ADDRESS (the bridges publish their status on the session bus of their user)', { cause: err });
    }
  }

  /** A client over a connection the caller owns (the bridge's own, for the hand-over); close() not to be called. */
  static over(conn: BusConnection): StatusClient {
    return new StatusClient(conn);
  }

  /** Hand-over: the next bridge takes the devices for grab-next press `stampUs`. */
  async takeOver(busName: string, stampUs: number): Promise<boolean> {
    return Boolean(await this.object(busName).call<boolean>(INTERFACE, 'TakeOver', 't', [stampUs], { timeoutMs: CALL_TIMEOUT_MS }));
  }

  /** Hand-over: whether that bridge's guest had the input when grab-next press `stampUs` fired. */
  async forwardingAtNext(busName: string, stampUs: number): Promise<boolean> {
    return Boolean(await this.object(busName).call<boolean>(INTERFACE, 'ForwardingAtNext', 't', [stampUs], { timeoutMs: CALL_TIMEOUT_MS }));
  }

  /** Well-known names of every running bridge, sorted by VM name. */
  async names(): Promise<string[]> {
    const names = await this.conn.bus.invoke<string[]>({ destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus', member: 'ListNames' }, { timeout: CALL_TIMEOUT_MS });
    return (names as string[]).filter((n) => n.startsWith(BUS_NAME_PREFIX)).sort();
  }

  private object(busName: string): RemoteObject {
    return new RemoteObject({ bus: this.conn.bus, destination: busName, canPassFds: false }, OBJECT_PATH);
  }

  /** One bridge's properties as `status --json` prints them. */
  async read(busName: string): Promise<BridgeJson> {
    const p = await this.object(busName).getAllProperties(INTERFACE, CALL_TIMEOUT_MS);
    const counters = new Map<string, Record<string, unknown>>();
    // dbus-native hands a dict over as an object (older releases: [key, value] pairs).
    for (const [route, dict] of Object.entries(plainDict(p.Counters))) counters.set(route, plainDict(dict));
    const routes = (p.Routes as unknown[][]).map((t): RouteJson => {
      const [name, state, reason, nextRetryAt, summary, target] = t as [string, string, string, number | bigint, string, string];
      const c = counters.get(name);
      const kind = routeKindOf(name);
      return {
        name: name as RouteId,
        state: state as RouteJson['state'],
        reason,
        nextRetryAt: Number(nextRetryAt) > 0 ? new Date(Number(nextRetryAt)).toISOString() : null,
        summary,
        target,
        counters: c && kind ? countersFromDict(kind, c) : null,
      };
    });
    return {
      vm: String(p.VmName || unescapeVmName(busName.slice(BUS_NAME_PREFIX.length))),
      uuid: String(p.VmUuid ?? ''),
      pid: Number(p.Pid),
      busName,
      attached: Boolean(p.Attached),
      status: String(p.Status ?? ''),
      qemuFeatures: ((p.QemuFeatures as string[]) ?? []).map(String),
      routes,
    };
  }

  /** Every bridge (or the one of `vm`), read at once. A bridge that left meanwhile is skipped. */
  async status(vm?: string): Promise<StatusJson> {
    const names = vm !== undefined ? [busNameFor(vm)] : await this.names();
    const bridges: BridgeJson[] = [];
    for (const n of names) {
      try {
        bridges.push(await this.read(n));
      } catch (err) {
        if (vm !== undefined) throw this.notBridged(vm, err);
      }
    }
    return { version: 1, bridges };
  }

  /** Grab, Release or ToggleGrab on the bridge of `vm`; resolves with "input goes to the guest". */
  async grab(vm: string, member: 'Grab' | 'Release' | 'ToggleGrab'): Promise<boolean> {
    try {
      return Boolean(await this.object(busNameFor(vm)).call<boolean>(INTERFACE, member, '', [], { timeoutMs: CALL_TIMEOUT_MS }));
    } catch (err) {
      if (err instanceof RemoteCallError && err.dbusName?.startsWith(ERROR_PREFIX)) {
        throw new StatusClientError('ESTATUS_CALL', `the bridge of VM '${vm}' refused ${member}: ${String((err.cause as Error | undefined)?.message ?? err.message)}`, 'see qemu-dbus-bridge status --vm ' + vm);
      }
      throw this.notBridged(vm, err);
    }
  }

  private notBridged(vm: string, cause: unknown): StatusClientError {
    return new StatusClientError('ENOT_BRIDGED', `no bridge for VM '${vm}' on the session bus`, 'start it (systemctl --user start qemu-dbus-bridge@' + vm + ', or qemu-dbus-bridge run --vm ' + vm + '); qemu-dbus-bridge status lists the running ones', { cause });
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}
