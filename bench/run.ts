// npm run bench [-- name...] [--quick]: runs every bench/*.bench.js (compiled) in turn and
// prints one table of values and ratios against the baselines measured in the same run.
import * as fs from 'fs';
import * as path from 'path';
import { BenchContext, BenchFn, BenchRow, ratioOf } from './lib';

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  return a >= 1000 ? n.toFixed(0) : a >= 10 ? n.toFixed(1) : a >= 0.1 ? n.toFixed(2) : n.toPrecision(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const only = args.filter((a) => !a.startsWith('--'));
  const files = fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
    .sort();
  if (files.length === 0) {
    console.error(`no benchmark matched ${only.join(', ') || '(any)'} in ${__dirname}`);
    process.exit(2);
  }
  const ctx: BenchContext = { durationScale: quick ? 0.25 : 1, log: (m) => console.error(`  ${m}`) };
  const all: { bench: string; row: BenchRow }[] = [];
  let failed = 0;
  for (const f of files) {
    const name = f.replace(/\.bench\.js$/, '');
    console.error(`== ${name}`);
    const t0 = Date.now();
    try {
      const mod = require(path.join(__dirname, f)) as { run: BenchFn };
      const rows = await mod.run(ctx);
      for (const row of rows) all.push({ bench: name, row });
      console.error(`   done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      failed++;
      console.error(`   FAILED: ${(err as Error).stack ?? String(err)}`);
    }
  }
  const header = ['bench', 'measurement', 'value', 'unit', 'baseline (same run)', 'baseline value', 'ratio'];
  const lines = all.map(({ bench, row }) => {
    const r = ratioOf(row);
    return [bench, row.name, fmt(row.value), row.unit, row.baseline?.name ?? '-', row.baseline ? fmt(row.baseline.value) : '-', r === undefined ? '-' : `${fmt(r)}x`];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const show = (cols: string[]) => console.log(cols.map((c, i) => c.padEnd(widths[i])).join(' | '));
  show(header);
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  lines.forEach(show);
  for (const { bench, row } of all) if (row.note) console.log(`note (${bench} / ${row.name}): ${row.note}`);
  if (failed) process.exit(1);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
