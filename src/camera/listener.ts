// ConsoleListenerHandler for the camera: keeps the guest picture (Framebuffer), the hardware
// cursor and the display-off state, and tells the pipeline that something changed (a version
// counter plus arrival times for latency). No D-Bus here: src/qemu/ serves this object.
//
// QEMU 7.2 facts this follows (seen with the test guest, test/integration/camera-guest.test.ts): every full-frame damage is a Scanout
// (not only resizes); VGA text mode gets NO Scanout, only Console Width/Height and 720x400
// Updates while the last Scanout was 640x480; Disable is only sent on GL paths.
import * as fs from 'fs';
import type { ConsoleListenerHandler, CursorImage } from '../qemu/handlers';
import type { ComposeCursor } from '../native-api/video';
import { DISPLAY_OFF_HEIGHT, DISPLAY_OFF_WIDTH, displayOffPicture } from './display-off';
import { CameraError } from './errors';
import { Framebuffer, MAX_PIXELS, MAX_SIDE } from './framebuffer';
import { PIXMAN_A8R8G8B8, PIXMAN_X8R8G8B8, formatError, hex32, pixmanFormat as knownPixmanFormat } from './pixman';
import { type Logger, silentLogger } from '../log';

export interface PictureView {
  data: Uint8Array;
  width: number;
  height: number;
  stride: number;
}

/** What the camera pipeline reads. */
export interface PictureSource {
  /** Increments on every change of the picture, the cursor or the on/off state. */
  readonly version: number;
  /** The picture to show (the guest's, or the display-off picture). null before the first frame. */
  picture(): PictureView | null;
  /** Cursor to composite (framebuffer coordinates of its top-left corner), or null. */
  cursor(): ComposeCursor | null;
  /** Arrival times (performance.now()) of changes not yet taken; clears them. For latency. */
  takeArrivals(into: number[]): void;
  /**
   * Optional: the picture pixels changed since the last call, [x, y, width, height] (width or
   * height 0: none; the cursor is not counted), or null for the whole picture; clears them.
   * Lets the pipeline convert only what changed.
   */
  takeDamage?(): [number, number, number, number] | null;
  /**
   * Optional: calls fn on every change, from the handler that made it (fn must only schedule);
   * returns the unsubscribe. Lets the camera clock show a change early (see pipeline.ts).
   */
  onChange?(fn: () => void): () => void;
}

export interface CameraListenerOptions {
  /** Warnings about what QEMU sends (format refused, gl=on, bad memfd), each cause once. Default: silent. */
  log?: Logger;
  /** Draw the guest's hardware cursor into the picture (default true). */
  cursor?: boolean;
  /** Picture for the display-off state (default: the built-in "DISPLAY OFF" frame). */
  displayOff?: () => PictureView;
}

interface MappedScanout {
  fd: number;
  offset: number;
  width: number;
  height: number;
  stride: number;
  format: number;
  bytesPerPixel: number;
}

const MAX_ARRIVALS = 1024;

export class CameraConsoleListener implements ConsoleListenerHandler, PictureSource {
  readonly fb = new Framebuffer();
  version = 0;
  /** true after Disable until the next Scanout/Update */
  displayOff = false;
  /** set when the guest's pixel format was refused (cleared by the next accepted frame) */
  lastError: Error | undefined;

  private readonly log: Logger;
  private readonly cursorOn: boolean;
  private readonly offPicture: () => PictureView;
  private cursorImage: ComposeCursor | null = null;
  private hotX = 0;
  private hotY = 0;
  private mouseX = 0;
  private mouseY = 0;
  private mouseVisible = false;
  private haveFrame = false;
  /** last Console Width/Height (the service passes the initial value and every change) */
  private consoleWH: [number, number] | null = null;
  private map: MappedScanout | null = null;
  /**
   * The last Scanout's own bytes, shown as they came when they are already in the picture's
   * layout ([ax]8r8g8b8): the camera converts straight from them, and fb is filled from them only
   * when something must be drawn over them (an Update, a new Console size). null when fb holds
   * the picture.
   */
  private shown: PictureView | null = null;
  private staging: Buffer = Buffer.alloc(0);
  private readonly watchers = new Set<() => void>();
  /** picture pixels changed since takeDamage(): everything, or the box [x0, x1) x [y0, y1) */
  private damageAll = true;
  private damage = [0, 0, 0, 0];
  private readonly arrivals = new Float64Array(MAX_ARRIVALS);
  private nArrivals = 0;
  private readonly refusedFormats = new Set<number>();
  private glLogged = false;
  private readonly loggedLines = new Set<string>();

