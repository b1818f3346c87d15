// Conversion through the real addon (libyuv): every pixman format QEMU may send into the ARGB
// framebuffer, odd guest sizes into the even camera frame (letterbox, bars), all three camera
// formats, the cursor at the edges, the display-off picture.
import { describe, expect, it } from 'vitest';
import { Framebuffer } from '../../src/camera/framebuffer';
import { letterbox } from '../../src/camera/letterbox';
import { CameraConsoleListener } from '../../src/camera/listener';
import { PIXMAN_FORMATS } from '../../src/camera/pixman';
import { CameraPipeline } from '../../src/camera/pipeline';
import { FakeSink } from '../fakes/camera-sink';
import { CameraPixelFormat, frameBytes } from '../../src/camera/sinks/types';
import { DISPLAY_OFF_BACKGROUND, DISPLAY_OFF_HEIGHT, DISPLAY_OFF_TEXT, DISPLAY_OFF_WIDTH, displayOffTextBox } from '../../src/camera/display-off';
import { native } from '../../src/native';
import { Rgb, argbAt, dist, encodePixman, quantStep, rgbAtFrame } from '../harness/yuv';
import { silentLogger } from '../../src/log';
import { lineLogger } from '../fakes/logger';

const X8R8G8B8 = 0x20020888;
const RED: Rgb = { r: 255, g: 0, b: 0 };
const GREEN: Rgb = { r: 0, g: 255, b: 0 };
const BLUE: Rgb = { r: 0, g: 0, b: 255 };
const WHITE: Rgb = { r: 255, g: 255, b: 255 };
const BLACK: Rgb = { r: 0, g: 0, b: 0 };
// BT.601 limited range through 8-bit YUV and our float reader: a few units of rounding.
const YUV_TOL = 6;

/** Four quadrants: red, green / blue, white. */
const quadrants = (w: number, h: number) => (x: number, y: number): Rgb => (y < h / 2 ? (x < w / 2 ? RED : GREEN) : x < w / 2 ? BLUE : WHITE);

function compose(listener: CameraConsoleListener, camW: number, camH: number, format: CameraPixelFormat): Buffer {
  const sink = new FakeSink({ width: camW, height: camH, fps: 30, format });
  const p = new CameraPipeline({ source: listener, sink, log: silentLogger });
  p.tick();
  expect(sink.frames).toHaveLength(1);
  expect(sink.frames[0].data.length).toBe(frameBytes(format, camW, camH));
  return sink.frames[0].data;
}

