// Test helpers for camera frames: a reference pixman encoder (built from the format code's bit
// fields, independent of libyuv) and a BT.601 limited-range YUV reader for YUY2/I420/NV12.
import type { CameraPixelFormat } from '../../src/camera/sinks/types';

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** Channel widths and order of a pixman code: bits from most to least significant. */
export function pixmanLayout(code: number): { bpp: number; order: ('a' | 'r' | 'g' | 'b')[]; bits: Record<'a' | 'r' | 'g' | 'b', number> } {
  const bpp = (code >>> 24) & 0xff;
  const type = (code >>> 16) & 0xff;
  const bits = { a: (code >>> 12) & 0xf, r: (code >>> 8) & 0xf, g: (code >>> 4) & 0xf, b: code & 0xf };
  // pixman_format_code: for the 10-bit formats the nibbles are 0xa; for PIXMAN_TYPE_ARGB the channels
  // sit from the top as A R G B; ABGR: A B G R; BGRA: B G R A; RGBA: R G B A (alpha at the bottom).
  const order: ('a' | 'r' | 'g' | 'b')[] =
    type === 2 ? ['a', 'r', 'g', 'b'] : type === 3 ? ['a', 'b', 'g', 'r'] : type === 8 ? ['b', 'g', 'r', 'a'] : type === 9 ? ['r', 'g', 'b', 'a'] : [];
  if (!order.length) throw new Error(`no reference layout for pixman type ${type}`);
  return { bpp, order, bits };
}

/** Encodes 8-bit RGB pixels (row-major) into the pixman format, rows padded to `stride`. */
export function encodePixman(code: number, width: number, height: number, px: (x: number, y: number) => Rgb, stride?: number): { data: Buffer; stride: number } {
  const { bpp, order, bits } = pixmanLayout(code);
  const bytes = bpp / 8;
  const s = stride ?? width * bytes;
  const data = Buffer.alloc(s * height, 0xee); // padding garbage must not show
  if (code === 0x20020888) {
    // fast path for the common format (B, G, R, X bytes): big test pictures are 4K
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const c = px(x, y);
        const i = y * s + x * 4;
        data[i] = c.b;
        data[i + 1] = c.g;
        data[i + 2] = c.r;
        data[i + 3] = 0xff;
      }
    return { data, stride: s };
  }
  const used = bits.a + bits.r + bits.g + bits.b;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const c = px(x, y);
      const val: Record<string, number> = { a: 255, r: c.r, g: c.g, b: c.b };
      let word = 0n;
      // channels start from the top of the `used` bits (x-padding is above them for ARGB/ABGR,
      // below them for BGRA/RGBA)
      let shift = type32(code) === 'top' ? used : bpp;
      for (const ch of order) {
        const n = bits[ch];
        if (n === 0) continue;
        shift -= n;
        const q = n <= 8 ? val[ch] >> (8 - n) : (val[ch] << (n - 8)) | (val[ch] >> (16 - n));
        word |= BigInt(q) << BigInt(shift);
      }
      for (let k = 0; k < bytes; k++) data[y * s + x * bytes + k] = Number((word >> BigInt(8 * k)) & 0xffn);
    }
  return { data, stride: s };
}

// ARGB/ABGR types pack channels at the bottom (padding on top); BGRA/RGBA at the top.
function type32(code: number): 'top' | 'bottom' {
  const type = (code >>> 16) & 0xff;
  return type === 2 || type === 3 ? 'top' : 'bottom';
}

/** Quantisation step of the coarsest colour channel (for tolerances). */
export function quantStep(code: number): number {
  const { bits } = pixmanLayout(code);
  const n = Math.min(bits.r, bits.g, bits.b);
  return n >= 8 ? 1 : 1 << (8 - n);
}

/** Reads the ARGB framebuffer pixel at (x, y). */
export function argbAt(fb: Uint8Array, stride: number, x: number, y: number): Rgb {
  const i = y * stride + x * 4;
  return { r: fb[i + 2], g: fb[i + 1], b: fb[i] };
}

/** Y, U, V of the camera frame at (x, y). */
export function yuvAt(frame: Uint8Array, format: CameraPixelFormat, w: number, h: number, x: number, y: number): { y: number; u: number; v: number } {
  if (format === 'YUY2') {
    const base = y * w * 2 + (x & ~1) * 2;
    return { y: frame[y * w * 2 + x * 2], u: frame[base + 1], v: frame[base + 3] };
  }
  const ysize = w * h;
  const cx = x >> 1;
  const cy = y >> 1;
  if (format === 'I420') {
    const cw = w / 2;
    return { y: frame[y * w + x], u: frame[ysize + cy * cw + cx], v: frame[ysize + ysize / 4 + cy * cw + cx] };
  }
  return { y: frame[y * w + x], u: frame[ysize + cy * w + cx * 2], v: frame[ysize + cy * w + cx * 2 + 1] };
}

/** BT.601 limited range -> RGB. */
export function yuvToRgb(p: { y: number; u: number; v: number }): Rgb {
  const c = 1.164 * (p.y - 16);
  const d = p.u - 128;
  const e = p.v - 128;
  const clamp = (n: number) => Math.max(0, Math.min(255, Math.round(n)));
  return { r: clamp(c + 1.596 * e), g: clamp(c - 0.392 * d - 0.813 * e), b: clamp(c + 2.017 * d) };
}

export function rgbAtFrame(frame: Uint8Array, format: CameraPixelFormat, w: number, h: number, x: number, y: number): Rgb {
  return yuvToRgb(yuvAt(frame, format, w, h, x, y));
}

export function dist(a: Rgb, b: Rgb): number {
  return Math.max(Math.abs(a.r - b.r), Math.abs(a.g - b.g), Math.abs(a.b - b.b));
}
