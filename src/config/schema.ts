// The configuration: one table per concern, every key documented in docs/config-example.toml.
// The same schema validates the TOML file and the command-line flags, so a bad value gets the
// same "what is allowed" text whichever way it came in. Unknown keys are errors (strict).
import { z } from 'zod';
import { CAMERA_DEFAULTS, CAMERA_PIXEL_FORMATS, parseCameraDevice, parseCameraFps, parseCameraSize } from '../camera/options';
import { parseHotkey } from '../input/hotkey';
import { parseConfiguredInputRule } from '../input/selection';
import { LOG_FORMATS, LOG_LEVELS } from '../log';

/** Grab-toggle presets; anything else must be a KEY_A+KEY_B chord of evdev key names. */
export const GRAB_TOGGLE_PRESETS = ['ctrl-ctrl', 'alt-alt', 'shift-shift', 'meta-meta', 'scrolllock', 'ctrl-scrolllock', 'none'] as const;

/** What each key accepts, in words (used in every error message about that key). */
export const ALLOWED: Record<string, string> = {
  'connection.address': 'a D-Bus address such as "unix:path=/run/user/1000/bus" (default: the session bus)',
  'connection.vm': 'the VM name or UUID as QEMU reports it (-name / -uuid), without "/"',
  'connection.qmp': 'an absolute path to the QMP unix socket of a VM started with -display dbus,p2p=yes',
  'connection.libvirt': 'a libvirt domain name or UUID, without "/"',
  'connection.libvirt_uri': 'a libvirt connection URI such as "qemu:///session" or "qemu:///system"',
  'log.format': LOG_FORMATS.join(' or '),
  'log.level': LOG_LEVELS.join(', '),
  'audio.backend': 'auto, pipewire, pulse or none',
  'audio.sink': 'a sink node name (see `qemu-dbus-bridge devices`), empty for the default sink',
  'audio.source': 'a source node name (see `qemu-dbus-bridge devices`), empty for the default source',
  'audio.latency_ms': 'an integer number of milliseconds from 5 to 500',
  'audio.microphone': 'true or false',
  'camera.device': 'auto, pipewire, pipewire:NODE-NAME (a PipeWire camera with this node.name), none, a v4l2loopback device such as /dev/video10, or file:/path (raw frames)',
  'camera.size': 'WIDTHxHEIGHT with even numbers from 48x32 to 8192x8192, e.g. 1280x720',
  'camera.fps': 'an integer from 1 to 120',
  'camera.pin_resolution': 'true or false',
  'camera.format': 'YUY2, I420 or NV12 (v4l2loopback and file targets; PipeWire negotiates)',
  'camera.cursor': 'true or false',
  'camera.console': 'a console number from 0 to 255 as `qemu-dbus-bridge list` shows it (default: the first graphic console)',
  'input.devices':
    'a list of devices: absolute evdev paths (best /dev/input/by-id/...), name:REGEX, id:VVVV:PPPP, all-keyboards or all-mice (see `qemu-dbus-bridge devices`)',
  'input.replay': 'absolute paths of replay files or FIFOs (raw input_event records)',
  'input.grab': 'true or false',
  'input.grab_toggle': `${GRAB_TOGGLE_PRESETS.join(', ')} or a chord of evdev key names like "KEY_LEFTCTRL+KEY_F12"`,
  'input.grab_next': `${GRAB_TOGGLE_PRESETS.join(', ')} or a chord of evdev key names like "KEY_LEFTCTRL+KEY_RIGHTALT+KEY_N"`,
  'input.console': 'a console number from 0 to 255 as `qemu-dbus-bridge list` shows it (default: the first graphic console)',
  'input.ring_order': 'a whole number from -1000 to 1000: where this VM stands in the grab-next ring, lowest first, VM name among equals (default 0)',
};

/** The part's own parser decides (one definition of what a device, rule, size or hotkey is). */
function accepts<T>(parse: (v: T) => unknown, v: T): boolean {
  try {
    parse(v);
    return true;
  } catch {
    return false;
  }
}

const text = (key: string) => z.string({ message: ALLOWED[key] }).min(1, { message: ALLOWED[key] });
const absPath = (key: string) => text(key).refine((p) => p.startsWith('/'), { message: ALLOWED[key] });
const int = (key: string, min: number, max: number) =>
  z.number({ message: ALLOWED[key] }).int({ message: ALLOWED[key] }).min(min, { message: ALLOWED[key] }).max(max, { message: ALLOWED[key] });
const bool = (key: string) => z.boolean({ message: ALLOWED[key] });
const oneOf = <T extends string>(key: string, values: readonly [T, ...T[]]) => z.enum(values, { message: ALLOWED[key] });

/** One camera: the `[camera]` table, or one `[[camera]]` entry. */
const cameraTable = z
  .object({
    device: text('camera.device')
      .refine((d) => accepts(parseCameraDevice, d), { message: ALLOWED['camera.device'] })
      .default(CAMERA_DEFAULTS.device),
    size: text('camera.size')
      .refine((d) => accepts(parseCameraSize, d), { message: ALLOWED['camera.size'] })
      .default(CAMERA_DEFAULTS.size),
    fps: z
      .number({ message: ALLOWED['camera.fps'] })
      .refine((n) => accepts(parseCameraFps, n), { message: ALLOWED['camera.fps'] })
      .default(CAMERA_DEFAULTS.fps),
    pin_resolution: bool('camera.pin_resolution').default(CAMERA_DEFAULTS.pin_resolution),
    format: z.enum(CAMERA_PIXEL_FORMATS, { message: ALLOWED['camera.format'] }).default(CAMERA_DEFAULTS.format),
    cursor: bool('camera.cursor').default(CAMERA_DEFAULTS.cursor),
    // unset: the first graphic console (src/qemu/console.ts chooseConsole); a [[camera]] entry must set it
    console: int('camera.console', 0, 255).optional(),
  })
  .strict();