describe('pixman formats -> ARGB framebuffer', () => {
  const colours: Rgb[] = [RED, GREEN, BLUE, WHITE, BLACK, { r: 200, g: 100, b: 40 }, { r: 17, g: 130, b: 250 }];
  for (const fmt of PIXMAN_FORMATS.values()) {
    it(`${fmt.name} (0x${fmt.code.toString(16)}), odd width, padded stride`, () => {
      const w = 7;
      const h = 3;
      const px = (x: number, y: number) => colours[(x + y * w) % colours.length];
      const { data, stride } = encodePixman(fmt.code, w, h, px, w * fmt.bytesPerPixel + 5);
      const fb = new Framebuffer();
      fb.resize(w, h);
      fb.blit(0, 0, w, h, stride, fmt.code, data);
      const tol = quantStep(fmt.code);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const got = argbAt(fb.data, fb.stride, x, y);
          expect(dist(got, px(x, y)), `${fmt.name} pixel ${x},${y}: ${JSON.stringify(got)} vs ${JSON.stringify(px(x, y))}`).toBeLessThan(tol);
        }
    });
  }

  it('rejects formats it does not convert with a clear error', () => {
    const fb = new Framebuffer();
    fb.resize(4, 4);
    // PIXMAN_a8 (8 bpp alpha only) and PIXMAN_yuy2
    for (const code of [0x08018000, 0x10060000]) {
      let err: (Error & { code?: string }) | undefined;
      try {
        fb.blit(0, 0, 4, 4, 16, code, Buffer.alloc(64));
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.code).toBe('EPIXMANFORMAT');
      expect(err?.message).toMatch(/pixman format 0x[0-9a-f]{8}.*supported: 32-bpp/);
    }
  });

  it('the addon refuses data shorter than the rectangle instead of reading past it', () => {
    const dst = Buffer.alloc(16 * 16 * 4);
    expect(() => native.yuvBlit(Buffer.alloc(10), 64, X8R8G8B8, 16, 16, dst, 64, 0, 0)).toThrow(/too short/);
    expect(() => native.yuvBlit(Buffer.alloc(64 * 16), 64, X8R8G8B8, 16, 16, dst, 64, 1, 0)).toThrow(/does not fit/);
  });

  it("the listener's refused format is a warning, its line without a part prefix (the service tags the component)", () => {
    const entries: string[] = [];
    const l = new CameraConsoleListener({ log: lineLogger((s, level) => entries.push(`${level} ${s}`)) });
    l.update(0, 0, 4, 4, 4, 0x08018000, Buffer.alloc(16));
    expect(entries).toEqual([expect.stringMatching(/^warn guest display uses pixman format 0x08018000, which is not supported/)]);
  });

  it('the listener logs a refused format once and keeps the last good picture', () => {
    const lines: string[] = [];
    const l = new CameraConsoleListener({ log: lineLogger((s) => lines.push(s)) });
    const good = encodePixman(X8R8G8B8, 4, 4, () => RED);
    l.scanout(4, 4, good.stride, X8R8G8B8, good.data);
    for (let i = 0; i < 3; i++) l.update(0, 0, 4, 4, 4, 0x08018000, Buffer.alloc(16));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/pixman format 0x08018000, which is not supported/);
    const pic = l.picture()!;
    expect(argbAt(pic.data, pic.stride, 1, 1)).toEqual(RED);
  });
});

describe('letterbox geometry', () => {
  it.each([
    [1280, 720, [0, 0, 1280, 720]],
    [1366, 768, [0, 0, 1280, 720]],
    [720, 400, [0, 4, 1280, 712]],
    [640, 480, [160, 0, 960, 720]],
    [1280, 800, [64, 0, 1152, 720]],
    [1, 1, [280, 0, 720, 720]],
    [4096, 2160, [0, 22, 1280, 676]],
    [1920, 1080, [0, 0, 1280, 720]],
  ])('%ix%i in 1280x720 -> %j', (w, h, rect) => {
    expect(letterbox(w, h, 1280, 720)).toEqual(rect);
  });

  it('keeps every offset and size even and inside the frame', () => {
    for (const [w, h] of [[1, 1], [3, 1000], [1000, 3], [1366, 768], [799, 601], [8191, 17]]) {
      for (const [cw, ch] of [[1280, 720], [640, 480], [48, 32], [1920, 1080]]) {
        const [x, y, rw, rh] = letterbox(w, h, cw, ch);
        for (const v of [x, y, rw, rh]) expect(v % 2).toBe(0);
        expect(x + rw).toBeLessThanOrEqual(cw);
        expect(y + rh).toBeLessThanOrEqual(ch);
        expect(rw).toBeGreaterThan(0);
        expect(rh).toBeGreaterThan(0);
      }
    }
  });
});

