// Composition root: attach to the VM, start the routes in a fixed order,
// keep each one alive on its own, re-attach when the VM comes back, stop everything in reverse
// order within a fixed budget. The constructor does nothing; start() begins supervision and
// stop() ends it.
//
// Independence: a route failing to start, or failing later through ctx.fail(), is stopped and
// retried with exponential backoff; the other routes are not touched. Only the VM going away
// stops all routes (they all depend on the link), and they all come back on re-attach.
import type { Logger } from '../log';
import { BackoffOptions, DEFAULT_BACKOFF, backoffDelay } from './backoff';
import { TypedEvents } from './events';
import type { SystemdNotifier } from './notify';
import { Attacher, ROUTE_ORDER, Route, RouteContext, RouteId, VmLink, errorCode, errorMessage, errorProblem, idOfRoute, isPermanent } from './route';

/** 'unavailable': failed for a reason that cannot change on this VM (isPermanent); not retried. */
export type RouteState = 'idle' | 'starting' | 'running' | 'retrying' | 'unavailable' | 'stopping' | 'stopped';

export interface ServiceEvents {
  attached: [vm: { name: string; uuid: string }];
  detached: [reason: string];
  routeState: [route: RouteId, state: RouteState, detail: string];
  status: [line: string];
  stopped: [];
}

/** One route as the status service shows it (see Controller.snapshot()). */
export interface RouteSnapshot {
  /** the route's id (its kind, or camera-N for one of several cameras) */
  name: RouteId;
  state: RouteState;
  /** why it is retrying or unavailable ('' otherwise) */
  reason: string;
  /** when the next start attempt is due (ms since the epoch; 0 when none is scheduled) */
  nextRetryAt: number;
  /** the one-phrase status of a running route, or "<name> <state> (<detail>)" */
  summary: string;
}

export interface ControllerSnapshot {
  /** the attached VM, undefined while waiting for it */
  vm: { name: string; uuid: string } | undefined;
  /** the VM went away under a link that stays up (restarting) */
  vmPresent: boolean;
  /** the STATUS= line */
  status: string;
  routes: RouteSnapshot[];
}

export interface ControllerOptions<V extends VmLink> {
  attacher: Attacher<V>;
  /** Any subset of the routes, in any order: they are sorted into ROUTE_ORDER. */
  routes: Route<V>[];
  log: Logger;
  notifier?: SystemdNotifier;
  backoff?: Partial<BackoffOptions>;
  /** A route that ran this long before failing starts its backoff from the beginning again. */
  stableMs?: number;
  /** Longest wait between two attach attempts (default 5 s; the backoff's maxMs caps it too). */
  attachRetryMaxMs?: number;
  /** How long one route's start may hold back the next route (default 15 s). */
  startWaitMs?: number;
  /** Whole budget for stop() (default 1.5 s): SIGTERM must end the process within 2 s, exit included. */
  stopBudgetMs?: number;
  random?: () => number;
}

const abortableSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

/** Resolves with true when p settles within ms, false otherwise (p keeps running). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), Math.max(0, ms))));
  try {
    return await Promise.race([p.then(() => true as const, () => true as const), timeout]);
  } finally {
    clearTimeout(t);
  }
}

/** STATUS= must stay one readable line: code and the problem, not the fix (that is in the log). */
export function shortReason(err: unknown): string {
  const code = errorCode(err);
  let text = errorProblem(err).replace(/\s+/g, ' ').trim();
  if (text.length > 90) text = text.slice(0, 89) + '…';
  return code && !text.includes(code) ? `${code}: ${text}` : text;
}

/** Keeps one route alive on the current VM. */
class RouteRunner<V extends VmLink> {
  state: RouteState = 'idle';
  detail = '';
  /** Set with 'retrying'/'unavailable': the short reason, and when the retry is due. */
  reason = '';
  retryAt = 0;
  private attempt = 0;
  private runningSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private ac: AbortController | undefined;
  private inFlight: Promise<void> | undefined;
  /** Bumped on every begin()/halt(): async continuations from an older generation do nothing. */
  private generation = 0;
  private vm: V | undefined;
  private lastFailure = '';
  private readonly log: Logger;
  readonly id: RouteId;

  constructor(
    readonly route: Route<V>,
    parentLog: Logger,
    private readonly opts: { backoff: BackoffOptions; stableMs: number; random: () => number },
    private readonly onChange: (r: RouteRunner<V>) => void,
  ) {
    this.id = idOfRoute(route);
    this.log = parentLog.child(this.id);
  }

  /** First start attempt on a freshly attached VM; resolves when that attempt has finished. */
  begin(vm: V): Promise<void> {
    this.generation++;
    this.vm = vm;
    this.attempt = 0;
    this.lastFailure = '';
    return this.tryStart(this.generation);
  }

