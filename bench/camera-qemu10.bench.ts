// Real QEMU 10.0 guest screen -> camera: Listener.Unix.Map (9.2+, shared memory) against the copy
// path (Scanout/Update carrying the pixels through D-Bus), same guest, same run. The guest (virtio-vga,
// scenario `animate`) walks a white band down its 1280x800 framebuffer without pause; the camera
// listener + pipeline convert to 1280x720 YUY2 at 30/s into a counting sink. Per path, for the same
// time: CPU of this process (the bridge's side: message parsing or pread, blit, convert),
// Update -> sink latency p50/p99 (from the update's arrival to the frame handed to the sink), and how
// many updates arrived. The copy path is the same listener with its scanoutMap hidden, so QEMU is
// not offered Unix.Map and sends Scanout/Update as 7.2 does.
import { CameraConsoleListener } from '../src/camera/listener';
import { CameraPipeline } from '../src/camera/pipeline';
import { QemuVm } from '../src/qemu';
import { startGuest } from '../test/harness/qemu';
import { QEMU_TARGETS, qemuBinary } from '../test/harness/qemu-targets';
import { CountingSink } from './camera.bench';
import { BenchContext, BenchRow, percentile } from './lib';
import { lineLogger } from '../test/fakes/logger';

/** Counts what arrived by which path. */
class CountingListener extends CameraConsoleListener {
  maps = 0;
  mapUpdates = 0;
  copies = 0;
  override scanoutMap(fd: number, offset: number, w: number, h: number, stride: number, f: number): void {
    this.maps++;
    super.scanoutMap(fd, offset, w, h, stride, f);
  }
  override updateMap(x: number, y: number, w: number, h: number): void {
    this.mapUpdates++;
    super.updateMap(x, y, w, h);
  }
  override scanout(w: number, h: number, stride: number, f: number, d: Uint8Array): void {
    this.copies++;
    super.scanout(w, h, stride, f, d);
  }
  override update(x: number, y: number, w: number, h: number, stride: number, f: number, d: Uint8Array): void {
    this.copies++;
    super.update(x, y, w, h, stride, f, d);
  }
}

interface PathResult {
  cpuPct: number;
  p50: number;
  p99: number;
  updates: number;
  frames: number;
  how: string;
}

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const q10 = QEMU_TARGETS.find((t) => t.version === '10.0');
  if (!q10) throw new Error('QEMU 10.0 is not among the targets (QDB_QEMU set?)');
  qemuBinary(q10); // throws why QEMU 10.0 cannot run
  const durationMs = Math.max(3000, 10_000 * ctx.durationScale);
  const guest = await startGuest({ qemu: q10, scenario: 'animate', vga: 'virtio', audiodev: 'none' });
  try {
    await guest.waitForSerial(/MARK animate-start/, 180_000);
    const measure = async (mapped: boolean): Promise<PathResult> => {
      const vm = await QemuVm.connect({ busAddress: guest.busAddress, name: guest.name });
      vm.on('error', () => undefined);
      const listener = new CountingListener({ log: lineLogger((l) => ctx.log(l)) });
      // Hiding the method makes the listener offer no Unix.Map: QEMU copies pixels into messages.
      if (!mapped) Object.defineProperty(listener, 'scanoutMap', { value: undefined });
      const sink = new CountingSink(1280, 720, 30, 'YUY2');
      const pipeline = new CameraPipeline({ source: listener, sink, log: lineLogger((l) => ctx.log(l)) });
      const handle = await vm.addConsoleListener(listener);
      pipeline.start();
      await new Promise((r) => setTimeout(r, 1000)); // first full frame, steady state
      pipeline.takeLatencies();
      const before = { maps: listener.maps, mapUpdates: listener.mapUpdates, copies: listener.copies, frames: sink.written };
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, durationMs));
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const lat = pipeline.takeLatencies().sort((a, b) => a - b);
      pipeline.stop();
      await handle.remove();
      await vm.close();
      listener.close();
      const updates = listener.mapUpdates - before.mapUpdates + listener.copies - before.copies;
      const how = `${listener.maps} ScanoutMap, ${listener.mapUpdates} UpdateMap, ${listener.copies} copied Scanout/Update`;
      ctx.log(`${mapped ? 'Unix.Map' : 'copy'}: ${how}; ${sink.written - before.frames} frames to the sink`);
      return { cpuPct: ((cpu.user + cpu.system) / 1000 / wall) * 100, p50: percentile(lat, 50), p99: percentile(lat, 99), updates, frames: sink.written - before.frames, how };
    };
    const copy = await measure(false);
    const map = await measure(true);
    if (map.how.startsWith('0 ScanoutMap')) throw new Error(`QEMU 10.0 did not take the Unix.Map offer (${map.how})`);
    const label = 'QEMU 10.0 virtio-vga 1280x800 animation -> 720p YUY2';
    const note = `updates in ${(durationMs / 1000).toFixed(0)} s: Unix.Map ${map.updates}, copy ${copy.updates} (QEMU's own pace under TCG); frames to the sink: ${map.frames} vs ${copy.frames}`;
    return [
      { name: `${label}: CPU, Unix.Map (% of one core)`, value: map.cpuPct, unit: '%', better: 'lower', baseline: { name: 'same guest, copy path (Scanout/Update through D-Bus)', value: copy.cpuPct }, note },
      { name: `${label}: latency p50 (update -> sink), Unix.Map`, value: map.p50, unit: 'ms', better: 'lower', baseline: { name: 'copy path p50', value: copy.p50 } },
      { name: `${label}: latency p99 (update -> sink), Unix.Map`, value: map.p99, unit: 'ms', better: 'lower', baseline: { name: 'copy path p99', value: copy.p99 } },
    ];
  } finally {
    await guest.stop();
  }
}
