// The whole camera path with real parts: QEMU 7.2 TCG guest (-display dbus, std VGA/bochs) on a
// private dbus-daemon -> src/qemu console listener -> CameraConsoleListener -> CameraPipeline ->
// PipeWire camera node (private pipewire + WirePlumber) -> gst-launch-1.0 pipewiresrc ! pngenc
// -> PNG regions. Scenario `pattern` draws four quadrants with a black border on the bochs
// framebuffer (1280x800); scenario `text` stays in 720x400 VGA text mode, for which QEMU 7.2
// sends Updates and Console Width/Height but no Scanout.
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { CameraConsoleListener, type PictureView } from '../../src/camera/listener';
import { letterbox } from '../../src/camera/letterbox';
import { CameraPipeline } from '../../src/camera/pipeline';
import { pinGuestResolution } from '../../src/camera/pin-resolution';
import { PipeWireSink, cameraNodeName } from '../../src/camera/sinks/pipewire';
import { QemuVm } from '../../src/qemu';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { captureCameraFrames, colorDistance, decodePng, meanColor, type Image } from '../harness/gst';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX, type QemuTarget } from '../harness/qemu-targets';
import { lineLogger } from '../fakes/logger';

const TOL = 16;
const RED = { r: 255, g: 0, b: 0 };
const GREEN = { r: 0, g: 255, b: 0 };
const BLUE = { r: 0, g: 0, b: 255 };
const WHITE = { r: 255, g: 255, b: 255 };
const BLACK = { r: 0, g: 0, b: 0 };

/** The listener, plus the sequence of picture sizes it went through (mode changes). */
class SizeTrackingListener extends CameraConsoleListener {
  readonly sizes: string[] = [];
  readonly scanoutSizes: string[] = [];
  /** ScanoutMap calls (9.2+ shared memory) and UpdateMap calls. */
  mapScanouts = 0;
  mapUpdates = 0;
  override scanoutMap(fd: number, offset: number, w: number, h: number, stride: number, f: number): void {
    this.mapScanouts++;
    this.scanoutSizes.push(`${w}x${h} (map)`);
    super.scanoutMap(fd, offset, w, h, stride, f);
    this.note();
  }
  override updateMap(x: number, y: number, w: number, h: number): void {
    this.mapUpdates++;
    super.updateMap(x, y, w, h);
    this.note();
  }
  private note(): void {
    const s = `${this.fb.width}x${this.fb.height}`;
    if (this.sizes[this.sizes.length - 1] !== s) this.sizes.push(s);
  }
  override scanout(w: number, h: number, stride: number, f: number, d: Uint8Array): void {
    this.scanoutSizes.push(`${w}x${h}`);
    super.scanout(w, h, stride, f, d);
    this.note();
  }
  override update(x: number, y: number, w: number, h: number, stride: number, f: number, d: Uint8Array): void {
    super.update(x, y, w, h, stride, f, d);
    this.note();
  }
  override consoleSize(w: number, h: number): void {
    super.consoleSize(w, h);
    this.note();
  }
}

interface Rig {
  guest: Guest;
  /** QEMU killed and started again under the same name; the QemuVm re-attaches by itself. */
  restart(): Promise<void>;
  vm: QemuVm;
  listener: SizeTrackingListener;
  sink: PipeWireSink;
  pipeline: CameraPipeline;
  stop(): Promise<void>;
}

let bus: DbusDaemon;
let pw: PipeWire;
let rig: Rig | undefined;

beforeAll(async () => {
  bus = await startDbusDaemon();
  pw = await startPipeWire();
});
afterEach(async (ctx: TestContext) => {
  if (ctx.task.result?.state === 'fail' && rig) console.error(`guest logs kept in ${rig.guest.keepLogs('camera-guest')}`);
  await rig?.stop();
  rig = undefined;
});
afterAll(async () => {
  await pw?.stop();
  await bus?.stop();
});

