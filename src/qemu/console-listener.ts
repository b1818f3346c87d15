// org.qemu.Display1.Listener (+ Listener.Unix.Map) served for a ConsoleListenerHandler.
// Only translation and validation here: the handler (src/camera/) knows nothing about D-Bus.
import type { ConsoleListenerHandler } from './handlers';
import { MAX_CURSOR_SIDE, MAX_DISPLAY_PIXELS, MAX_DISPLAY_SIDE, MAX_FRAME_BYTES, clampCoordinate } from './limits';
import { DBUS_ERR } from './dbus-errors';
import { MethodError, servedInterface, type ExportedInterface, type PeerListenerOptions } from './peer-listener';

export const LISTENER_PATH = '/org/qemu/Display1/Listener';
export const LISTENER_IFACE = 'org.qemu.Display1.Listener' as const;
export const LISTENER_UNIX_MAP_IFACE = 'org.qemu.Display1.Listener.Unix.Map' as const;

function bytesPerPixel(pixmanFormat: number): number {
  // pixman_format_code_t: bpp in the top 8 bits (PIXMAN_FORMAT_BPP)
  return (pixmanFormat >>> 24) / 8;
}

function checkRect(what: string, w: number, h: number, stride: number, fmt: number, dataLen: number | null): void {
  const bpp = bytesPerPixel(fmt);
  if (!(bpp === 2 || bpp === 3 || bpp === 4)) throw new MethodError(DBUS_ERR.INVALID_ARGS, `${what}: unsupported pixman format 0x${fmt.toString(16)}`);
  if (w <= 0 || h <= 0 || w > MAX_DISPLAY_SIDE || h > MAX_DISPLAY_SIDE) throw new MethodError(DBUS_ERR.INVALID_ARGS, `${what}: size ${w}x${h} out of range 1..${MAX_DISPLAY_SIDE}`);
  if (w * h > MAX_DISPLAY_PIXELS) throw new MethodError(DBUS_ERR.INVALID_ARGS, `${what}: ${w}x${h} is more than ${MAX_DISPLAY_PIXELS} pixels`);
  if (stride < w * bpp) throw new MethodError(DBUS_ERR.INVALID_ARGS, `${what}: stride ${stride} < width ${w} x ${bpp} bytes`);
  if ((h - 1) * stride + w * bpp > MAX_FRAME_BYTES) throw new MethodError(DBUS_ERR.INVALID_ARGS, `${what}: ${h} rows at stride ${stride} span more than ${MAX_FRAME_BYTES} bytes`);
  if (dataLen !== null && dataLen < stride * (h - 1) + w * bpp) {
    throw new MethodError(DBUS_ERR.INVALID_ARGS, `${what}: ${dataLen} bytes of data for ${w}x${h} stride ${stride}`);
  }
}

const clampTo = (v: number, max: number): number => Math.min(Math.max(0, v), max);

/**
 * The exported interfaces. `Interfaces` lists Listener.Unix.Map only when the handler can take
 * a mapped scanout AND the connection carries fds; QEMU (9.2+) reads it once, at registration.
 * Signatures and argument types come from display1.xml (servedInterface).
 */
export function consoleListenerInterfaces(handler: ConsoleListenerHandler, withFds: boolean): ExportedInterface[] {
  const scanoutMap = withFds ? handler.scanoutMap?.bind(handler) : undefined;
  const listener = servedInterface(
    LISTENER_IFACE,
    {
      // Frames are fire-and-forget from QEMU: run in time slices (see peer/scheduler.ts), and a
      // full-frame Scanout makes every queued Update/Scanout before it obsolete.
      Scanout: {
        deferrable: true,
        supersedes: ['Update', 'Scanout'],
        validate: ([w, h, stride, fmt, data]) => checkRect('Scanout', w, h, stride, fmt, data.byteLength),
        call: ([w, h, stride, fmt, data]) => handler.scanout(w, h, stride, fmt, data),
      },
      Update: {
        deferrable: true,
        validate: ([x, y, w, h, stride, fmt, data]) => {
          if (x < 0 || y < 0) throw new MethodError(DBUS_ERR.INVALID_ARGS, `Update: negative origin ${x},${y}`);
          checkRect('Update', w, h, stride, fmt, data.byteLength);
          // The handler may grow its picture to hold the rectangle (7.2 text mode): bound that too.
          const right = x + w;
          const bottom = y + h;
          if (right > MAX_DISPLAY_SIDE || bottom > MAX_DISPLAY_SIDE || right * bottom > MAX_DISPLAY_PIXELS) {
            throw new MethodError(DBUS_ERR.INVALID_ARGS, `Update: rectangle reaches ${right}x${bottom}, beyond ${MAX_DISPLAY_SIDE} a side or ${MAX_DISPLAY_PIXELS} pixels`);
          }
        },
        call: ([x, y, w, h, stride, fmt, data]) => handler.update(x, y, w, h, stride, fmt, data),
      },
      // GL paths: we run gl=off and negotiate nothing for dmabufs; the fd is closed for us.
      ScanoutDMABUF: {
        call: () => {
          handler.scanoutDmabuf?.();
          throw new MethodError(DBUS_ERR.QEMU_UNSUPPORTED, 'this listener does not import dmabufs (run QEMU with gl=off)');
        },
      },
      // QEMU waits for this reply (1 s) before un-blocking the guest GPU: answer at once.
      UpdateDMABUF: { call: () => undefined },
      // Deferred too, only to stay in order with the frames around them.
      Disable: { deferrable: true, call: () => handler.disable() },
      // Any int32 is well-typed: clamp here, so the handler's `x - hotX` stays a small integer.
      MouseSet: { deferrable: true, call: ([x, y, on]) => handler.mouseSet(clampCoordinate(x), clampCoordinate(y), on !== 0) },
      CursorDefine: {
        deferrable: true,
        validate: ([width, height, , , data]) => {
          const n = data.byteLength;
          if (width <= 0 || height <= 0 || width > MAX_CURSOR_SIDE || height > MAX_CURSOR_SIDE || n < width * height * 4) {
            throw new MethodError(DBUS_ERR.INVALID_ARGS, `CursorDefine: ${width}x${height} with ${n} bytes`);
          }
        },
        // A hot spot outside the image is meaningless: clamp it onto the image.
        call: ([width, height, hx, hy, data]) => handler.cursorDefine({ width, height, hotX: clampTo(hx, width - 1), hotY: clampTo(hy, height - 1), data }),
      },
    },
    { Interfaces: () => (scanoutMap ? [LISTENER_UNIX_MAP_IFACE] : []) },
  );
  if (!scanoutMap) return [listener];
  const unixMap = servedInterface(LISTENER_UNIX_MAP_IFACE, {
    // Synchronous from QEMU (1 s): answer promptly; any error makes QEMU fall back for good.
    ScanoutMap: {
      call: ([idx, offset, w, h, stride, fmt], ctx) => {
        checkRect('ScanoutMap', w, h, stride, fmt, null);
        scanoutMap(ctx.takeFd(idx), offset, w, h, stride, fmt);
      },
    },
    UpdateMap: { call: ([x, y, w, h]) => handler.updateMap?.(x, y, w, h) },
  });
  return [listener, unixMap];
}

export function consoleListenerOptions(handler: ConsoleListenerHandler, opts: { fds?: boolean } = {}): PeerListenerOptions {
  // fds only when they buy something: a net.Socket reads faster than usocket.
  const fds = opts.fds ?? typeof handler.scanoutMap === 'function';
  return { path: LISTENER_PATH, interfaces: consoleListenerInterfaces(handler, fds), fds };
}
