/**
 * Counters of one listener connection (reset on each registration): every call QEMU made on it,
 * whether the dispatcher ran it or a native intake took it (handlers.ts ListenerIntake).
 */
export interface PeerListenerStats {
  calls: number;
  bytes: number;
  rejected: number;
  handlerErrors: number;
  /** slowest single dispatch, ms: a slow handler stalls QEMU's queue */
  maxDispatchMs: number;
  /** deferred calls dropped because a later call superseded them (e.g. Updates before a Scanout) */
  superseded: number;
  /** most deferred calls waiting at once */
  maxQueued: number;
  /**
   * performance.now() when QEMU's last call on this connection arrived (-Infinity before the
   * first): QEMU sends them from its main loop, so liveness needs no read while they come.
   */
  lastCallAt: number;
}

export function newStats(): PeerListenerStats {
  return { calls: 0, bytes: 0, rejected: 0, handlerErrors: 0, maxDispatchMs: 0, superseded: 0, maxQueued: 0, lastCallAt: -Infinity };
}

/** What a native intake took itself (handlers.ts ListenerIntake.stats). */
export interface IntakeCounts {
  taken: number;
  takenBytes: number;
  sinceTakenMs: number;
}

/**
 * The connection's counters: the dispatcher's plus the calls the intake took, which never reach
 * it (read when asked: no timer). `now` is performance.now(), the clock of lastCallAt.
 */
export function withIntake(counted: PeerListenerStats, intake: IntakeCounts | undefined, now = performance.now()): PeerListenerStats {
  if (!intake || intake.taken === 0) return counted;
  return { ...counted, calls: counted.calls + intake.taken, bytes: counted.bytes + intake.takenBytes, lastCallAt: Math.max(counted.lastCallAt, now - intake.sinceTakenMs) };
}
