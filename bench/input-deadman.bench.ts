// What the input route's dead-man's switch costs when the camera is off, so that it is the only
// console listener and QEMU sends it every frame (it drops them). Real QEMU 7.2 guest (`pattern`
// scenario: 1280x800 XRGB8888, drawn once, then still).
//
// Rows, each against the same process with no listener in the same run:
// - CPU of registering it (QEMU pushes one full 4 MB Scanout at once);
// - CPU per second while the guest screen is still (the usual desktop case between changes);
// - CPU per MB of frames received, from the registration Scanout (the cost of a busy screen).
import { BenchContext, BenchRow } from './lib';
import { QemuVm } from '../src/qemu';
import { startGuest } from '../test/harness/qemu';
import { sleep, waitFor } from '../test/harness/procs';

const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000;

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const guest = await startGuest({ scenario: 'pattern' });
  try {
    await guest.waitForSerial(/MARK pattern-drawn/, 180_000);
    const vm = await QemuVm.connect({ busAddress: guest.busAddress, livenessIntervalMs: 0 });
    try {
      const seconds = Math.max(2, Math.round(10 * ctx.durationScale));
      let c0 = process.cpuUsage();
      await sleep(seconds * 1000);
      let idleBase = cpuMs(process.cpuUsage(c0)) / seconds;

      c0 = process.cpuUsage();
      const handle = await vm.addDeadMansSwitch();
      await waitFor('the registration Scanout', 30_000, () => (handle.stats?.bytes ?? 0) >= 1280 * 800 * 4, 10);
      await sleep(200); // its deferred dispatch
      const registerMs = cpuMs(process.cpuUsage(c0));
      const mb = (handle.stats?.bytes ?? 0) / 2 ** 20;

      const calls0 = handle.stats?.calls ?? 0;
      c0 = process.cpuUsage();
      await sleep(seconds * 1000);
      const idleHeld = cpuMs(process.cpuUsage(c0)) / seconds;
      ctx.log(`registration: ${registerMs.toFixed(1)} ms CPU for ${mb.toFixed(1)} MB; still screen: ${idleHeld.toFixed(2)} vs ${idleBase.toFixed(2)} ms CPU/s; ${(handle.stats?.calls ?? 0) - calls0} calls while still`);
      await handle.remove();
      // the no-listener baseline again, now that the process has settled; the lower one counts
      c0 = process.cpuUsage();
      await sleep(seconds * 1000);
      const idleBase2 = cpuMs(process.cpuUsage(c0)) / seconds;
      idleBase = Math.min(idleBase, idleBase2);
      return [
        { name: "dead-man's switch: CPU to register (one full Scanout)", value: registerMs, unit: 'ms', baseline: { name: 'CPU per second, no listener', value: idleBase }, better: 'lower', note: `${mb.toFixed(1)} MB received and dropped` },
        { name: "dead-man's switch: CPU per MB of frames dropped", value: registerMs / Math.max(mb, 1e-9), unit: 'ms/MB', better: 'lower' },
        { name: "dead-man's switch held: CPU per second, still screen", value: idleHeld, unit: 'ms/s', baseline: { name: 'no listener', value: idleBase }, better: 'lower' },
      ];
    } finally {
      await vm.close();
    }
  } finally {
    await guest.stop();
  }
}