async function startRig(scenario: 'pattern' | 'text', qemu?: QemuTarget, vga: 'std' | 'virtio' = 'std'): Promise<Rig> {
  const name = `qdb-cam-${scenario}-${process.pid}-${qemu?.version ?? '7.2'}-${vga}`;
  const uuid = '5a3e1c2d-0000-4000-8000-00000000d001';
  let guest = await startGuest({ qemu, scenario, busAddress: bus.address, name, uuid, audiodev: 'none', vga });
  const vm = await QemuVm.connect({ busAddress: bus.address, name });
  vm.on('error', () => undefined);
  const logs: string[] = [];
  const listener = new SizeTrackingListener({ log: lineLogger((l) => logs.push(l)) });
  // QEMU 7.2 announces VGA text mode only through the Console Width/Height properties (no
  // Scanout): addConsoleListener passes the current size and every change to consoleSize().
  const handle = await vm.addConsoleListener(listener);
  const sink = new PipeWireSink({ vmName: name, width: 1280, height: 720, fps: 30, remote: pw.env.PIPEWIRE_REMOTE });
  const pipeline = new CameraPipeline({ source: listener, sink, log: lineLogger((l) => logs.push(l)) });
  pipeline.start();
  return {
    get guest() {
      return guest;
    },
    async restart() {
      const gone = new Promise<void>((r) => vm.once('vm-gone', () => r()));
      guest.kill('SIGKILL');
      await guest.exited;
      await gone;
      const back = new Promise<void>((r) => vm.once('reattached', () => r()));
      guest = await startGuest({ qemu, scenario, busAddress: bus.address, name, uuid, audiodev: 'none', vga });
      await back;
    },
    vm,
    listener,
    sink,
    pipeline,
    async stop() {
      pipeline.stop();
      await sink.close();
      await handle.remove();
      await vm.close();
      listener.close();
      await guest.stop();
      if (logs.length) console.error(`camera log lines: ${logs.join(' | ')}`);
    },
  };
}

async function grab(r: Rig, format: 'YUY2' | 'I420' | 'NV12' = 'YUY2'): Promise<Image> {
  const files = await captureCameraFrames({ env: pw.env, target: r.sink.target, count: 2, caps: `video/x-raw,format=${format},colorimetry=bt601`, timeoutMs: 60_000 });
  return decodePng(files[files.length - 1]);
}

/** 0xRRGGBB of a picture pixel (B,G,R,A in memory). */
const rgb24 = (p: PictureView, x: number, y: number): number => {
  const i = y * p.stride + x * 4;
  return (p.data[i + 2] << 16) | (p.data[i + 1] << 8) | p.data[i];
};

/** The pattern in the listener's framebuffer (QEMU's dirty tracking has sent all of it). */
async function patternInFramebuffer(l: SizeTrackingListener, gw: number, gh: number): Promise<void> {
  await waitFor('pattern in the framebuffer', 60_000, () => {
    const p = l.picture();
    if (!p || p.width !== gw || p.height !== gh) return false;
    const px = (x: number, y: number) => rgb24(p, x, y);
    return px(gw / 4, gh / 4) === 0xff0000 && px((3 * gw) / 4, (3 * gh) / 4) === 0xffffff && px(gw / 4, (3 * gh) / 4) === 0x0000ff;
  });
}