  describe(): string {
    if (this.state === 'running') {
      try {
        return this.route.status();
      } catch (err) {
        return `${this.id} (status error: ${errorMessage(err)})`;
      }
    }
    return `${this.id} ${this.state}${this.detail ? ` (${this.detail})` : ''}`;
  }

  private set(state: RouteState, detail = '', reason = '', retryAt = 0): void {
    this.state = state;
    this.detail = detail;
    this.reason = reason;
    this.retryAt = retryAt;
    this.onChange(this);
  }

  private tryStart(gen: number): Promise<void> {
    if (gen !== this.generation || !this.vm) return Promise.resolve();
    const vm = this.vm;
    const ac = new AbortController();
    this.ac = ac;
    this.set('starting');
    const ctx: RouteContext<V> = {
      vm,
      log: this.log,
      signal: ac.signal,
      fail: (err) => {
        if (gen === this.generation && this.ac === ac && this.state === 'running') void this.failed(gen, ac, err);
      },
      statusChanged: () => {
        if (gen === this.generation && this.state === 'running') this.onChange(this);
      },
    };
    const p = (async () => {
      try {
        await this.route.start(ctx);
      } catch (err) {
        if (gen !== this.generation || ac.signal.aborted) return;
        await this.failed(gen, ac, err);
        return;
      }
      if (gen !== this.generation || ac.signal.aborted) return;
      this.runningSince = Date.now();
      if (this.lastFailure) this.log.info('recovered');
      this.lastFailure = '';
      this.set('running');
      this.log.info(`started: ${this.describe()}`);
    })();
    this.inFlight = p;
    return p;
  }

  private async failed(gen: number, ac: AbortController, err: unknown): Promise<void> {
    const wasRunning = this.state === 'running';
    ac.abort();
    // stop() after a failed or partial start is part of the Route contract: it cleans up.
    try {
      await this.route.stop();
    } catch (stopErr) {
      this.log.debug(`stop after failure also failed: ${errorMessage(stopErr)}`);
    }
    if (gen !== this.generation) return;
    const msg = errorMessage(err);
    if (isPermanent(err)) {
      // Retrying cannot help: say it once, and wait for a VM that (re)appears.
      this.log.warn(`${wasRunning ? 'failed' : 'cannot start'} on this VM: ${msg}`, { code: errorCode(err) });
      this.lastFailure = msg;
      this.set('unavailable', shortReason(err), shortReason(err));
      return;
    }
    if (wasRunning && Date.now() - this.runningSince >= this.opts.stableMs) this.attempt = 0;
    const delay = backoffDelay(this.attempt++, this.opts.backoff, this.opts.random);
    const fields = { code: errorCode(err), retryInMs: delay, attempt: this.attempt };
    // One line per change: repeating the same failure every backoff step is noise.
    if (msg !== this.lastFailure) this.log.warn(`${wasRunning ? 'failed' : 'could not start'}: ${msg}`, fields);
    else this.log.debug(`still failing: ${msg}`, fields);
    this.lastFailure = msg;
    this.set('retrying', `${shortReason(err)}; retry in ${(delay / 1000).toFixed(1)} s`, shortReason(err), Date.now() + delay);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tryStart(gen);
    }, delay);
  }

  /** The VM came back under the same link (maybe another QEMU): an 'unavailable' route tries again. */
  retryUnavailable(): void {
    if (this.state !== 'unavailable') return;
    this.attempt = 0;
    void this.tryStart(this.generation);
  }

  /** Stops the route; resolves within budgetMs even if the route hangs. */
  async halt(budgetMs: number): Promise<void> {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const wasActive = this.state === 'running' || this.state === 'starting';
    const end = Date.now() + budgetMs;
    this.ac?.abort();
    if (this.state === 'idle' || this.state === 'stopped' || this.state === 'unavailable') return this.set('stopped');
    this.set('stopping');
    // A start still in progress sees the aborted signal; give it part of the budget to unwind.
    if (this.inFlight) await within(this.inFlight, (end - Date.now()) / 2);
    if (wasActive) {
      const ok = await within(
        this.route.stop().catch((err) => this.log.warn(`stop failed: ${errorMessage(err)}`, { code: errorCode(err) })),
        end - Date.now(),
      );
      if (!ok) this.log.warn(`did not stop within ${budgetMs} ms; abandoning it`);
    }
    this.set('stopped');
  }
}