  constructor(opts: CameraListenerOptions = {}) {
    this.log = opts.log ?? silentLogger;
    this.cursorOn = opts.cursor ?? true;
    this.offPicture =
      opts.displayOff ??
      (() => ({ data: displayOffPicture(), width: DISPLAY_OFF_WIDTH, height: DISPLAY_OFF_HEIGHT, stride: DISPLAY_OFF_WIDTH * 4 }));
  }

  // ---- ConsoleListenerHandler ----

  scanout(width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array): void {
    this.unmap();
    if (!this.accept(pixmanFormat)) return;
    try {
      const keep = pixmanFormat === PIXMAN_X8R8G8B8 || pixmanFormat === PIXMAN_A8R8G8B8;
      // Kept, not copied: the D-Bus layer hands over the message's own bytes (handlers.ts). It
      // checked that data holds h rows at stride; so does this, for any other caller (a short
      // one is dropped here as the copy used to drop it, not refused at every frame).
      if (keep && (stride < width * 4 || (height - 1) * stride + width * 4 > data.byteLength)) {
        throw new CameraError('ERANGE', `update data too short: ${data.byteLength} bytes for ${width}x${height} at stride ${stride}`);
      }
      this.fb.resize(width, height);
      if (keep) {
        this.shown = { data, width, height, stride };
      } else {
        this.shown = null;
        this.fb.blit(0, 0, width, height, stride, pixmanFormat, data);
      }
      this.damageAll = true;
    } catch (err) {
      this.logOnce(`dropped a Scanout: ${(err as Error).message}`);
      return;
    }
    this.changed(true);
  }

  update(x: number, y: number, width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array): void {
    if (!this.accept(pixmanFormat)) return;
    // An Update outside the picture: the mode changed with no Scanout (7.2 text mode). Take the
    // Console size when the Update fits it (a stale Scanout may have come after the property);
    // otherwise grow (the property has not arrived yet) and let consoleSize() trim later.
    this.materialize();
    const [w0, h0] = [this.fb.width, this.fb.height];
    const cs = this.consoleWH;
    if ((x + width > this.fb.width || y + height > this.fb.height) && cs && x + width <= cs[0] && y + height <= cs[1]) this.fb.resize(cs[0], cs[1]);
    try {
      this.fb.blit(x, y, width, height, stride, pixmanFormat, data);
    } catch (err) {
      this.logOnce(`dropped an Update: ${(err as Error).message}`);
      return;
    }
    this.damaged(x, y, width, height, w0, h0);
    this.changed(true);
  }

  /**
   * 9.2+: the scanout lives in a memfd we now own; we read it with pread, straight into the
   * picture when it is in the picture's layout. (Not mmap: QEMU could shrink the memfd under a
   * mapping, and reading there is SIGBUS; pread just comes back short.)
   */
  scanoutMap(fd: number, offset: number, width: number, height: number, stride: number, pixmanFormat: number): void {
    this.unmap();
    if (!this.accept(pixmanFormat)) {
      fs.closeSync(fd);
      return;
    }
    this.shown = null;
    this.damageAll = true;
    this.map = { fd, offset, width, height, stride, format: pixmanFormat, bytesPerPixel: (pixmanFormat >>> 24) / 8 };
    try {
      this.fb.resize(width, height);
    } catch (err) {
      this.logOnce(`dropped a ScanoutMap: ${(err as Error).message}`);
      this.unmap();
      return;
    }
    this.readMapped(0, 0, width, height);
  }

