/** Counters of one listener connection (reset on each registration). */
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
