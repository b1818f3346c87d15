// The camera's settings: one definition of what each `[camera]` key / `--camera*` flag accepts and
// of its default. src/config/schema.ts validates the file and the flags with these parsers (the
// wording of its errors is the face's), and the service turns the validated table into a
// CameraConfig with cameraConfigOf (which resolves `auto` through the device listing).
//   device: auto | pipewire | pipewire:NODE | none | /dev/videoN | file:/path   (default auto)
//   size: WxH (even, 48x32..8192x8192, default 1280x720)   fps: 1..120 (default 30)
//   format: YUY2|I420|NV12 (v4l2/file only; PipeWire negotiates; default YUY2)
//   pin_resolution: ask the guest to render at the camera size (virtio-gpu only; default off)
//   cursor: draw the guest's pointer into the picture (default on)
import { CameraError } from './errors';
import { loopbackDevices, type LoopbackDevice } from './loopback';
import { parseCameraSize } from './letterbox';
import { CAMERA_PIXEL_FORMATS, CameraPixelFormat } from './sinks/types';

/** `node`: the PipeWire node.name `pipewire:NODE` asks for (default: stream-identity's cameraNodeName). */
export type CameraTarget = { kind: 'none' } | { kind: 'pipewire'; node?: string } | { kind: 'v4l2'; path: string } | { kind: 'file'; path: string };
/** What `device` names before `auto` is resolved against the host's devices. */
export type CameraDeviceChoice = CameraTarget | { kind: 'auto' };

export interface CameraConfig {
  target: CameraTarget;
  width: number;
  height: number;
  fps: number;
  format: CameraPixelFormat;
  pinResolution: boolean;
  cursor: boolean;
  /**
   * One of several cameras (a `[[camera]]` entry): the console it shows, which its default PipeWire
   * node name and description then say. Unset for the one `[camera]` (qemu-<vm>-camera, as ever).
   */
  console?: number;
}

/** The `[camera]` table as the config holds it (validated by the parsers below). */
export interface CameraSettings {
  device: string;
  size: string;
  fps: number;
  format: CameraPixelFormat;
  pin_resolution: boolean;
  cursor: boolean;
}

/** Defaults of every camera setting (README, docs/config-example.toml and --help say the same). */
export const CAMERA_DEFAULTS: Readonly<CameraSettings> = {
  device: 'auto',
  size: '1280x720',
  fps: 30,
  format: 'YUY2',
  pin_resolution: false,
  cursor: true,
};

export { CAMERA_PIXEL_FORMATS, parseCameraSize };

/** A value the setting does not accept: the problem says what would be. */
const usage = (problem: string): CameraError => new CameraError('EUSAGE', problem);

export function parseCameraDevice(text: string): CameraDeviceChoice {
  if (text === 'auto') return { kind: 'auto' };
  if (text === 'none') return { kind: 'none' };
  if (text === 'pipewire') return { kind: 'pipewire' };
  const node = /^pipewire:([A-Za-z0-9_.-]{1,128})$/.exec(text);
  if (node) return { kind: 'pipewire', node: node[1] };
  if (/^file:\/./.test(text)) return { kind: 'file', path: text.slice(5) };
  if (/^\/dev\/video\d+$/.test(text)) return { kind: 'v4l2', path: text };
  throw usage(`--camera ${JSON.stringify(text)}: expected auto, pipewire, pipewire:NODE-NAME, none, a v4l2loopback device such as /dev/video10, or file:/path`);
}

/**
 * What a camera writes to, as one comparable key: two cameras of one bridge with the same key
 * would fight over one target (`auto` is one key: it picks the same device for each). A PipeWire
 * node without a name of its own is named after its console (cameraNodeName).
 */
export function cameraTargetKey(choice: CameraDeviceChoice, console: number | undefined): string {
  switch (choice.kind) {
    case 'pipewire':
      return choice.node !== undefined ? `pipewire node ${choice.node}` : `pipewire console ${String(console)}`;
    case 'v4l2':
    case 'file':
      return `${choice.kind} ${choice.path}`;
    default:
      return choice.kind;
  }
}

export function parseCameraFps(fps: number): number {
  if (!Number.isInteger(fps) || fps < 1 || fps > 120) throw usage(`--camera-fps ${String(fps)}: expected a whole number from 1 to 120 (example: --camera-fps 30)`);
  return fps;
}

export function parseCameraFormat(text: string): CameraPixelFormat {
  if (!(CAMERA_PIXEL_FORMATS as readonly string[]).includes(text)) throw usage(`--camera-format ${JSON.stringify(text)}: expected YUY2, I420 or NV12`);
  return text as CameraPixelFormat;
}

/**
 * `auto`: the first v4l2loopback device when the module made one, else a PipeWire camera node.
 * `loopbacks` is the host's listing (devices.ts), passed in by tests.
 */
export function resolveCameraTarget(choice: CameraDeviceChoice, loopbacks: () => LoopbackDevice[] = loopbackDevices): CameraTarget {
  if (choice.kind !== 'auto') return choice;
  const first = loopbacks()[0];
  return first ? { kind: 'v4l2', path: first.node } : { kind: 'pipewire' };
}

/** The validated `[camera]` table -> what startCamera takes (throws EUSAGE on a value the parsers refuse). */
export function cameraConfigOf(s: CameraSettings, loopbacks?: () => LoopbackDevice[]): CameraConfig {
  const { width, height } = parseCameraSize(s.size);
  return {
    target: resolveCameraTarget(parseCameraDevice(s.device), loopbacks),
    width,
    height,
    fps: parseCameraFps(s.fps),
    format: parseCameraFormat(s.format),
    pinResolution: s.pin_resolution,
    cursor: s.cursor,
  };
}