export class Controller<V extends VmLink = VmLink> {
  readonly events = new TypedEvents<ServiceEvents>();
  private readonly runners: RouteRunner<V>[];
  private readonly log: Logger;
  private readonly stopAc = new AbortController();
  private vm: V | undefined;
  private loop: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  private lastStatus = '';
  private waitingReason = '';
  /** Set while the link is up but the VM itself is gone (restarting). */
  private absentReason: string | undefined;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  private resolveFatal!: (err: Error) => void;
  /** Set while attached: drops this attach and attaches anew (Reattach from outside). */
  private requestReattach: ((reason: string) => void) | undefined;
  /** Resolves when attaching failed with a permanent error (isPermanent): supervision has ended. */
  readonly fatal: Promise<Error> = new Promise((r) => (this.resolveFatal = r));

  constructor(private readonly opts: ControllerOptions<V>) {
    this.log = opts.log;
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.random = opts.random ?? Math.random;
    // by kind; several routes of one kind (cameras) keep the order they were given in (a stable sort)
    const sorted = [...opts.routes].sort((a, b) => ROUTE_ORDER.indexOf(a.name) - ROUTE_ORDER.indexOf(b.name));
    this.runners = sorted.map(
      (r) =>
        new RouteRunner(
          r,
          opts.log,
          { backoff: this.backoff, stableMs: opts.stableMs ?? 10_000, random: this.random },
          (runner) => this.routeChanged(runner),
        ),
    );
  }

  /** Begins supervision; returns at once. Attaching happens in the background (see events). */
  start(): void {
    if (this.loop) return;
    this.opts.notifier?.startWatchdog();
    this.updateStatus();
    this.loop = this.supervise().catch((err) => {
      // A bug in supervision itself: log it loudly; stop() still works.
      this.log.error(`supervisor crashed: ${errorMessage(err)}`);
    });
  }

  get attachedVm(): V | undefined {
    return this.vm;
  }

  routeStates(): Record<string, RouteState> {
    return Object.fromEntries(this.runners.map((r) => [r.id, r.state]));
  }

  /** Everything the status service shows, read on demand (cheap: no route is asked for counters). */
  snapshot(): ControllerSnapshot {
    const vm = this.vm;
    return {
      vm: vm ? { name: vm.name, uuid: vm.uuid } : undefined,
      vmPresent: vm !== undefined && this.absentReason === undefined,
      status: this.statusLine(),
      routes: this.runners.map((r) => ({ name: r.id, state: r.state, reason: r.reason, nextRetryAt: r.retryAt, summary: r.describe() })),
    };
  }

  /** The routes, in start order (the status service reads their counters). */
  get routes(): readonly Route<V>[] {
    return this.runners.map((r) => r.route);
  }

  /**
   * Stops the named routes (all when `names` is empty; a name is a route id, or a kind for every
   * route of it: `camera` restarts each camera) and starts them again on the attached VM.
   * Returns the ids restarted; none while no VM is attached or when stopping.
   */
  async restartRoutes(names: readonly string[]): Promise<RouteId[]> {
    if (!this.vm || this.stopAc.signal.aborted) return [];
    const chosen = this.runners.filter((r) => names.length === 0 || names.includes(r.id) || names.includes(r.route.name));
    this.log.info(`restarting ${chosen.map((r) => r.id).join(', ') || 'no routes'} on request`);
    // Reverse order to stop (input first), then each starts again in order.
    for (const r of [...chosen].reverse()) await r.halt(this.opts.stopBudgetMs ?? 1500);
    const vm = this.vm;
    if (vm) for (const r of chosen) await within(r.begin(vm), this.opts.startWaitMs ?? 15_000);
    return chosen.map((r) => r.id);
  }

  /** Drops the VM link and attaches anew (as when the VM went away). False when not attached. */
  reattach(reason = 'reattach requested'): boolean {
    if (!this.requestReattach) return false;
    this.requestReattach(reason);
    return true;
  }

  /** The one-line STATUS=, e.g. "audio 44100 Hz 2ch → vm-sink · camera 1280x720@30 → /dev/video10". */
  statusLine(): string {
    if (this.stopAc.signal.aborted) return 'stopping';
    if (!this.vm) return `waiting for ${this.opts.attacher.describe()}${this.waitingReason ? ` (${this.waitingReason})` : ''}`;
    if (this.absentReason !== undefined) return `VM '${this.vm.name}' is gone (${this.absentReason}); waiting for it to come back`;
    if (this.runners.length === 0) return `attached to VM '${this.vm.name}', no routes enabled`;
    return this.runners.map((r) => r.describe()).join(' · ');
  }

