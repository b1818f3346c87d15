// Kernel tier, v4l2 group, second file (runs INSIDE the guest, as root, after v4l2.guest.ts in
// the same boot): one webcam per console on real v4l2loopback devices (issue 18). One bridge CLI
// with two `[[camera]]` entries in its config file - console 0 -> /dev/video20 (YUYV 320x240),
// console 1 -> /dev/video21 (NV12 352x288), both with pin_resolution - against the project's fake
// QEMU peer with two heads (Console_0 and Console_1 on a private bus in this process; QEMU itself
// would be TCG in TCG here). Each head draws its own colour (red / blue) over the top half and
// 1-pixel black/white columns over the bottom half, at 640x480 until the bridge pins it: the fake
// plays the virtio-gpu guest that re-renders at the size SetUIInfo asks for. Checked with
// `v4l2-ctl --stream-mmap` on both devices at once: each device carries its own console's colour
// in its own format and size, each console was asked for its own camera's size, and the columns
// arrive 1:1 (a scaled picture turns them into grey), so the pinned size is what the camera shows.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { millimetres } from '../../../src/camera/pin-resolution';
import type { CameraPixelFormat } from '../../../src/camera/sinks/types';
import { FakeQemuPeer } from '../../fakes/qemu-peer';
import { startDbusDaemon, type DbusDaemon } from '../../harness/dbus';
import { tempDir, waitFor } from '../../harness/procs';
import { dist, encodePixman, rgbAtFrame, yuvAt, type Rgb } from '../../harness/yuv';
import { announcedFormat, loadV4l2loopback, startBridge, v4l2Caps, v4l2ctlFrames, type BridgeProcess } from './tools';

const VM = 'kcams';
/** the heads' size before the bridge pins them (QEMU's boot size) */
const BOOT = { width: 640, height: 480 };
interface Cam {
  console: number;
  dev: string;
  width: number;
  height: number;
  format: CameraPixelFormat;
  fourcc: string;
  colour: Rgb;
}
const CAMS: Cam[] = [
  { console: 0, dev: '/dev/video20', width: 320, height: 240, format: 'YUY2', fourcc: 'YUYV', colour: { r: 255, g: 0, b: 0 } },
  { console: 1, dev: '/dev/video21', width: 352, height: 288, format: 'NV12', fourcc: 'NV12', colour: { r: 0, g: 0, b: 255 } },
];
/** per-channel tolerance: BT.601 limited range round trip plus chroma subsampling */
const TOLERANCE = 12;
/** luma of black and white in limited range: 16 and 235; a 1:1 column pair differs by ~219 */
const COLUMN_STEP = 150;

let bus: DbusDaemon;
let peer: FakeQemuPeer;
let bridge: BridgeProcess;
let dir: string;
/** the size of the last Scanout each console's listener got */
const shown = new Map<number, { width: number; height: number }>();

/** Head `console` at width x height: its colour on the top half, 1-px black/white columns below. */
function screenOf(console: number, width: number, height: number): Buffer {
  const colour = CAMS[console].colour;
  const black = { r: 0, g: 0, b: 0 };
  const white = { r: 255, g: 255, b: 255 };
  return encodePixman(0x20020888, width, height, (x, y) => (y < height / 2 ? colour : x % 2 ? white : black)).data;
}

/** What the guest renders on each head now (its boot size until a SetUIInfo). */
const headSize = new Map<number, { width: number; height: number }>(CAMS.map((c) => [c.console, BOOT]));

async function scanout(console: number): Promise<void> {
  const { width, height } = headSize.get(console)!;
  const data = screenOf(console, width, height);
  for (const l of peer.listeners.filter((x) => x.kind === 'console' && x.console === console && x.registered && !x.closed)) {
    await l.call('Scanout', 'uuuuay', [width, height, width * 4, 0x20020888, data]);
    shown.set(console, { width, height });
  }
}

/** when this file's own work began (the bundle loads every file at its start) */
let t0 = 0;

