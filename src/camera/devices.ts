// `devices()` listing for the CLI: the V4L2 nodes on this host and whether each can take our
// frames (a v4l2loopback device offering VIDEO_OUTPUT), with the reason when it cannot. It opens
// the nodes (QUERYCAP through the addon); loopback.ts lists what sysfs shows without opening.
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import { videoNodes } from './loopback';
import { V4L2_CAP_VIDEO_OUTPUT, modprobeLine } from './sinks/v4l2';

export interface CameraDevice {
  path: string;
  driver?: string;
  card?: string;
  loopback: boolean;
  /** usable as --camera <path> right now */
  usable: boolean;
  /** why not, when not usable */
  reason?: string;
}

/** V4L2 nodes under dir (default /dev), video<N> in numeric order. Opens each read-only for QUERYCAP. */
export function cameraDevices(dir = '/dev'): CameraDevice[] {
  return videoNodes(dir).map((n) => {
    const p = path.join(dir, n);
    let fd: number;
    try {
      fd = fs.openSync(p, 'r');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { path: p, loopback: false, usable: false, reason: e.code === 'EACCES' ? 'permission denied (join the video group)' : e.message };
    }
    try {
      const cap = native.v4l2QueryCap(fd);
      const loopback = /loopback/i.test(cap.driver);
      const output = (cap.deviceCaps & V4L2_CAP_VIDEO_OUTPUT) !== 0;
      const reason = output ? undefined : loopback ? 'another producer is writing to it' : `a ${cap.driver} device, not v4l2loopback`;
      return { path: p, driver: cap.driver, card: cap.card, loopback, usable: output, reason };
    } catch (err) {
      return { path: p, loopback: false, usable: false, reason: `not a V4L2 device (${(err as { code?: string }).code ?? (err as Error).message})` };
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** One line for `list` when there is no usable device. */
export function noDeviceHint(): string {
  return `no v4l2loopback device: ${modprobeLine('/dev/video10')} (or use --camera pipewire)`;
}