describe('guest picture -> camera frame', () => {
  const formats: CameraPixelFormat[] = ['YUY2', 'I420', 'NV12'];
  const cases: [number, number][] = [
    [1, 1],
    [1366, 768],
    [720, 400],
    [4096, 2160],
    [1280, 720],
  ];
  for (const [gw, gh] of cases)
    for (const format of formats) {
      it(`${gw}x${gh} -> 1280x720 ${format}: quadrants where the letterbox puts them, black bars`, () => {
        const l = new CameraConsoleListener({ log: silentLogger });
        const src = encodePixman(X8R8G8B8, gw, gh, gw === 1 ? () => GREEN : quadrants(gw, gh));
        l.scanout(gw, gh, src.stride, X8R8G8B8, src.data);
        const frame = compose(l, 1280, 720, format);
        const [rx, ry, rw, rh] = letterbox(gw, gh, 1280, 720);
        const at = (fx: number, fy: number) => rgbAtFrame(frame, format, 1280, 720, Math.floor(rx + fx * rw), Math.floor(ry + fy * rh));
        if (gw === 1) {
          expect(dist(at(0.5, 0.5), GREEN)).toBeLessThanOrEqual(YUV_TOL);
        } else {
          expect(dist(at(0.25, 0.25), RED)).toBeLessThanOrEqual(YUV_TOL);
          expect(dist(at(0.75, 0.25), GREEN)).toBeLessThanOrEqual(YUV_TOL);
          expect(dist(at(0.25, 0.75), BLUE)).toBeLessThanOrEqual(YUV_TOL);
          expect(dist(at(0.75, 0.75), WHITE)).toBeLessThanOrEqual(YUV_TOL);
        }
        // bars (if any) are black
        if (rx > 0) expect(dist(rgbAtFrame(frame, format, 1280, 720, rx >> 1, 360), BLACK)).toBeLessThanOrEqual(YUV_TOL);
        if (ry > 0) expect(dist(rgbAtFrame(frame, format, 1280, 720, 640, ry >> 1), BLACK)).toBeLessThanOrEqual(YUV_TOL);
      });
    }

  it('a camera the size of the guest is converted without scaling (exact quadrant edges)', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(X8R8G8B8, 640, 480, quadrants(640, 480));
    l.scanout(640, 480, src.stride, X8R8G8B8, src.data);
    const frame = compose(l, 640, 480, 'I420');
    expect(dist(rgbAtFrame(frame, 'I420', 640, 480, 318, 238), RED)).toBeLessThanOrEqual(YUV_TOL);
    expect(dist(rgbAtFrame(frame, 'I420', 640, 480, 322, 238), GREEN)).toBeLessThanOrEqual(YUV_TOL);
  });

  it('before the first frame the camera shows black', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const frame = compose(l, 64, 48, 'YUY2');
    expect(frame.subarray(0, 8)).toEqual(Buffer.from([16, 128, 16, 128, 16, 128, 16, 128]));
  });
});

describe('cursor', () => {
  const fbW = 200;
  const fbH = 100;
  const setup = () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(X8R8G8B8, fbW, fbH, () => BLUE);
    l.scanout(fbW, fbH, src.stride, X8R8G8B8, src.data);
    // 16x16 cursor: opaque red, except a transparent right half; hotspot (2, 3)
    const cur = Buffer.alloc(16 * 16 * 4);
    for (let y = 0; y < 16; y++)
      for (let x = 0; x < 16; x++) {
        const i = (y * 16 + x) * 4;
        cur[i + 2] = 255;
        cur[i + 3] = x < 8 ? 255 : 0;
      }
    l.cursorDefine({ width: 16, height: 16, hotX: 2, hotY: 3, data: cur });
    return l;
  };

  it.each([
    ['inside', 100, 50],
    ['top-left corner, partly outside', 0, 0],
    ['bottom-right corner, partly outside', fbW - 1, fbH - 1],
    ['left edge', -5, 40],
    ['fully outside', 500, 500],
  ])('%s (%i,%i): composited into the frame, the guest picture left untouched', (_what, mx, my) => {
    const l = setup();
    const picture = l.picture()!.data;
    const pictureBefore = Buffer.from(picture);
    l.mouseSet(mx, my, true);
    const frame = compose(l, fbW, fbH, 'YUY2');
    expect(Buffer.from(picture).equals(pictureBefore)).toBe(true);
    const x0 = mx - 2;
    const y0 = my - 3;
    // an opaque cursor pixel inside the frame is red; a transparent one shows the blue below
    for (const [cx, cy, want] of [
      [1, 1, RED],
      [6, 12, RED],
      [12, 8, BLUE],
    ] as [number, number, Rgb][]) {
      const x = x0 + cx;
      const y = y0 + cy;
      if (x < 0 || y < 0 || x >= fbW || y >= fbH) continue;
      // YUY2 shares chroma per pixel pair: sample pairs fully inside one area
      if (cx === 7 || cx === 8) continue;
      expect(dist(rgbAtFrame(frame, 'YUY2', fbW, fbH, x & ~1, y), want), `cursor pixel ${cx},${cy} at ${x},${y}`).toBeLessThanOrEqual(YUV_TOL);
    }
    if (mx === 500) expect(dist(rgbAtFrame(frame, 'YUY2', fbW, fbH, 10, 10), BLUE)).toBeLessThanOrEqual(YUV_TOL);
  });

  it('hidden cursor and --no-camera-cursor draw nothing', () => {
    const l = setup();
    l.mouseSet(100, 50, false);
    let frame = compose(l, fbW, fbH, 'YUY2');
    expect(dist(rgbAtFrame(frame, 'YUY2', fbW, fbH, 100, 50), BLUE)).toBeLessThanOrEqual(YUV_TOL);
    const off = new CameraConsoleListener({ cursor: false, log: silentLogger });
    const src = encodePixman(X8R8G8B8, fbW, fbH, () => BLUE);
    off.scanout(fbW, fbH, src.stride, X8R8G8B8, src.data);
    off.cursorDefine({ width: 1, height: 1, hotX: 0, hotY: 0, data: Buffer.from([0, 0, 255, 255]) });
    off.mouseSet(10, 10, true);
    frame = compose(off, fbW, fbH, 'YUY2');
    expect(dist(rgbAtFrame(frame, 'YUY2', fbW, fbH, 10, 10), BLUE)).toBeLessThanOrEqual(YUV_TOL);
  });
});

