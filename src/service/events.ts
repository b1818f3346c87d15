// Typed in-process events: every listener is a Disposable, and everything
// one owner registered can be removed at once, so a route or the demo's status line never
// leaks listeners across re-attach cycles.

export interface Disposable {
  dispose(): void;
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class TypedEvents<M extends { [K in keyof M]: unknown[] }> {
  private readonly listeners = new Map<keyof M, Set<{ fn: Listener<never[]>; owner?: object }>>();

  on<K extends keyof M>(event: K, fn: Listener<M[K]>, owner?: object): Disposable {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const entry = { fn: fn as unknown as Listener<never[]>, owner };
    set.add(entry);
    return { dispose: () => set.delete(entry) };
  }

  emit<K extends keyof M>(event: K, ...args: M[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const { fn } of [...set]) {
      // A throwing listener must not stop the service's state machine.
      try {
        (fn as unknown as Listener<M[K]>)(...args);
      } catch {
        /* listeners log their own errors */
      }
    }
  }

  /** Removes every listener registered with this owner. */
  removeAll(owner: object): void {
    for (const set of this.listeners.values()) for (const e of [...set]) if (e.owner === owner) set.delete(e);
  }

  listenerCount(event: keyof M): number {
    return this.listeners.get(event)?.size ?? 0;
  }
}
