// org.qemu.Display1.Listener (+ Listener.Unix.Map) served for a ConsoleListenerHandler.
// Only translation and validation here: the handler (src/camera/) knows nothing about D-Bus.
import type { ConsoleListenerHandler } from './handlers';
import { MAX_CURSOR_SIDE, MAX_DISPLAY_PIXELS, MAX_DISPLAY_SIDE, MAX_FRAME_BYTES, clampCoordinate } from './limits';
import { ERR_INVALID_ARGS, MethodError, type ExportedInterface, type PeerListenerOptions } from './peer-listener';

export const LISTENER_PATH = '/org/qemu/Display1/Listener';
export const LISTENER_IFACE = 'org.qemu.Display1.Listener';
export const LISTENER_UNIX_MAP_IFACE = 'org.qemu.Display1.Listener.Unix.Map';

function bytesPerPixel(pixmanFormat: number): number {
  // pixman_format_code_t: bpp in the top 8 bits (PIXMAN_FORMAT_BPP)
  return (pixmanFormat >>> 24) / 8;
}

function checkRect(what: string, w: number, h: number, stride: number, fmt: number, dataLen: number | null): void {
  const bpp = bytesPerPixel(fmt);
  if (!(bpp === 2 || bpp === 3 || bpp === 4)) throw new MethodError(ERR_INVALID_ARGS, `${what}: unsupported pixman format 0x${fmt.toString(16)}`);
  if (w <= 0 || h <= 0 || w > MAX_DISPLAY_SIDE || h > MAX_DISPLAY_SIDE) throw new MethodError(ERR_INVALID_ARGS, `${what}: size ${w}x${h} out of range 1..${MAX_DISPLAY_SIDE}`);
  if (w * h > MAX_DISPLAY_PIXELS) throw new MethodError(ERR_INVALID_ARGS, `${what}: ${w}x${h} is more than ${MAX_DISPLAY_PIXELS} pixels`);
  if (stride < w * bpp) throw new MethodError(ERR_INVALID_ARGS, `${what}: stride ${stride} < width ${w} x ${bpp} bytes`);
  if ((h - 1) * stride + w * bpp > MAX_FRAME_BYTES) throw new MethodError(ERR_INVALID_ARGS, `${what}: ${h} rows at stride ${stride} span more than ${MAX_FRAME_BYTES} bytes`);
  if (dataLen !== null && dataLen < stride * (h - 1) + w * bpp) {
    throw new MethodError(ERR_INVALID_ARGS, `${what}: ${dataLen} bytes of data for ${w}x${h} stride ${stride}`);
  }
}

const asView = (b: unknown): Uint8Array => b as Uint8Array;
const clampTo = (v: number, max: number): number => Math.min(Math.max(0, v), max);

/**
 * The exported interfaces. `Interfaces` lists Listener.Unix.Map only when the handler can take
 * a mapped scanout AND the connection carries fds; QEMU (9.2+) reads it once, at registration.
 */
