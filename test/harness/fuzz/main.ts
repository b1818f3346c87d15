// `npm run fuzz -- [--calls N] [--seed S] [--only console,audio-out,audio-in]`: the long listener fuzz (default 100 000 calls per
// interface, a random seed). Prints the seed first and, on failure, the one command that re-runs it.
import { FUZZ_INTERFACES, type FuzzInterface } from './calls';
import { formatReport, rerunCommand, runFuzz } from './run';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const calls = Number(arg('calls') ?? 100_000);
  const seed = Number(arg('seed') ?? Math.floor(Math.random() * 0x7fffffff));
  if (!Number.isInteger(calls) || calls < 1 || !Number.isInteger(seed)) {
    console.error('usage: npm run fuzz -- [--calls N] [--seed S]  (N >= 1, S an integer)');
    return 2;
  }
  const only = arg('only')?.split(',') as FuzzInterface[] | undefined;
  if (only?.some((i) => !FUZZ_INTERFACES.includes(i))) {
    console.error(`--only takes a comma-separated list of ${FUZZ_INTERFACES.join(', ')}`);
    return 2;
  }
  console.log(`fuzz: seed ${seed}, ${calls} calls per interface (re-run: ${rerunCommand(seed, calls, only)})`);
  const report = await runFuzz({ seed, calls, only, progress: (l) => console.log(l) });
  console.log(formatReport(report));
  if (report.failures.length) console.log(`fuzz: bridge log (tail):\n${report.log.slice(-4000)}`);
  return report.failures.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`fuzz: could not run: ${err.stack ?? err.message}`);
    process.exit(3);
  },
);
