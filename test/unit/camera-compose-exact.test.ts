// yuvCompose reads the guest picture in place and composes the cursor only over the rectangle it
// covers (re-converting, or re-scaling, that spot from a blended copy). The reference here is the
// way it used to be done: blend the cursor into a copy of the whole picture, then compose that
// copy with no cursor. Every byte of the camera frame must be the same, for all three formats,
// unscaled, letterboxed and scaled both ways, with the cursor inside, at every edge and corner,
// partly and wholly outside, at odd coordinates, with opaque, transparent and translucent pixels.
import { describe, expect, it } from 'vitest';
import { letterbox } from '../../src/camera/letterbox';
import { clipBox, cursorWorkBytes, unionBox } from '../../src/camera/pipeline';
import { FORMAT_CODE, type CameraPixelFormat, frameBytes } from '../../src/camera/sinks/types';
import type { ComposeCursor } from '../../src/native-api/video';
import { native } from '../../src/native';

/** Deterministic pseudo-random bytes (xorshift32), so a failure replays. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b[i] = s & 0xff;
  }
  return b;
}

/** The cursor "over" operator as the addon's BlendCursor states it, applied to a whole copy. */
function blendInto(fb: Buffer, stride: number, fbW: number, fbH: number, c: ComposeCursor): void {
  for (let cy = 0; cy < c.height; cy++)
    for (let cx = 0; cx < c.width; cx++) {
      const x = c.x + cx;
      const y = c.y + cy;
      if (x < 0 || y < 0 || x >= fbW || y >= fbH) continue;
      const s = (cy * c.width + cx) * 4;
      const d = y * stride + x * 4;
      const a = c.data[s + 3];
      if (a === 0) continue;
      for (let k = 0; k < 3; k++) fb[d + k] = a === 255 ? c.data[s + k] : Math.floor((c.data[s + k] * a + fb[d + k] * (255 - a) + 127) / 255);
    }
}

/** 7x5 cursor: opaque, transparent and translucent pixels mixed. */
function cursorAt(x: number, y: number): ComposeCursor {
  const data = noise(7 * 5 * 4, 99);
  for (let i = 3; i < data.length; i += 4) data[i] = [0, 255, 128, 255, 1, 254][(i >> 2) % 6];
  return { data, width: 7, height: 5, x, y };
}

interface Case {
  fbW: number;
  fbH: number;
  camW: number;
  camH: number;
}

function composeBoth(c: Case, format: CameraPixelFormat, cursor: ComposeCursor): { got: Buffer; want: Buffer } {
  const stride = c.fbW * 4 + 12; // padded rows, as QEMU may send
  const fb = noise(stride * c.fbH, c.fbW * 31 + c.fbH);
  const fbCopy = Buffer.from(fb);
  const rect = letterbox(c.fbW, c.fbH, c.camW, c.camH);
  const scaled = rect[2] !== c.fbW || rect[3] !== c.fbH;
  const common = { fbStride: stride, fbWidth: c.fbW, fbHeight: c.fbH, camWidth: c.camW, camHeight: c.camH, rect, format: FORMAT_CODE[format] };
  // Stale bytes in the work buffers: anything read outside what the addon wrote shows up.
  const got = Buffer.alloc(frameBytes(format, c.camW, c.camH), 0x77);
  native.yuvCompose({
    ...common,
    fb,
    cursor,
    cursorWork: noise(cursorWorkBytes(scaled, c.fbW, c.fbH, cursor), 7),
    scratch: noise(c.camW * c.camH * 4, 8),
    out: got,
  });
  expect(fb.equals(fbCopy), 'the picture is only read').toBe(true);
  const blended = Buffer.from(fb);
  blendInto(blended, stride, c.fbW, c.fbH, cursor);
  const want = Buffer.alloc(frameBytes(format, c.camW, c.camH), 0x33);
  native.yuvCompose({ ...common, fb: blended, scratch: Buffer.alloc(c.camW * c.camH * 4), out: want });
  return { got, want };
}

/** Cursor corners to try: inside at odd and even spots, every edge and corner, outside. */
function cursorSpots(w: number, h: number): [number, number][] {
  return [
    [10, 7],
    [11, 8],
    [-3, -2],
    [w - 4, h - 3],
    [-6, h / 2],
    [w - 1, 3],
    [w / 2, -4],
    [5, h - 1],
    [w + 3, h + 3],
    [-7, -5],
  ].map(([x, y]) => [Math.floor(x), Math.floor(y)]);
}

const CASES: [string, Case][] = [
  ['unscaled', { fbW: 64, fbH: 48, camW: 64, camH: 48 }],
  ['unscaled with bars', { fbW: 64, fbH: 36, camW: 64, camH: 48 }],
  ['scaled down 1.5x (1080p -> 720p shape)', { fbW: 96, fbH: 54, camW: 64, camH: 36 }],
  ['scaled down, odd size, pillarbox', { fbW: 97, fbH: 61, camW: 64, camH: 48 }],
  ['scaled down 2x', { fbW: 128, fbH: 96, camW: 64, camH: 48 }],
  ['scaled down 2x, width no multiple of 16', { fbW: 108, fbH: 80, camW: 54, camH: 40 }],
  ['scaled down 3x', { fbW: 192, fbH: 144, camW: 64, camH: 48 }],
  ['scaled down 4x', { fbW: 256, fbH: 192, camW: 64, camH: 48 }],
  ['scaled down 2x across, 3x down (whole numbers, not the same)', { fbW: 128, fbH: 108, camW: 64, camH: 48 }],
  ['scaled up, letterbox', { fbW: 30, fbH: 14, camW: 64, camH: 48 }],
];