  /** Orderly stop: routes in reverse order, then the VM link. Resolves within stopBudgetMs (+ a few ms). */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    const budget = this.opts.stopBudgetMs ?? 1500;
    const end = Date.now() + budget;
    this.stopAc.abort();
    this.opts.notifier?.stopping();
    this.log.info('stopping');
    await this.haltRoutes(end);
    const vm = this.vm;
    this.vm = undefined;
    if (vm) {
      if (!(await within(vm.close(), end - Date.now()))) this.log.warn('VM link did not close in time');
    }
    if (this.loop) await within(this.loop, end - Date.now());
    if (this.opts.attacher.close) await within(this.opts.attacher.close().catch(() => undefined), end - Date.now());
    this.log.info('stopped');
    this.events.emit('stopped');
  }

  private async haltRoutes(end: number): Promise<void> {
    const reversed = [...this.runners].reverse();
    for (let i = 0; i < reversed.length; i++) {
      // Share what is left of the budget among the routes still to stop, so one hung route
      // cannot eat the time the others need to release keys or drain audio.
      const share = Math.max(50, (end - Date.now()) / (reversed.length - i));
      await reversed[i].halt(share);
    }
  }

  private async supervise(): Promise<void> {
    const signal = this.stopAc.signal;
    let attempt = 0;
    let lastError = '';
    while (!signal.aborted) {
      let vm: V;
      try {
        vm = await this.opts.attacher.attach(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (isPermanent(err)) {
          // Retrying cannot help (e.g. the VM's bus belongs to another user): explained once, by
          // whoever ends the service with it.
          this.waitingReason = shortReason(err);
          this.updateStatus();
          this.resolveFatal(err instanceof Error ? err : new Error(errorMessage(err)));
          break;
        }
        const msg = errorMessage(err);
        const delay = backoffDelay(attempt++, { ...this.backoff, maxMs: Math.min(this.backoff.maxMs, this.opts.attachRetryMaxMs ?? 5000) }, this.random);
        if (msg !== lastError) this.log.warn(`cannot attach to ${this.opts.attacher.describe()}: ${msg}; will keep trying`, { code: errorCode(err) });
        lastError = msg;
        this.waitingReason = msg;
        this.updateStatus();
        // The backoff bounds the retries; a QEMU appearing on the bus ends the wait at once. The
        // wait's own signal ends the loser too, so nothing of a wait outlives it.
        const wait = new AbortController();
        const stop = (): void => wait.abort();
        signal.addEventListener('abort', stop, { once: true });
        try {
          const appeared = this.opts.attacher.appeared?.(wait.signal);
          await (appeared ? Promise.race([abortableSleep(delay, wait.signal), appeared]) : abortableSleep(delay, wait.signal));
        } finally {
          wait.abort();
          signal.removeEventListener('abort', stop);
        }
        continue;
      }
      if (signal.aborted) {
        await vm.close().catch(() => undefined);
        break;
      }
      attempt = 0;
      lastError = '';
      this.waitingReason = '';
      this.vm = vm;
      this.absentReason = undefined;
      const unsubscribePresence = vm.onPresence?.((p) => {
        if (p.present) {
          this.absentReason = undefined;
          this.events.emit('attached', { name: vm.name, uuid: vm.uuid });
          for (const r of this.runners) r.retryUnavailable();
        } else {
          this.absentReason = p.reason ?? 'gone';
          this.events.emit('detached', this.absentReason);
        }
        this.updateStatus();
      });
      this.log.info(`attached to VM '${vm.name}'`, { uuid: vm.uuid });
      this.events.emit('attached', { name: vm.name, uuid: vm.uuid });
      for (const r of this.runners) {
        if (signal.aborted) break;
        // In order, but a route whose start hangs (a D-Bus call waiting for its timeout) must not
        // hold back the ones after it: they start once it has had its time.
        if (!(await within(r.begin(vm), this.opts.startWaitMs ?? 15_000))) this.log.warn(`${r.id} is still starting; starting the next routes meanwhile`);
      }
      if (signal.aborted) break;
      this.opts.notifier?.ready(this.statusLine());
      this.updateStatus();

      const stopped = new Promise<string>((resolve) => {
        if (signal.aborted) resolve('stop');
        signal.addEventListener('abort', () => resolve('stop'), { once: true });
      });
      const reattach = new Promise<string>((resolve) => (this.requestReattach = resolve));
      const reason = await Promise.race([vm.lost, stopped, reattach]);
      this.requestReattach = undefined;
      unsubscribePresence?.();
      this.absentReason = undefined;
      if (signal.aborted) break;
      this.log.warn(`VM '${vm.name}' went away (${reason}); stopping routes and waiting for it to come back`);
      this.events.emit('detached', reason);
      await this.haltRoutes(Date.now() + 5000);
      await vm.close().catch(() => undefined);
      this.vm = undefined;
      this.waitingReason = reason;
      this.updateStatus();
    }
  }

  private routeChanged(r: RouteRunner<V>): void {
    this.events.emit('routeState', r.id, r.state, r.detail);
    this.updateStatus();
  }

  private updateStatus(): void {
    const line = this.statusLine();
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.opts.notifier?.status(line);
    this.events.emit('status', line);
  }
}
