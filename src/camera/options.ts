// `run` flags of the camera, validated here so the CLI only forwards them:
//   --camera /dev/videoN | pipewire | file:<path> | none      (default pipewire)
//   --camera-size WxH (even, default 1280x720)   --camera-fps N (1..120, default 30)
//   --camera-format YUY2|I420|NV12 (v4l2/file only; PipeWire negotiates; default YUY2)
//   --camera-pin-resolution (ask the guest to render at the camera size, virtio-gpu only)
//   --camera-cursor / --no-camera-cursor (default on)
import { CameraError } from './errors';
import { parseCameraSize } from './letterbox';
import { CAMERA_PIXEL_FORMATS, CameraPixelFormat } from './sinks/types';

export type CameraTarget = { kind: 'none' } | { kind: 'pipewire' } | { kind: 'v4l2'; path: string } | { kind: 'file'; path: string };

export interface CameraConfig {
  target: CameraTarget;
  width: number;
  height: number;
  fps: number;
  format: CameraPixelFormat;
  pinResolution: boolean;
  cursor: boolean;
}

export interface CameraFlags {
  camera?: string;
  cameraSize?: string;
  cameraFps?: number | string;
  cameraFormat?: string;
  cameraPinResolution?: boolean;
  cameraCursor?: boolean;
}

function usage(message: string): CameraError {
  return new CameraError('EUSAGE', message);
}

export function parseCameraTarget(text: string): CameraTarget {
  const t = text.trim();
  if (t === 'none' || t === 'off') return { kind: 'none' };
  if (t === 'pipewire') return { kind: 'pipewire' };
  if (t.startsWith('file:') && t.length > 5) return { kind: 'file', path: t.slice(5) };
  if (t.startsWith('/dev/')) return { kind: 'v4l2', path: t };
  throw usage(`--camera ${JSON.stringify(text)}: expected /dev/videoN (v4l2loopback), pipewire, file:<path> or none`);
}

export function parseCameraFlags(f: CameraFlags): CameraConfig {
  const target = parseCameraTarget(f.camera ?? 'pipewire');
  const { width, height } = parseCameraSize(f.cameraSize ?? '1280x720');
  const fps = Number(f.cameraFps ?? 30);
  if (!Number.isInteger(fps) || fps < 1 || fps > 120) throw usage(`--camera-fps ${String(f.cameraFps)}: expected a whole number from 1 to 120 (example: --camera-fps 30)`);
  const format = (f.cameraFormat ?? 'YUY2').toUpperCase() as CameraPixelFormat;
  if (!CAMERA_PIXEL_FORMATS.includes(format)) throw usage(`--camera-format ${JSON.stringify(f.cameraFormat)}: expected YUY2, I420 or NV12`);
  return { target, width, height, fps, format, pinResolution: f.cameraPinResolution ?? false, cursor: f.cameraCursor ?? true };
}