describe('display states', () => {
  it('Disable shows the DISPLAY OFF picture, not the last frame; the next Scanout ends it', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(X8R8G8B8, 640, 360, () => GREEN);
    l.scanout(640, 360, src.stride, X8R8G8B8, src.data);
    l.disable();
    const frame = compose(l, DISPLAY_OFF_WIDTH, DISPLAY_OFF_HEIGHT, 'I420');
    const bg = { r: (DISPLAY_OFF_BACKGROUND >> 16) & 0xff, g: (DISPLAY_OFF_BACKGROUND >> 8) & 0xff, b: DISPLAY_OFF_BACKGROUND & 0xff };
    const fg = { r: (DISPLAY_OFF_TEXT >> 16) & 0xff, g: (DISPLAY_OFF_TEXT >> 8) & 0xff, b: DISPLAY_OFF_TEXT & 0xff };
    expect(dist(rgbAtFrame(frame, 'I420', 640, 360, 20, 20), bg)).toBeLessThanOrEqual(YUV_TOL);
    const [tx, ty] = displayOffTextBox();
    // first column of the "D" is solid text colour
    expect(dist(rgbAtFrame(frame, 'I420', 640, 360, tx + 4, ty + 28), fg)).toBeLessThanOrEqual(YUV_TOL);
    l.scanout(640, 360, src.stride, X8R8G8B8, src.data);
    const again = compose(l, 640, 360, 'I420');
    expect(dist(rgbAtFrame(again, 'I420', 640, 360, tx + 4, ty + 28), GREEN)).toBeLessThanOrEqual(YUV_TOL);
  });

  it('VGA text mode on QEMU 7.2: Console size 720x400 and Updates, no Scanout', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const boot = encodePixman(X8R8G8B8, 640, 480, () => BLUE);
    l.scanout(640, 480, boot.stride, X8R8G8B8, boot.data);
    l.consoleSize(720, 400);
    expect([l.fb.width, l.fb.height]).toEqual([720, 400]);
    const row = encodePixman(X8R8G8B8, 720, 16, () => WHITE);
    l.update(0, 384, 720, 16, row.stride, X8R8G8B8, row.data);
    expect(argbAt(l.fb.data, l.fb.stride, 719, 399)).toEqual(WHITE);
    expect(argbAt(l.fb.data, l.fb.stride, 10, 10)).toEqual(BLUE);
  });

  it('an Update outside the last Scanout grows the picture (Width/Height not seen yet)', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const boot = encodePixman(X8R8G8B8, 640, 480, () => BLUE);
    l.scanout(640, 480, boot.stride, X8R8G8B8, boot.data);
    const row = encodePixman(X8R8G8B8, 720, 16, () => RED);
    l.update(0, 0, 720, 16, row.stride, X8R8G8B8, row.data);
    expect([l.fb.width, l.fb.height]).toEqual([720, 480]);
    expect(argbAt(l.fb.data, l.fb.stride, 700, 5)).toEqual(RED);
    expect(argbAt(l.fb.data, l.fb.stride, 100, 100)).toEqual(BLUE);
    l.consoleSize(720, 400); // arrives late: shrinks to the real size, keeps the picture
    expect([l.fb.width, l.fb.height]).toEqual([720, 400]);
    expect(argbAt(l.fb.data, l.fb.stride, 700, 5)).toEqual(RED);
  });

  it('gl=on (ScanoutDMABUF) is reported once', () => {
    const lines: string[] = [];
    const l = new CameraConsoleListener({ log: lineLogger((s) => lines.push(s)) });
    l.scanoutDmabuf();
    l.scanoutDmabuf();
    expect(lines).toEqual([expect.stringMatching(/gl=on is not supported yet/)]);
  });
});