describe('yuvCompose: cursor over its rectangle only, byte for byte as blending a whole copy', () => {
  for (const [what, c] of CASES)
    for (const format of ['YUY2', 'I420', 'NV12'] as CameraPixelFormat[])
      it(`${what} ${c.fbW}x${c.fbH} -> ${c.camW}x${c.camH} ${format}`, () => {
        for (const [x, y] of cursorSpots(c.fbW, c.fbH)) {
          const { got, want } = composeBoth(c, format, cursorAt(x, y));
          const first = got.findIndex((v, i) => v !== want[i]);
          expect(first, `cursor at ${x},${y}: first differing byte`).toBe(-1);
        }
      });
});

describe('yuvCompose: picture and bars', () => {
  const cases: [string, number, number, number[]][] = [
    ['scaled up, pillarbox', 40, 40, [8, 0, 48, 48]],
    ['unscaled, letterbox (converted in one pass)', 64, 36, [0, 6, 64, 36]],
  ];
  for (const [what, fbW, fbH, wantRect] of cases)
    for (const format of ['YUY2', 'I420', 'NV12'] as CameraPixelFormat[])
      it(`${what} ${format}: every bar byte is black, the picture fills its rectangle`, () => {
        const camW = 64;
        const camH = 48;
        const fb = Buffer.alloc(fbW * fbH * 4, 0xff); // white
        const out = Buffer.alloc(frameBytes(format, camW, camH), 0x55);
        const rect = letterbox(fbW, fbH, camW, camH);
        expect(rect).toEqual(wantRect);
        native.yuvCompose({ fb, fbStride: fbW * 4, fbWidth: fbW, fbHeight: fbH, camWidth: camW, camHeight: camH, rect, format: FORMAT_CODE[format], scratch: Buffer.alloc(camW * camH * 4), out });
        const [rx, ry, rw, rh] = rect;
        const lumaAt = (x: number, y: number) => (format === 'YUY2' ? out[(y * camW + x) * 2] : out[y * camW + x]);
        for (let y = 0; y < camH; y++)
          for (let x = 0; x < camW; x++) {
            const inside = x >= rx && x < rx + rw && y >= ry && y < ry + rh;
            // white is 235; bilinear up-scaling takes a little off at the picture's edge
            if (inside) expect(lumaAt(x, y), `luma at ${x},${y}`).toBeGreaterThan(220);
            else expect(lumaAt(x, y), `bar luma at ${x},${y}`).toBe(16);
          }
        // chroma: neutral everywhere (white and black are both grey)
        if (format === 'YUY2') for (let i = 1; i < out.length; i += 2) expect(out[i]).toBe(128);
        else for (let i = camW * camH; i < out.length; i++) expect(out[i]).toBe(128);
      });
});

describe('yuvCompose with damage: converting only the changed part gives the whole frame, byte for byte', () => {
  for (const [what, c] of CASES)
    for (const format of ['YUY2', 'I420', 'NV12'] as CameraPixelFormat[])
      it(`${what} ${c.fbW}x${c.fbH} -> ${c.camW}x${c.camH} ${format}`, () => {
        const stride = c.fbW * 4 + 12;
        const fb = noise(stride * c.fbH, 3);
        const rect = letterbox(c.fbW, c.fbH, c.camW, c.camH);
        const scaled = rect[2] !== c.fbW || rect[3] !== c.fbH;
        const common = { fb, fbStride: stride, fbWidth: c.fbW, fbHeight: c.fbH, camWidth: c.camW, camHeight: c.camH, rect, format: FORMAT_CODE[format], scratch: Buffer.alloc(c.camW * c.camH * 4) };
        const work = Buffer.alloc(c.fbW * c.fbH * 4 + 4096);
        const out = Buffer.alloc(frameBytes(format, c.camW, c.camH));
        let cursor = cursorAt(3, 4);
        native.yuvCompose({ ...common, cursor, cursorWork: work, out });
        const changes: [number, number, number, number][] = [
          [5, 3, 7, 4],
          [0, 0, c.fbW, 2],
          [c.fbW - 3, c.fbH - 5, 10, 10], // partly outside the picture
          [11, 9, 0, 0], // nothing: the cursor alone moves
          [1, c.fbH / 2, 1, 1],
        ].map((r) => r.map(Math.floor) as [number, number, number, number]);
        for (const [k, d] of changes.entries()) {
          const fill = noise(stride * c.fbH, 40 + k);
          for (let y = d[1]; y < Math.min(c.fbH, d[1] + d[3]); y++) fill.copy(fb, y * stride + d[0] * 4, y * stride + d[0] * 4, y * stride + Math.min(c.fbW, d[0] + d[2]) * 4);
          const moved = cursorAt(c.fbW - 9 - 7 * k, 2 + 5 * k);
          native.yuvCompose({ ...common, cursor: moved, cursorWork: work, out, damage: unionBox(d, clipBox(cursor.x, cursor.y, cursor.width, cursor.height, c.fbW, c.fbH)) });
          cursor = moved;
          const whole = Buffer.alloc(out.length, 0x11);
          native.yuvCompose({ ...common, cursor, cursorWork: Buffer.alloc(cursorWorkBytes(scaled, c.fbW, c.fbH, cursor)), out: whole });
          expect(out.findIndex((v, i) => v !== whole[i]), `change ${k} ${JSON.stringify(d)}: first differing byte`).toBe(-1);
        }
      });
});
