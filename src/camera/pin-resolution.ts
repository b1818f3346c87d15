// --camera-pin-resolution: ask the guest to render at the camera size with
// Console.SetUIInfo(width_mm, height_mm, xoff, yoff, width, height), so the camera shows the
// guest 1:1 with no scaling. Only devices with a ui_info hook honour it (QEMU 7.2: virtio-gpu /
// virtio-vga, vfio display, xenfb); std VGA, bochs, cirrus and qxl answer Error.Unsupported.
// The Console proxy belongs to src/qemu/: this takes only the one method it needs.
import { silentLogger, type Logger } from '../log';

import { errorCode } from '../errors';

export interface UiInfoTarget {
  setUIInfo(widthMm: number, heightMm: number, xoff: number, yoff: number, width: number, height: number): Promise<void>;
}

/** Physical size we claim: 96 dpi, what guests assume when they are told nothing else. */
export function millimetres(px: number): number {
  return Math.round((px * 25.4) / 96);
}

/** true when QEMU accepted the hint; false (after one log line) when the device cannot do it. */
export async function pinGuestResolution(console: UiInfoTarget, width: number, height: number, log: Logger = silentLogger): Promise<boolean> {
  try {
    await console.setUIInfo(millimetres(width), millimetres(height), 0, 0, width, height);
    return true;
  } catch (err) {
    const e = err as Error;
    // EUNSUPPORTED: QEMU's Error.Unsupported, by the code src/qemu gives it (dbus-errors.ts).
    if (errorCode(err) === 'EUNSUPPORTED') {
      log.warn(
        `--camera-pin-resolution: the guest's display device cannot be resized from the host (SetUIInfo unsupported: std VGA/bochs/cirrus/qxl). Use -device virtio-vga or virtio-gpu-pci, or drop the flag; the picture is scaled instead.`,
      );
    } else {
      log.warn(`--camera-pin-resolution: SetUIInfo(${width}x${height}) failed: ${e.message}; the picture is scaled instead`);
    }
    return false;
  }
}