describe('mode change races (Console size vs listener messages on two connections)', () => {
  it('a stale Scanout after the Console size: text-mode Updates take the Console size, not max-growth', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    l.consoleSize(720, 400);
    const boot = encodePixman(X8R8G8B8, 640, 480, () => BLUE);
    l.scanout(640, 480, boot.stride, X8R8G8B8, boot.data); // registration Scanout of the old surface
    const row = encodePixman(X8R8G8B8, 720, 16, () => WHITE);
    l.update(0, 0, 720, 16, row.stride, X8R8G8B8, row.data);
    expect([l.fb.width, l.fb.height]).toEqual([720, 400]);
    expect(argbAt(l.fb.data, l.fb.stride, 700, 3)).toEqual(WHITE);
  });
});

describe('absurd input from the peer', () => {
  it('an Update far outside any sane size is dropped with one log line, not allocated', () => {
    const lines: string[] = [];
    const l = new CameraConsoleListener({ log: lineLogger((s) => lines.push(s)) });
    const px = encodePixman(X8R8G8B8, 4, 4, () => RED);
    l.scanout(4, 4, px.stride, X8R8G8B8, px.data);
    for (let i = 0; i < 3; i++) l.update(16380, 100, 8, 4, 32, X8R8G8B8, Buffer.alloc(8 * 4 * 4));
    expect([l.fb.width, l.fb.height]).toEqual([4, 4]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/dropped an Update: update at 16380,100 size 8x4 lies beyond 16384x16384/);
  });

  it('an Update whose data is shorter than its rectangle is dropped (addon bounds check)', () => {
    const lines: string[] = [];
    const l = new CameraConsoleListener({ log: lineLogger((s) => lines.push(s)) });
    const px = encodePixman(X8R8G8B8, 4, 4, () => RED);
    l.scanout(4, 4, px.stride, X8R8G8B8, px.data);
    const v = l.version;
    l.update(0, 0, 4, 4, 16, X8R8G8B8, Buffer.alloc(20));
    expect(l.version).toBe(v);
    expect(lines[0]).toMatch(/too short/);
  });
});

describe('yuvCompose argument checks', () => {
  it('a bad argument throws; the framebuffer is never written (it may be QEMU\'s own bytes)', () => {
    const fb = Buffer.alloc(100 * 50 * 4, 0x33);
    const before = Buffer.from(fb);
    const cursor = { data: Buffer.alloc(8 * 8 * 4, 0xff), width: 8, height: 8, x: 10, y: 10 };
    const base = { fb, fbStride: 400, fbWidth: 100, fbHeight: 50, cursor, cursorWork: Buffer.alloc(100 * 50 * 4), camWidth: 64, camHeight: 48, rect: [0, 8, 64, 32] as [number, number, number, number], format: 0 as const, out: Buffer.alloc(64 * 48 * 2) };
    expect(() => native.yuvCompose({ ...base, scratch: Buffer.alloc(10) })).toThrow(/scratch buffer too small/);
    expect(() => native.yuvCompose({ ...base, scratch: Buffer.alloc(64 * 48 * 4), cursorWork: Buffer.alloc(4) })).toThrow(/cursorWork/);
    expect(() => native.yuvCompose({ ...base, scratch: Buffer.alloc(64 * 48 * 4), out: Buffer.alloc(10) })).toThrow(/out buffer too small/);
    expect(() => native.yuvCompose({ ...base, scratch: Buffer.alloc(64 * 48 * 4), camWidth: 63 })).toThrow(/even/);
    expect(() => native.yuvCompose({ ...base, scratch: Buffer.alloc(64 * 48 * 4), rect: [0, 0, 65, 48] })).toThrow(/letterbox rectangle/);
    expect(fb.equals(before)).toBe(true);
    native.yuvCompose({ ...base, scratch: Buffer.alloc(64 * 48 * 4) });
    expect(fb.equals(before)).toBe(true);
  });
});

