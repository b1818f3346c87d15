// Liveness (src/qemu/vm/liveness.ts) on fake timers: when the VM is read, and what each answer
// reports. QEMU's listener calls stand in for a read while they come; the read follows
// `intervalMs` after the last one.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Liveness, type Probe } from '../../src/qemu/vm/liveness';

const INTERVAL = 1000;
const TIMEOUT = 3000;

/** A Liveness whose reads are counted and answered by `answer` after `replyMs`; `heard` is when QEMU last called. */
function setup(o: { answer?: () => Probe; replyMs?: number; heard?: number } = {}) {
  const s = {
    reads: [] as number[],
    heard: o.heard ?? -Infinity,
    answer: o.answer ?? ((): Probe => 'ok'),
    replyMs: o.replyMs ?? 5,
    watching: true,
    events: [] as string[],
  };
  const probe = (): Promise<Probe> => {
    s.reads.push(Date.now());
    return new Promise((r) => setTimeout(() => r(s.answer()), s.replyMs));
  };
  const l = new Liveness(
    { intervalMs: INTERVAL, timeoutMs: TIMEOUT },
    probe,
    () => s.watching,
    { unresponsive: () => s.events.push(`unresponsive@${Date.now()}`), responsive: () => s.events.push(`responsive@${Date.now()}`), gone: () => s.events.push(`gone@${Date.now()}`) },
    () => Date.now() - s.heard,
  );
  return { s, l };
}

describe('Liveness', () => {
  let live: Liveness | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    live?.stop();
    live = undefined;
    vi.useRealTimers();
  });

  it('a VM that sends nothing is read once per interval', async () => {
    const { s, l } = setup();
    live = l;
    l.start();
    await vi.advanceTimersByTimeAsync(3500);
    expect(s.reads).toEqual([1000, 2000, 3000]);
  });

  it('while QEMU calls the listeners (every 10 ms), the VM is never read', async () => {
    const { s, l } = setup({ heard: 0 });
    live = l;
    const calls = setInterval(() => (s.heard = Date.now()), 10);
    l.start();
    await vi.advanceTimersByTimeAsync(10_000);
    clearInterval(calls);
    expect(s.reads).toEqual([]);
  });

  it('while QEMU calls, Liveness wakes once per interval, not per call', async () => {
    const { s, l } = setup({ heard: 0 });
    live = l;
    const calls = setInterval(() => (s.heard = Date.now()), 10);
    l.start();
    const arms = vi.spyOn(globalThis, 'setTimeout');
    await vi.advanceTimersByTimeAsync(10_000);
    clearInterval(calls);
    expect(arms.mock.calls.map((c) => c[1])).toEqual(Array(10).fill(INTERVAL));
  });

  it('when the calls stop, the read comes one interval after the last call', async () => {
    const { s, l } = setup({ heard: 0 });
    live = l;
    const calls = setInterval(() => (s.heard = Date.now()), 10);
    l.start();
    await vi.advanceTimersByTimeAsync(2340);
    clearInterval(calls); // last call at 2340
    await vi.advanceTimersByTimeAsync(2000);
    expect(s.reads).toEqual([3340, 4340]);
  });

  it('QEMU stopped mid-stream: EQEMU_UNRESPONSIVE once, interval + timeout after its last call; responsive after an answer', async () => {
    const { s, l } = setup({ heard: 0, answer: () => 'stuck', replyMs: TIMEOUT });
    live = l;
    const calls = setInterval(() => (s.heard = Date.now()), 10);
    l.start();
    await vi.advanceTimersByTimeAsync(5000);
    clearInterval(calls); // stopped right after its call at 5000
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.events).toEqual([`unresponsive@${5000 + INTERVAL + TIMEOUT}`]);
    s.answer = () => 'ok';
    s.replyMs = 5;
    await vi.advanceTimersByTimeAsync(INTERVAL + TIMEOUT);
    expect(s.events.slice(1)).toHaveLength(1);
    expect(s.events[1]).toMatch(/^responsive@/);
  });

  it('an unresponsive VM is read every interval even while calls arrive: only an answer says it is back', async () => {
    const { s, l } = setup({ answer: () => 'stuck', replyMs: 100 });
    live = l;
    l.start();
    await vi.advanceTimersByTimeAsync(1200);
    expect(s.events).toEqual(['unresponsive@1100']);
    const calls = setInterval(() => (s.heard = Date.now()), 10);
    await vi.advanceTimersByTimeAsync(2000);
    clearInterval(calls);
    expect(s.reads).toEqual([1000, 2000, 3000]);
    expect(s.events).toEqual(['unresponsive@1100']); // reported once
  });

  it('a read that finds no owner reports gone', async () => {
    const { s, l } = setup({ answer: () => 'gone' });
    live = l;
    l.start();
    await vi.advanceTimersByTimeAsync(1010);
    expect(s.events).toEqual(['gone@1005']);
  });

  it('nothing is read while not watching (the VM is away), and nothing after stop()', async () => {
    const { s, l } = setup();
    live = l;
    s.watching = false;
    l.start();
    await vi.advanceTimersByTimeAsync(3500);
    expect(s.reads).toEqual([]);
    s.watching = true;
    l.stop();
    await vi.advanceTimersByTimeAsync(3500);
    expect(s.reads).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an interval of 0 makes no reads and arms no timer', async () => {
    const l = new Liveness({ intervalMs: 0, timeoutMs: TIMEOUT }, () => Promise.resolve('ok'), () => true, { unresponsive: () => undefined, responsive: () => undefined, gone: () => undefined });
    l.start();
    expect(vi.getTimerCount()).toBe(0);
  });
});