  updateMap(x: number, y: number, width: number, height: number): void {
    if (!this.map) return;
    const m = this.map;
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(m.width, x + width);
    const y1 = Math.min(m.height, y + height);
    if (x1 <= x0 || y1 <= y0) return;
    this.readMapped(x0, y0, x1 - x0, y1 - y0);
  }

  disable(): void {
    this.displayOff = true;
    this.damageAll = true;
    this.changed(false);
  }

  cursorDefine(cursor: CursorImage): void {
    const bytes = cursor.width * cursor.height * 4;
    if (cursor.width <= 0 || cursor.height <= 0 || cursor.data.byteLength < bytes) {
      this.logOnce('ignoring a CursorDefine whose data is shorter than width*height*4');
      return;
    }
    // QEMU's cursor words are 0xAARRGGBB, i.e. B,G,R,A bytes: already the framebuffer's layout.
    const data = Buffer.from(cursor.data.subarray(0, bytes));
    this.cursorImage = { data, width: cursor.width, height: cursor.height, x: 0, y: 0 };
    this.hotX = cursor.hotX;
    this.hotY = cursor.hotY;
    if (this.cursorOn && this.mouseVisible) this.changed(false);
  }

  mouseSet(x: number, y: number, on: boolean): void {
    if (x === this.mouseX && y === this.mouseY && on === this.mouseVisible) return;
    this.mouseX = x;
    this.mouseY = y;
    this.mouseVisible = on;
    if (this.cursorOn && this.cursorImage) this.changed(false);
  }

  consoleSize(width: number, height: number): void {
    if (width <= 0 || height <= 0 || width > MAX_SIDE || height > MAX_SIDE || width * height > MAX_PIXELS) return;
    this.consoleWH = [width, height];
    if (width === this.fb.width && height === this.fb.height) return;
    this.materialize();
    if (this.fb.resize(width, height)) {
      this.damageAll = true;
      this.changed(false);
    }
  }

  scanoutDmabuf(): void {
    if (this.glLogged) return;
    this.glLogged = true;
    this.log.warn('QEMU offers a GL (dmabuf) scanout; gl=on is not supported yet: start QEMU with -display dbus,gl=off');
  }

  /** Releases the mapped scanout fd, if any. */
  close(): void {
    this.unmap();
  }

  // ---- PictureSource ----

  picture(): PictureView | null {
    if (this.displayOff) return this.offPicture();
    if (!this.haveFrame || this.fb.width === 0) return null;
    if (this.shown) return this.shown;
    return { data: this.fb.data, width: this.fb.width, height: this.fb.height, stride: this.fb.stride };
  }

  cursor(): ComposeCursor | null {
    if (!this.cursorOn || !this.mouseVisible || !this.cursorImage || this.displayOff) return null;
    const c = this.cursorImage;
    c.x = this.mouseX - this.hotX;
    c.y = this.mouseY - this.hotY;
    return c;
  }