describe('a Scanout in the picture layout is kept, not copied', () => {
  it('an x8r8g8b8 Scanout is shown from its own bytes, padded stride and all', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(X8R8G8B8, 6, 4, () => GREEN, 6 * 4 + 8);
    l.scanout(6, 4, src.stride, X8R8G8B8, src.data);
    const pic = l.picture()!;
    expect(pic.data).toBe(src.data);
    expect([pic.width, pic.height, pic.stride]).toEqual([6, 4, 6 * 4 + 8]);
    expect(dist(rgbAtFrame(compose(l, 6, 4, 'YUY2'), 'YUY2', 6, 4, 2, 2), GREEN)).toBeLessThanOrEqual(YUV_TOL);
  });

  it('an Update after it is drawn over a copy: the picture has both, the Scanout bytes stay as QEMU sent them', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(X8R8G8B8, 8, 4, () => BLUE, 8 * 4 + 4);
    const sent = Buffer.from(src.data);
    l.scanout(8, 4, src.stride, X8R8G8B8, src.data);
    const red = encodePixman(X8R8G8B8, 2, 2, () => RED);
    l.update(4, 2, 2, 2, red.stride, X8R8G8B8, red.data);
    const pic = l.picture()!;
    expect(pic.data).toBe(l.fb.data);
    expect(argbAt(pic.data, pic.stride, 4, 2)).toEqual(RED);
    expect(argbAt(pic.data, pic.stride, 1, 1)).toEqual(BLUE);
    expect(src.data.equals(sent)).toBe(true);
  });

  it('a Scanout whose data is shorter than its rows is dropped with one line; the last picture stays', () => {
    const lines: string[] = [];
    const l = new CameraConsoleListener({ log: lineLogger((x) => lines.push(x)) });
    const good = encodePixman(X8R8G8B8, 4, 4, () => RED);
    l.scanout(4, 4, good.stride, X8R8G8B8, good.data);
    const v = l.version;
    for (let i = 0; i < 2; i++) l.scanout(4, 4, 16, X8R8G8B8, Buffer.alloc(20));
    expect(l.version).toBe(v);
    expect(lines).toEqual([expect.stringMatching(/dropped a Scanout: update data too short: 20 bytes for 4x4 at stride 16/)]);
    expect(l.picture()!.data).toBe(good.data);
  });

  it('a Scanout in another format is converted into the framebuffer', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const r5g6b5 = 0x10020565;
    const src = encodePixman(r5g6b5, 4, 2, () => RED);
    l.scanout(4, 2, src.stride, r5g6b5, src.data);
    const pic = l.picture()!;
    expect(pic.data).toBe(l.fb.data);
    expect(argbAt(pic.data, pic.stride, 3, 1)).toEqual(RED);
  });

  it('a new Console size keeps the kept picture where it overlaps', () => {
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(X8R8G8B8, 8, 4, () => WHITE);
    l.scanout(8, 4, src.stride, X8R8G8B8, src.data);
    l.consoleSize(10, 6);
    const pic = l.picture()!;
    expect([pic.width, pic.height]).toEqual([10, 6]);
    expect(argbAt(pic.data, pic.stride, 7, 3)).toEqual(WHITE);
    expect(argbAt(pic.data, pic.stride, 9, 5)).toEqual(BLACK);
  });
});