describe.each(QEMU_MATRIX)('guest screen -> PipeWire camera (QEMU %s, TCG)', (version, qemu) => {
  // 7.2 with std VGA (bochs), every frame copied; 10.0 with virtio-vga, whose 2D resources are
  // shareable memfds in 9.2+: the whole picture comes through Listener.Unix.Map (ScanoutMap once,
  // UpdateMap rectangles), never copied. (10.0 with std VGA maps only the surfaces QEMU allocates
  // itself, the VGA modes; bochs' VRAM framebuffer still comes as a copied Scanout.)
  const vga = version === '7.2' ? 'std' : 'virtio';
  it(`pattern (${vga === 'std' ? 'std VGA, copied' : 'virtio-vga, through Unix.Map only'}): the four quadrants and the black border arrive where the letterbox puts them; again after a VM restart`, async () => {
    rig = await startRig('pattern', qemu, vga);
    let copiedUpdates = 0;
    const l0 = rig.listener;
    const update = l0.update.bind(l0);
    l0.update = (...a: Parameters<typeof l0.update>) => {
      copiedUpdates++;
      update(...a);
    };
    const m = await rig.guest.waitForSerial(/MARK pattern-drawn w=(\d+) h=(\d+) .*border=(\d+) split_x=(\d+) split_y=(\d+)/, 180_000);
    const [gw, gh, border] = [Number(m[1]), Number(m[2]), Number(m[3])];
    expect([gw, gh]).toEqual([1280, 800]);
    const l = rig.listener;
    await patternInFramebuffer(l, gw, gh);
    if (vga === 'std') expect(l.mapScanouts).toBe(0);
    else {
      expect(l.scanoutSizes[l.scanoutSizes.length - 1]).toBe(`${gw}x${gh} (map)`);
      expect(l.scanoutSizes.every((sz) => sz.endsWith('(map)'))).toBe(true);
      expect(l.mapUpdates).toBeGreaterThan(0);
      expect(copiedUpdates).toBe(0);
    }
    // mode changes seen on the way (where we join depends on boot speed): 640x480 (VGA graphics
    // at registration), 720x400 (text mode, no Scanout), 1280x800 (the DRM driver); ends at 1280x800
    expect(l.sizes[l.sizes.length - 1]).toBe('1280x800');
    console.log(`[camera-guest] picture sizes: ${l.sizes.join(' -> ')}; Scanouts: ${l.scanoutSizes.join(', ')}`);

    const node = await pw.waitForNode(cameraNodeName(rig.guest.name));
    expect(node.info?.props).toMatchObject({ 'media.class': 'Video/Source', 'media.role': 'Camera', 'node.description': `${rig.guest.name} screen` });

    const img = await grab(rig);
    expect([img.width, img.height]).toEqual([1280, 720]);
    const [rx, ry, rw, rh] = letterbox(gw, gh, 1280, 720);
    expect([rx, ry, rw, rh]).toEqual([64, 0, 1152, 720]);
    const s = rw / gw;
    const at = (gx: number, gy: number, size = 24) => meanColor(img, { x: rx + gx * s - size / 2, y: ry + gy * s - size / 2, w: size, h: size });
    expect(colorDistance(at(gw / 4, gh / 4), RED)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(at((3 * gw) / 4, gh / 4), GREEN)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(at(gw / 4, (3 * gh) / 4), BLUE)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(at((3 * gw) / 4, (3 * gh) / 4), WHITE)).toBeLessThanOrEqual(TOL);
    // the guest's 16 px border (14 px after scaling): sample its middle
    const b = (border * s) / 2;
    expect(colorDistance(meanColor(img, { x: rx + b - 3, y: 300, w: 6, h: 100 }), BLACK)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(meanColor(img, { x: 500, y: ry + b - 3, w: 100, h: 6 }), BLACK)).toBeLessThanOrEqual(TOL);
    // pillarbox bars
    expect(colorDistance(meanColor(img, { x: 0, y: 100, w: rx, h: 500 }), BLACK)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(meanColor(img, { x: rx + rw, y: 100, w: 1280 - rx - rw, h: 500 }), BLACK)).toBeLessThanOrEqual(TOL);

    // The VM is killed and started again; the camera node stays, and shows the new guest's pattern.
    const mapsBefore = l.mapScanouts;
    await rig.restart();
    await rig.guest.waitForSerial(/MARK pattern-drawn/, 180_000);
    await patternInFramebuffer(l, gw, gh);
    if (vga === 'virtio') {
      expect(l.mapScanouts).toBeGreaterThan(mapsBefore); // the new QEMU's memfd
      expect(copiedUpdates).toBe(0);
    }
    const again = await grab(rig);
    expect(colorDistance(meanColor(again, { x: rx + (gw / 4) * s - 12, y: ry + (gh / 4) * s - 12, w: 24, h: 24 }), RED)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(meanColor(again, { x: rx + ((3 * gw) / 4) * s - 12, y: ry + ((3 * gh) / 4) * s - 12, w: 24, h: 24 }), WHITE)).toBeLessThanOrEqual(TOL);
    console.log(`[camera-guest ${version}] after restart: sizes ${l.sizes.join(' -> ')}; Scanouts ${l.scanoutSizes.join(', ')}; UpdateMaps ${l.mapUpdates}`);
  });
});

