// The short listener fuzz of `npm test` (the long one: `npm run fuzz -- --calls N`): the real
// bridge process, attached over a real dbus-daemon to the fake QEMU peer, takes seeded hostile
// calls on its console, audio-out and audio-in listeners (test/harness/fuzz/). A random seed each
// run, printed with the command that re-runs it; FUZZ_SEED=S pins it.
import { describe, expect, it } from 'vitest';
import { formatReport, rerunCommand, runFuzz } from '../harness/fuzz/run';

const CALLS = 3000;
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 0x7fffffff);

describe('listener fuzz (short, seeded)', () => {
  it(`${CALLS} hostile calls per listener: no crash, every call answered, RSS and log bounded, frame and tone still pass (seed ${seed})`, async () => {
    console.log(`fuzz: seed ${seed} (re-run: ${rerunCommand(seed, CALLS)} or FUZZ_SEED=${seed} npx vitest run test/integration/fuzz-listeners.test.ts)`);
    const report = await runFuzz({ seed, calls: CALLS });
    console.log(formatReport(report));
    if (report.failures.length) console.log(`bridge log (tail):\n${report.log.slice(-4000)}`);
    expect(report.failures).toEqual([]);
    // What `failures` is made of, checked here too so a broken judge cannot pass silently.
    expect(report.crashed).toBeNull();
    for (const i of Object.values(report.interfaces)) {
      expect(i.calls).toBe(CALLS);
      expect(i.unanswered).toEqual([]);
      expect(i.answered).toBeGreaterThan(0);
    }
    expect(report.toneHz).toBeGreaterThan(435);
    expect(report.toneHz).toBeLessThan(445);
    expect(report.frameColorDistance).toBeLessThanOrEqual(16);
  }, 240_000);
});
