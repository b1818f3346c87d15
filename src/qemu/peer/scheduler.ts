// Deferred calls of one listener connection (the slow-consumer policy). Fire-and-forget calls
// of `deferrable` methods (display frames) are queued and run in time slices, so a burst on one
// connection never delays a call QEMU waits for on another (audio Read, GetAll: QEMU's main loop
// is blocked until we answer those). Two bounds keep a slow consumer from costing memory or
// time:
//   - a call that `supersedes` members drops the queued ones it makes obsolete, unrun (a full
//     Scanout covers every queued Update);
//   - above `maxQueuedBytes` the dispatcher runs calls inline again (see accepts()), which stops
//     us reading the socket while they run: the backlog then waits in QEMU, not in our heap.
import type { PeerListenerStats } from './stats';
import type { ExportedMethod } from './served';

export interface Deferred {
  ifaceName: string;
  member: string;
  method: ExportedMethod;
  body: unknown[];
  bytes: number;
}

export interface SchedulerOptions {
  /** time slice for running deferred calls before yielding to other sockets */
  sliceMs: number;
  /** queued bytes above which calls are no longer deferred */
  maxQueuedBytes: number;
}

export class DeferredQueue {
  private queue: Deferred[] = [];
  private queuedBytes = 0;
  private drainScheduled = false;

  constructor(
    private readonly opts: SchedulerOptions,
    private readonly stats: PeerListenerStats,
    /** runs one call; must not throw */
    private readonly run: (d: Deferred) => void,
    private readonly isOpen: () => boolean,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  /** May a call of `bytes` be deferred, or must it run inline (the queue is full)? */
  accepts(bytes: number): boolean {
    return this.queuedBytes + bytes <= this.opts.maxQueuedBytes;
  }

  enqueue(d: Deferred): void {
    const sup = d.method.supersedes;
    if (sup?.length && this.queue.length) {
      const before = this.queue.length;
      this.queue = this.queue.filter((q) => {
        if (q.ifaceName === d.ifaceName && sup.includes(q.member)) {
          this.queuedBytes -= q.bytes;
          return false;
        }
        return true;
      });
      this.stats.superseded += before - this.queue.length;
    }
    this.queue.push(d);
    this.queuedBytes += d.bytes;
    if (this.queue.length > this.stats.maxQueued) this.stats.maxQueued = this.queue.length;
    this.schedule();
  }

  /** Run queued calls for up to `budgetMs` (at least one), then yield to the event loop. */
  drain(budgetMs: number): void {
    const start = performance.now();
    while (this.queue.length && this.isOpen()) {
      const d = this.queue.shift()!;
      this.queuedBytes -= d.bytes;
      const t0 = performance.now();
      this.run(d);
      const ms = performance.now() - t0;
      if (ms > this.stats.maxDispatchMs) this.stats.maxDispatchMs = ms;
      if (performance.now() - start >= budgetMs) break;
    }
    if (this.queue.length && this.isOpen()) this.schedule();
  }

  clear(): void {
    this.queue = [];
    this.queuedBytes = 0;
  }

  private schedule(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain(this.opts.sliceMs);
    });
  }
}