beforeAll(async () => {
  t0 = Date.now();
  dir = tempDir('v4l2-cameras');
  await loadV4l2loopback(
    CAMS.map((c) => Number(c.dev.replace('/dev/video', ''))),
    'VM Camera',
  );
  bus = await startDbusDaemon();
  peer = await FakeQemuPeer.start({ busAddress: bus.address, name: VM, width: BOOT.width, height: BOOT.height, heads: CAMS.length });
  peer.onListener = async (l) => {
    if (l.kind === 'console') await scanout(l.console);
  };
  // virtio-gpu: the guest takes the hint and re-renders that head at the asked size
  peer.onSetUIInfo = (console, width, height) => {
    headSize.set(console, { width, height });
    void scanout(console);
  };
  const config = path.join(dir, `${VM}.toml`);
  fs.writeFileSync(
    config,
    CAMS.map((c) => `[[camera]]\nconsole = ${c.console}\ndevice = "${c.dev}"\nsize = "${c.width}x${c.height}"\nfps = 15\nformat = "${c.format}"\npin_resolution = true\n`).join('\n'),
  );
  bridge = startBridge(['run', '--address', bus.address, '--vm', VM, '--audio', 'none', '--config', config, '--log-level', 'debug']);
  await bridge.waitLog(/attached to VM/, 120_000);
  await bridge.until(
    'both devices turn capture-only (a producer writes to each)',
    60_000,
    () =>
      CAMS.every((c) => {
        const caps = v4l2Caps(c.dev);
        return caps.capture && !caps.output;
      }),
  ).catch((err: Error) => {
    const state = CAMS.map((c) => `${c.dev} ${JSON.stringify(v4l2Caps(c.dev))}, console ${c.console} showing ${JSON.stringify(shown.get(c.console))}`).join('; ');
    throw new Error(`${err.message}\n(${state}; SetUIInfo calls ${JSON.stringify(peer.uiInfos)})`);
  });
  console.log(`v4l2-cameras: the bridge writes to both devices ${Date.now() - t0} ms after this file began`);
}, 240_000);

afterAll(async () => {
  if (bridge) console.log(`--- two-camera bridge log:\n${bridge.log()}`);
  await bridge?.stop();
  peer?.bus.connection.end();
  await bus?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`v4l2-cameras: ${Date.now() - t0} ms in all`);
});

describe('two [[camera]] entries on two v4l2loopback devices, one per console of a two-head VM, with pin_resolution', () => {
  it("each console is asked (SetUIInfo) to render at its own camera's size and re-renders at it", async () => {
    await bridge.until("both heads' listeners to get a Scanout at the pinned size", 30_000, () =>
      CAMS.every((c) => shown.get(c.console)?.width === c.width && shown.get(c.console)?.height === c.height),
    );
    const want = CAMS.map((c) => [c.console, millimetres(c.width), millimetres(c.height), 0, 0, c.width, c.height]);
    expect([...peer.uiInfos].sort((a, b) => a[0] - b[0])).toEqual(want);
  });

  it("each device carries its own console's picture (red on console 0's, blue on console 1's) in its own format and size, read at once", async () => {
    const formats = await Promise.all(CAMS.map((c) => announcedFormat(c.dev)));
    expect(formats).toEqual(CAMS.map((c) => `${c.fourcc} ${c.width}x${c.height}`));
    const frames = await Promise.all(CAMS.map((c) => v4l2ctlFrames(c.dev, dir, 2, c.format, c.width, c.height)));
    CAMS.forEach((c, i) => {
      const top = rgbAtFrame(frames[i][1], c.format, c.width, c.height, c.width / 2, c.height / 4);
      expect(dist(top, c.colour), `${c.dev} (console ${c.console}): ${JSON.stringify(top)}, want ${JSON.stringify(c.colour)}`).toBeLessThanOrEqual(TOLERANCE);
    });
  });

  it('pin_resolution holds for both: the 1-pixel columns arrive unscaled on each device', async () => {
    const frames = await Promise.all(CAMS.map((c) => v4l2ctlFrames(c.dev, dir, 1, c.format, c.width, c.height)));
    CAMS.forEach((c, i) => {
      const y = Math.floor((c.height * 3) / 4);
      const luma = Array.from({ length: c.width }, (_, x) => yuvAt(frames[i][0], c.format, c.width, c.height, x, y).y);
      let steps = 0;
      for (let x = 1; x < c.width; x++) if (Math.abs(luma[x] - luma[x - 1]) >= COLUMN_STEP) steps++;
      console.log(`${c.dev}: ${steps}/${c.width - 1} black/white column steps in row ${y}`);
      // every neighbour pair flips; a scaled (640 -> camera) picture has none or a few
      expect(steps, `${c.dev}: row ${y} luma ${luma.slice(0, 12).join(' ')} …`).toBe(c.width - 1);
      expect(luma[0], `${c.dev}: column 0 is black`).toBeLessThan(40);
    });
  });

  it('SIGTERM: the bridge exits 0 and both devices offer OUTPUT again', async () => {
    expect((await bridge.stop()).code).toBe(0);
    await waitFor('both devices to offer OUTPUT again', 10_000, () => CAMS.every((c) => v4l2Caps(c.dev).output && !v4l2Caps(c.dev).capture));
  });
});
