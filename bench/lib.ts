// Benchmark contract. Each bench/<name>.bench.ts exports `run(ctx)` and returns rows; the runner
// (bench/run.ts) prints them as one table. Every row is compared with a BASELINE MEASURED IN
// THE SAME RUN (a raw socket read, a memcpy, QEMU's own backend...), never with a constant:
// these are shared 2-core machines, only same-run ratios mean anything.
import { ChildProcess, spawn } from 'child_process';

export interface BenchRow {
  /** what was measured, e.g. "8 MB Update ingest" */
  name: string;
  value: number;
  unit: string;
  /** the same-run baseline this row is compared with, if any */
  baseline?: { name: string; value: number };
  /** "higher" when a bigger value is better (throughput), "lower" for latency/CPU */
  better: 'higher' | 'lower';
  note?: string;
}

export interface BenchContext {
  /** seconds a long-running measurement may take (smaller with --quick) */
  durationScale: number;
  log(msg: string): void;
}

export type BenchFn = (ctx: BenchContext) => Promise<BenchRow[]>;

/** ratio = value / baseline, expressed so that > 1 always means "slower/worse than baseline"
 * for lower-is-better rows and "x of baseline" for higher-is-better rows. */
export function ratioOf(row: BenchRow): number | undefined {
  if (!row.baseline || row.baseline.value === 0) return undefined;
  return row.value / row.baseline.value;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** A spinning child process: on a 2-core machine it keeps the other core busy. Kill it by PID. */
export function busyCore(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
}