export type CameraTable = z.infer<typeof cameraTable>;

/**
 * `[camera]` (one table: one camera, as the flags set it) or `[[camera]]` (an array of tables: one
 * camera per entry, e.g. one per console of a two-head VM). Each form is checked as itself, so an
 * issue names the key (and the entry) instead of "matches neither form".
 */
/** More webcams than any VM has heads is a mistake, not a plan (each is a route, a listener and a sink). */
export const MAX_CAMERAS = 16;

const cameraTables = z.unknown().transform((v, ctx): CameraTable | CameraTable[] => {
  const list = z
    .array(cameraTable)
    .min(1, { message: 'camera = [] is not allowed: write one [[camera]] table per camera, or a [camera] table' })
    .max(MAX_CAMERAS, { message: `at most ${MAX_CAMERAS} [[camera]] entries` });
  const r = Array.isArray(v) ? list.safeParse(v) : cameraTable.safeParse(v ?? {});
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.addIssue(issue as z.IssueData);
  return z.NEVER;
});

export const ConfigSchema = z
  .object({
    connection: z
      .object({
        address: text('connection.address')
          .refine((a) => /^[a-z-]+:/.test(a), { message: ALLOWED['connection.address'] })
          .optional(),
        vm: text('connection.vm')
          .refine((v) => !v.includes('/'), { message: ALLOWED['connection.vm'] })
          .optional(),
        qmp: absPath('connection.qmp').optional(),
        libvirt: text('connection.libvirt')
          .refine((v) => !v.includes('/'), { message: ALLOWED['connection.libvirt'] })
          .optional(),
        libvirt_uri: text('connection.libvirt_uri')
          .refine((u) => /^[a-z][a-z0-9+.-]*:\/\//.test(u), { message: ALLOWED['connection.libvirt_uri'] })
          .optional(),
      })
      .strict()
      .default({}),
    log: z
      .object({
        format: oneOf('log.format', ['text', 'json']).default('text'),
        level: oneOf('log.level', ['error', 'warn', 'info', 'debug']).default('info'),
      })
      .strict()
      .default({}),
    audio: z
      .object({
        backend: oneOf('audio.backend', ['auto', 'pipewire', 'pulse', 'none']).default('auto'),
        sink: z.string({ message: ALLOWED['audio.sink'] }).default(''),
        source: z.string({ message: ALLOWED['audio.source'] }).default(''),
        // Unset: src/audio/out/prebuffer.ts decides (it follows QEMU's schedule on PipeWire).
        latency_ms: int('audio.latency_ms', 5, 500).optional(),
        microphone: bool('audio.microphone').default(true),
      })
      .strict()
      .default({}),
    camera: cameraTables,
    input: z
      .object({
        devices: z
          .array(
            text('input.devices').refine((r) => accepts(parseConfiguredInputRule, r), {
              message: ALLOWED['input.devices'],
            }),
            { message: ALLOWED['input.devices'] },
          )
          .default([]),
        // One file or a list.
        replay: z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(absPath('input.replay'), { message: ALLOWED['input.replay'] })).default([]),
        grab: bool('input.grab').default(true),
        grab_toggle: text('input.grab_toggle')
          .refine((t) => accepts(parseHotkey, t), {
            message: ALLOWED['input.grab_toggle'],
          })
          .default('ctrl-ctrl'),
        // Hand-over to the next bridge on the session bus (docs/status-bus.md); none: off.
        grab_next: text('input.grab_next')
          .refine((t) => accepts(parseHotkey, t), {
            message: ALLOWED['input.grab_next'],
          })
          .default('none'),
        // unset: the first graphic console (src/qemu/console.ts chooseConsole)
        console: int('input.console', 0, 255).optional(),
        // This bridge's place in the grab-next ring (src/service/status-bus/ring.ts): published on the
        // session bus, so every bridge orders the ring from the same values.
        ring_order: int('input.ring_order', -1000, 1000).default(0),
      })
      .strict()
      .default({}),
  })
  .strict();

export type BridgeConfig = z.infer<typeof ConfigSchema>;
/** What a file or the flags may contain before defaults: every table and key optional. */
export type PartialConfig = { [T in keyof BridgeConfig]?: Partial<BridgeConfig[T]> };

/** One camera the config asks for: its settings, and for a `[[camera]]` entry its position in the list. */
export interface CameraEntry {
  settings: CameraTable;
  index?: number;
}

/** Every camera of the config, off ones (device = "none") included: the one `[camera]`, or each `[[camera]]` entry. */
export function cameraEntries(config: Pick<BridgeConfig, 'camera'>): CameraEntry[] {
  const c = config.camera;
  return Array.isArray(c) ? c.map((settings, index) => ({ settings, index })) : [{ settings: c }];
}

export const TABLES = Object.keys(ConfigSchema.shape) as (keyof BridgeConfig)[];
export const ALL_KEYS = Object.keys(ALLOWED);

export function keysOf(table: string): string[] {
  return ALL_KEYS.filter((k) => k.startsWith(table + '.')).map((k) => k.slice(table.length + 1));
}