  onChange(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  takeDamage(): [number, number, number, number] | null {
    const d = this.damage;
    const all = this.damageAll;
    this.damageAll = false;
    const taken: [number, number, number, number] = [d[0], d[1], d[2] - d[0], d[3] - d[1]];
    d.fill(0);
    return all ? null : taken;
  }

  takeArrivals(into: number[]): void {
    for (let i = 0; i < this.nArrivals; i++) into.push(this.arrivals[i]);
    this.nArrivals = 0;
  }

  // ---- internals ----

  /** A rectangle of the picture was redrawn; the whole picture if it changed size (was w0 x h0) meanwhile. */
  private damaged(x: number, y: number, w: number, h: number, w0: number, h0: number): void {
    if (this.fb.width !== w0 || this.fb.height !== h0) this.damageAll = true;
    if (this.damageAll) return;
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(this.fb.width, x + w);
    const y1 = Math.min(this.fb.height, y + h);
    if (x1 <= x0 || y1 <= y0) return;
    const d = this.damage;
    if (d[2] <= d[0] || d[3] <= d[1]) d.splice(0, 4, x0, y0, x1, y1);
    else d.splice(0, 4, Math.min(d[0], x0), Math.min(d[1], y0), Math.max(d[2], x1), Math.max(d[3], y1));
  }

  private changed(picture: boolean): void {
    if (picture && this.displayOff) this.damageAll = true; // back from the DISPLAY OFF picture
    if (picture) {
      this.haveFrame = true;
      this.displayOff = false;
    }
    this.version++;
    if (this.nArrivals < MAX_ARRIVALS) this.arrivals[this.nArrivals++] = performance.now();
    for (const fn of this.watchers) fn();
  }

  /** Copies a kept Scanout into fb, which is about to be drawn over or resized. */
  private materialize(): void {
    const p = this.shown;
    if (!p) return;
    this.shown = null;
    try {
      this.fb.blit(0, 0, p.width, p.height, p.stride, PIXMAN_X8R8G8B8, p.data);
    } catch (err) {
      // cannot happen for a Scanout the addon converted before; never let it escape a handler
      this.logOnce(`dropped a Scanout: ${(err as Error).message}`);
    }
  }

  private accept(format: number): boolean {
    if (knownPixmanFormat(format)) {
      this.lastError = undefined;
      return true;
    }
    if (!this.refusedFormats.has(format)) {
      this.refusedFormats.add(format);
      this.log.warn(`guest display uses pixman format ${hex32(format)}, which is not supported; frames in it are dropped (configure the guest for 32-bit colour)`);
    }
    this.lastError = formatError(format);
    return false;
  }

  private readMapped(x: number, y: number, w: number, h: number): void {
    const m = this.map!;
    const bpp = m.bytesPerPixel;
    const fb = this.fb;
    const [w0, h0] = [fb.width, fb.height];
    if ((m.format === PIXMAN_X8R8G8B8 || m.format === PIXMAN_A8R8G8B8) && x + w <= fb.width && y + h <= fb.height) {
      // Already the picture's layout: read straight into the picture, no staging copy. Whole
      // rows at the picture's stride in one pread, else one pread per row.
      const at = (row: number): number => m.offset + row * m.stride + x * bpp;
      if (x === 0 && w === fb.width && m.stride === fb.stride) {
        if (!this.pread(fb.data, y * fb.stride, h * fb.stride, at(y))) return;
      } else {
        for (let row = y; row < y + h; row++) if (!this.pread(fb.data, row * fb.stride + x * 4, w * 4, at(row))) return;
      }
    } else {
      // one pread of the span from the rectangle's first to its last byte, then convert with stride
      const len = (h - 1) * m.stride + w * bpp;
      if (this.staging.length < len) this.staging = Buffer.alloc(len);
      if (!this.pread(this.staging, 0, len, m.offset + y * m.stride + x * bpp)) return;
      this.fb.blit(x, y, w, h, m.stride, m.format, this.staging.subarray(0, len));
    }
    this.damaged(x, y, w, h, w0, h0);
    this.changed(true);
  }

  /** Reads len bytes of the mapped scanout at pos into buf[off..]; false (reported once, unmapped) if it cannot. */
  private pread(buf: Buffer, off: number, len: number, pos: number): boolean {
    let got = 0;
    try {
      while (got < len) {
        const n = fs.readSync(this.map!.fd, buf, off + got, len - got, pos + got);
        if (n === 0) break;
        got += n;
      }
    } catch (err) {
      this.logOnce(`reading the mapped scanout failed (${(err as Error).message}); waiting for the next Scanout`);
      this.unmap();
      return false;
    }
    if (got < len) {
      // Once: the geometry is QEMU's (or the guest's) to vary, the journal is not.
      this.logOnce('a mapped scanout is shorter than its size and stride say; waiting for the next Scanout');
      this.unmap();
      return false;
    }
    return true;
  }

  private logOnce(line: string): void {
    if (this.loggedLines.has(line)) return;
    if (this.loggedLines.size < 100) this.loggedLines.add(line);
    this.log.warn(line);
  }

  private unmap(): void {
    if (!this.map) return;
    try {
      fs.closeSync(this.map.fd);
    } catch {
      /* already closed */
    }
    this.map = null;
  }
}