export function consoleListenerInterfaces(handler: ConsoleListenerHandler, withFds: boolean): ExportedInterface[] {
  const unixMap = withFds && typeof handler.scanoutMap === 'function';
  const listener: ExportedInterface = {
    name: LISTENER_IFACE,
    properties: { Interfaces: ['as', () => (unixMap ? [LISTENER_UNIX_MAP_IFACE] : [])] },
    methods: {
      // Frames are fire-and-forget from QEMU: run in time slices (see PeerListener), and a
      // full-frame Scanout makes every queued Update/Scanout before it obsolete.
      Scanout: {
        in: 'uuuuay',
        out: '',
        deferrable: true,
        supersedes: ['Update', 'Scanout'],
        validate: ([w, h, stride, fmt, data]) => checkRect('Scanout', w as number, h as number, stride as number, fmt as number, asView(data).byteLength),
        call: ([w, h, stride, fmt, data]) => handler.scanout(w as number, h as number, stride as number, fmt as number, asView(data)),
      },
      Update: {
        in: 'iiiiuuay',
        out: '',
        deferrable: true,
        validate: ([x, y, w, h, stride, fmt, data]) => {
          if ((x as number) < 0 || (y as number) < 0) throw new MethodError(ERR_INVALID_ARGS, `Update: negative origin ${String(x)},${String(y)}`);
          checkRect('Update', w as number, h as number, stride as number, fmt as number, asView(data).byteLength);
          // The handler may grow its picture to hold the rectangle (7.2 text mode): bound that too.
          const right = (x as number) + (w as number);
          const bottom = (y as number) + (h as number);
          if (right > MAX_DISPLAY_SIDE || bottom > MAX_DISPLAY_SIDE || right * bottom > MAX_DISPLAY_PIXELS) {
            throw new MethodError(ERR_INVALID_ARGS, `Update: rectangle reaches ${right}x${bottom}, beyond ${MAX_DISPLAY_SIDE} a side or ${MAX_DISPLAY_PIXELS} pixels`);
          }
        },
        call: ([x, y, w, h, stride, fmt, data]) => handler.update(x as number, y as number, w as number, h as number, stride as number, fmt as number, asView(data)),
      },
      // GL paths: we run gl=off and negotiate nothing for dmabufs; the fd is closed for us.
      ScanoutDMABUF: {
        in: 'huuuutb',
        out: '',
        call: () => {
          handler.scanoutDmabuf?.();
          throw new MethodError('org.qemu.Display1.Error.Unsupported', 'this listener does not import dmabufs (run QEMU with gl=off)');
        },
      },
      UpdateDMABUF: {
        // QEMU waits for this reply (1 s) before un-blocking the guest GPU: answer at once.
        in: 'iiii',
        out: '',
        call: () => undefined,
      },
      // Deferred too, only to stay in order with the frames around them.
      Disable: { in: '', out: '', deferrable: true, call: () => handler.disable() },
      // Any int32 is well-typed: clamp here, so the handler's `x - hotX` stays a small integer.
      MouseSet: { in: 'iii', out: '', deferrable: true, call: ([x, y, on]) => handler.mouseSet(clampCoordinate(x as number), clampCoordinate(y as number), (on as number) !== 0) },
      CursorDefine: {
        in: 'iiiiay',
        out: '',
        deferrable: true,
        validate: ([w, h, , , data]) => {
          const n = asView(data).byteLength;
          const width = w as number;
          const height = h as number;
          if (width <= 0 || height <= 0 || width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE || n < width * height * 4) {
            throw new MethodError(ERR_INVALID_ARGS, `CursorDefine: ${width}x${height} with ${n} bytes`);
          }
        },
        // A hot spot outside the image is meaningless: clamp it onto the image.
        call: ([w, h, hx, hy, data]) =>
          handler.cursorDefine({ width: w as number, height: h as number, hotX: clampTo(hx as number, (w as number) - 1), hotY: clampTo(hy as number, (h as number) - 1), data: asView(data) }),
      },
    },
  };
  const out = [listener];
  if (unixMap) {
    out.push({
      name: LISTENER_UNIX_MAP_IFACE,
      methods: {
        // Synchronous from QEMU (1 s): answer promptly; any error makes QEMU fall back for good.
        ScanoutMap: {
          in: 'huuuuu',
          out: '',
          call: ([idx, offset, w, h, stride, fmt], ctx) => {
            checkRect('ScanoutMap', w as number, h as number, stride as number, fmt as number, null);
            const fd = ctx.takeFd(idx as number);
            handler.scanoutMap!(fd, offset as number, w as number, h as number, stride as number, fmt as number);
          },
        },
        UpdateMap: {
          in: 'iiii',
          out: '',
          call: ([x, y, w, h]) => handler.updateMap?.(x as number, y as number, w as number, h as number),
        },
      },
    });
  }
  return out;
}

export function consoleListenerOptions(handler: ConsoleListenerHandler, opts: { fds?: boolean } = {}): PeerListenerOptions {
  // fds only when they buy something: a net.Socket reads faster than usocket.
  const fds = opts.fds ?? typeof handler.scanoutMap === 'function';
  return { path: LISTENER_PATH, interfaces: consoleListenerInterfaces(handler, fds), fds };
}