describe('guest screen -> PipeWire camera (QEMU 7.2, TCG)', () => {
  it('text mode: 720x400 from Updates and the Console size (no Scanout for it), text line visible at the top left', async () => {
    rig = await startRig('text');
    await rig.guest.waitForSerial(/MARK text-ready/, 180_000);
    const l = rig.listener;
    await waitFor('720x400 picture', 60_000, () => l.fb.width === 720 && l.fb.height === 400).catch((e: Error) => {
      throw new Error(`${e.message}; sizes ${l.sizes.join(' -> ')}; Scanouts ${l.scanoutSizes.join(', ')}`);
    });
    // light grey glyph pixels in the first text row (y 0..15, the line spans ~55 columns of 9 px)
    const rowHasText = () => {
      const p = l.picture();
      if (!p || p.width !== 720) return 0;
      let lit = 0;
      for (let y = 0; y < 16; y++) for (let x = 0; x < 55 * 9; x++) if ((rgb24(p, x, y) & 0xff) > 0x80) lit++;
      return lit;
    };
    await waitFor('text line in the framebuffer', 60_000, () => rowHasText() > 200);
    expect(l.sizes).toContain('720x400');
    // what makes this path matter: QEMU 7.2 sent no Scanout of the text-mode size
    expect(l.scanoutSizes).not.toContain('720x400');

    // --camera-pin-resolution on std VGA: QEMU 7.2 answers Error.Unsupported, we say what to use
    const lines: string[] = [];
    expect(await pinGuestResolution(rig.vm.console().proxy, 1280, 720, lineLogger((x) => lines.push(x)))).toBe(false);
    expect(lines).toEqual([expect.stringMatching(/SetUIInfo unsupported.*virtio-vga/)]);

    const img = await grab(rig, 'I420');
    const [rx, ry, rw, rh] = letterbox(720, 400, 1280, 720);
    expect([rx, ry, rw, rh]).toEqual([0, 4, 1280, 712]);
    const s = rw / 720;
    // the text row in the camera frame has the same mean colour as in the guest's picture
    // (glyph pixels averaged with the black between them), and that is clearly not black
    const guestMean = { r: 0, g: 0, b: 0 };
    const tw = 55 * 9;
    const pic = l.picture()!;
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < tw; x++) {
        const c = rgb24(pic, x, y);
        guestMean.r += (c >> 16) / (16 * tw);
        guestMean.g += ((c >> 8) & 0xff) / (16 * tw);
        guestMean.b += (c & 0xff) / (16 * tw);
      }
    expect(guestMean.r).toBeGreaterThan(10);
    const textRow = meanColor(img, { x: rx, y: ry, w: tw * s, h: 16 * s });
    expect(colorDistance(textRow, guestMean)).toBeLessThanOrEqual(8);
    expect(colorDistance(meanColor(img, { x: 100, y: ry + 100 * s, w: 1000, h: 200 * s }), BLACK)).toBeLessThanOrEqual(TOL);
    expect(colorDistance(meanColor(img, { x: 1000, y: ry, w: 200, h: 16 * s }), BLACK)).toBeLessThanOrEqual(TOL);
  });
});
