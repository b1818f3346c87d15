// The guest picture as the bridge keeps it: one ARGB buffer (B,G,R,A in memory, alpha ignored)
// in native memory (a Buffer, never a JS array), stride = width*4. Reallocated only when the
// size changes; what overlaps the old picture is kept, because QEMU 7.2 switches to VGA text
// mode with no Scanout at all, only Console Width/Height and Updates for the new size.
import { native } from '../native';
import { MAX_DISPLAY_PIXELS, MAX_DISPLAY_SIDE } from '../qemu/limits';
import { CameraError } from './errors';
import { formatError, pixmanFormat } from './pixman';

/** Largest picture side we accept (the D-Bus layer refuses larger frames too). */
export const MAX_SIDE = MAX_DISPLAY_SIDE;
/** Largest picture we allocate: 8192x8192 (256 MiB of ARGB). QEMU's own limit is far lower. */
export const MAX_PIXELS = MAX_DISPLAY_PIXELS;

export class Framebuffer {
  width = 0;
  height = 0;
  data: Buffer = Buffer.alloc(0);

  get stride(): number {
    return this.width * 4;
  }

  /** New size; keeps the overlapping part of the picture, the rest is black. */
  resize(width: number, height: number): boolean {
    if (width === this.width && height === this.height) return false;
    if (width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) {
      throw new CameraError('ERANGE', `picture ${width}x${height} is larger than the ${MAX_PIXELS / 1048576} Mpixel the camera accepts`);
    }
    const next = Buffer.alloc(width * height * 4);
    const rows = Math.min(height, this.height);
    const rowBytes = Math.min(width, this.width) * 4;
    for (let y = 0; y < rows; y++) this.data.copy(next, y * width * 4, y * this.stride, y * this.stride + rowBytes);
    this.data = next;
    this.width = width;
    this.height = height;
    return true;
  }

  /** Makes the picture at least this big (an Update outside the last Scanout). */
  growToFit(right: number, bottom: number): boolean {
    if (right <= this.width && bottom <= this.height) return false;
    return this.resize(Math.max(this.width, right), Math.max(this.height, bottom));
  }

  /**
   * Converts a pixman-format rectangle into the picture at (x, y), growing the picture when the
   * rectangle falls outside it; parts at negative coordinates are clipped. Throws
   * EPIXMANFORMAT for formats we do not convert and ERANGE when data is shorter than w/h/stride say.
   */
  blit(x: number, y: number, w: number, h: number, stride: number, format: number, data: Uint8Array): void {
    const fmt = pixmanFormat(format);
    if (!fmt) throw formatError(format);
    if (w <= 0 || h <= 0) return;
    let src = data;
    if (x < 0 || y < 0) {
      const dx = Math.max(0, -x);
      const dy = Math.max(0, -y);
      if (dx >= w || dy >= h) return;
      src = data.subarray(dy * stride + dx * fmt.bytesPerPixel);
      w -= dx;
      h -= dy;
      x += dx;
      y += dy;
    }
    if (x + w > MAX_SIDE || y + h > MAX_SIDE) {
      throw new CameraError('ERANGE', `update at ${x},${y} size ${w}x${h} lies beyond ${MAX_SIDE}x${MAX_SIDE}`);
    }
    this.growToFit(x + w, y + h);
    native.yuvBlit(src, stride, format, w, h, this.data, this.stride, x, y);
  }
}
