// The audio-e2e bench's measurement (test/harness/onset.ts) with real parts, so the bench cannot
// rot unnoticed between full bench runs: QEMU 10.0 with its own -audiodev pipewire (the bench's
// baseline path) plays the guest's `bursts` scenario into a headless PipeWire; every marker on
// ttyS1 must arrive stamped, pair with one onset at the sink's monitor, on the same clock (a
// latency above 0 and below 1 s: a clock mix-up is off by hours or negative), and each burst must
// be heard as the 1000 Hz tone the guest wrote.
import { afterEach, expect, it } from 'vitest';
import * as path from 'path';
import { dominantFrequency } from '../harness/audio-capture';
import { ownedTempDir } from '../harness/audio-tools';
import { findOnsets, forceQuantum, matchOnsets, openMarkerLine, startTimedCapture } from '../harness/onset';
import { startPipeWire } from '../harness/pipewire';
import { startGuest } from '../harness/qemu';
import { QEMU_TARGETS } from '../harness/qemu-targets';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch((e: unknown) => console.warn(`cleanup: ${String(e)}`));
});

const BURSTS = 6;

it('QEMU 10.0 -audiodev pipewire: each burst marker pairs with its onset at the sink, on one clock', async () => {
  const qemu = QEMU_TARGETS.find((t) => t.version === '10.0') ?? { version: '10.0', banner: '', problem: 'QEMU 10.0 is filtered out by QDB_QEMU: unset it' };
  const pw = await startPipeWire({ quantum: 256 });
  cleanups.push(() => pw.stop());
  await forceQuantum(pw, 256);
  const cap = startTimedCapture(pw, 256);
  cleanups.push(async () => void (await cap.stop().catch(() => undefined)));
  await cap.ready;
  const sock = path.join(ownedTempDir('e2e'), 'markers.sock');
  const guest = await startGuest({
    qemu,
    scenario: 'bursts',
    audiodev: { pipewire: pw.env },
    params: { bursts: BURSTS, burst_ms: 200, gap_ms: 300 },
    extraArgs: ['-serial', `unix:${sock},server=on,wait=off`],
  });
  cleanups.push(() => guest.stop());
  const line = await openMarkerLine(sock);
  cleanups.push(() => line.close());
  await line.waitFor(new RegExp(`^burst ${BURSTS - 1} `), 180_000);
  await guest.waitForSerial(/MARK bursts-done[^\n]*/, 30_000);
  await new Promise((r) => setTimeout(r, 1000)); // the last burst is still on its way to the sink
  const rec = await cap.stop();
  const { matched, missing } = matchOnsets(line.lines, rec, findOnsets(rec, 150), 500);
  const why = `lines ${JSON.stringify(line.lines)}, matched ${JSON.stringify(matched)}, serial tail ${guest.serial().slice(-400)}`;
  console.log(`[audio-e2e-timing] latencies ${matched.map((m) => m.latencyMs.toFixed(1)).join(' ')} ms; stamps real-time: ${line.realtime && rec.realtime === true}`);
  expect(missing, why).toEqual([]);
  expect(matched.map((m) => m.burst), why).toEqual([...Array(BURSTS).keys()]);
  for (const m of matched) {
    expect(m.latencyMs, why).toBeGreaterThan(0);
    expect(m.latencyMs, why).toBeLessThan(1000);
    const burst = rec.left.subarray(m.frame, m.frame + Math.round(0.2 * rec.rate));
    expect(Math.abs(dominantFrequency(burst, rec.rate) - 1000), why).toBeLessThan(5);
  }
}, 300_000);
