// Noticing at once that a QEMU appeared on a bus, instead of looking again on a timer.
//
// The bus says when `org.qemu` gets a new primary owner (NameOwnerChanged), but NOT when a QEMU
// joins the queue behind another one: with several VMs on one bus, every QEMU but the first is a
// queued owner and the only signal is its connection's unique name appearing, which comes BEFORE
// its RequestName. So a new connection is followed by a few looks at org.qemu's queue shortly
// after (LOOK_AFTER_MS); the first look that finds it in the queue reports the arrival, and an
// unrelated client (which never queues) costs those few ListQueuedOwners calls and nothing else.
import type * as dbus from 'dbus-native';
import { openBus, type BusConnection } from './bus';
import { listQueuedOwners, QEMU_BUS_NAME } from './discovery';
import { onSignal } from './remote-object';

/** ms after a new connection appeared at which its place in org.qemu's queue is looked for. */
export const LOOK_AFTER_MS: readonly number[] = [0, 20, 100, 300, 1000];

const NAME_OWNER_CHANGED = "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'";

/**
 * Calls `onArrival` when a QEMU may have appeared on `bus`: org.qemu changed owner, or a new
 * connection turned up in org.qemu's queue. `active()` false: NameOwnerChanged is ignored (no
 * looks at the queue while the caller does not wait for a QEMU). Subscribes on start().
 */
export class QemuArrivals {
  private readonly timers = new Set<NodeJS.Timeout>();
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly bus: dbus.MessageBus,
    private readonly onArrival: () => void,
    private readonly active: () => boolean = () => true,
  ) {}

  async start(): Promise<void> {
    await this.bus.addMatch(NAME_OWNER_CHANGED);
    // Only the bus itself may say who owns what: a signal another peer addressed to us is ignored.
    this.unsubscribe = onSignal(this.bus, { sender: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', iface: 'org.freedesktop.DBus', member: 'NameOwnerChanged' }, (body) => {
      const [name, oldOwner, newOwner] = body as [unknown, unknown, unknown];
      if (this.closed || !this.active() || typeof name !== 'string' || typeof newOwner !== 'string') return;
      if (name === QEMU_BUS_NAME && newOwner !== '') this.onArrival();
      else if (name.startsWith(':') && oldOwner === '' && newOwner === name) this.lookForQueued(name);
    });
  }

  /**
   * Looks for `unique` in org.qemu's queue at LOOK_AFTER_MS; reports it once found. Looks that fall
   * due together share one ListQueuedOwners call (a desktop session starting opens dozens of
   * connections at once): a look due while a call is in flight waits for it and then makes one more
   * call for everyone who waited, so every look still sees the queue as it was after it fell due.
   */
  private lookForQueued(unique: string): void {
    const mine: NodeJS.Timeout[] = [];
    const done = (): void => {
      for (const t of mine) {
        clearTimeout(t);
        this.timers.delete(t);
      }
    };
    for (const ms of LOOK_AFTER_MS) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (this.closed || !this.active()) return;
        this.due.set(unique, done);
        this.look();
      }, ms);
      mine.push(t);
      this.timers.add(t);
    }
  }

  /** Connections whose look fell due and waits for the next ListQueuedOwners, and how to stop their later looks. */
  private readonly due = new Map<string, () => void>();
  private inFlight = false;

  private look(): void {
    if (this.inFlight || this.due.size === 0) return;
    this.inFlight = true;
    const asking = new Map(this.due);
    this.due.clear();
    const settle = (): void => {
      this.inFlight = false;
      this.look(); // looks that fell due while this one was on the bus
    };
    listQueuedOwners(this.bus, 2000).then(
      (owners) => {
        if (!this.closed) {
          let arrived = false;
          for (const [unique, done] of asking) {
            if (!owners.includes(unique)) continue;
            done();
            this.due.delete(unique);
            arrived = true;
          }
          if (arrived) this.onArrival();
        }
        settle();
      },
      () => settle(), // the bus is going away: whoever owns it hears of that
    );
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.due.clear();
  }
}

/**
 * A connection of its own that watches a bus for QEMUs arriving, for a caller that is not attached
 * (nothing found yet): `count` goes up at every arrival and `after(n)` resolves once it passed n.
 */
export class QemuArrivalWatch {
  count = 0;
  private readonly waiters = new Set<{ since: number; resolve: () => void }>();

  private constructor(
    private readonly conn: BusConnection,
    private readonly arrivals: QemuArrivals,
  ) {}

  static async open(address: string, timeoutMs: number): Promise<QemuArrivalWatch> {
    const conn = await openBus(address, timeoutMs);
    const holder: { watch?: QemuArrivalWatch } = {};
    const arrivals = new QemuArrivals(conn.bus, () => holder.watch?.arrived());
    const watch = (holder.watch = new QemuArrivalWatch(conn, arrivals));
    try {
      await arrivals.start();
    } catch (e) {
      await conn.close();
      throw e;
    }
    return watch;
  }

  private arrived(): void {
    this.count++;
    for (const w of [...this.waiters]) {
      if (this.count > w.since) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Resolves once an arrival was seen after `since` (a `count` read earlier), or on abort/close. */
  after(since: number, signal: AbortSignal): Promise<void> {
    if (this.count > since || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        since,
        resolve: () => {
          signal.removeEventListener('abort', w.resolve);
          this.waiters.delete(w);
          resolve();
        },
      };
      this.waiters.add(w);
      signal.addEventListener('abort', w.resolve, { once: true });
    });
  }

  async close(): Promise<void> {
    this.arrivals.close();
    for (const w of [...this.waiters]) w.resolve();
    await this.conn.close();
  }
}
