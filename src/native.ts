// The ONE place that loads the native addons (build/Release/qemu_dbus_bridge*.node).
// Everything else imports `native` (or the helpers below) from here, never the .node file,
// so tests can swap in fakes through the handler/backend interfaces instead.
//
// The addon's surface is declared per concern in src/native-api/*.ts.
import * as path from 'path';
import { CodedError, errorCode, errorMessage } from './errors';
import type { AudioNativeApi } from './native-api/audio';
import type { CaptureNativeApi } from './native-api/capture';
import type { CoreNativeApi } from './native-api/core';
import type { FdNativeApi } from './native-api/fd';
import type { EvdevNativeApi } from './native-api/evdev';
import type { LibvirtNativeApi } from './native-api/libvirt';
import type { VideoNativeApi } from './native-api/video';

export type NativeAddon = CoreNativeApi & EvdevNativeApi & AudioNativeApi & VideoNativeApi & CaptureNativeApi & FdNativeApi & LibvirtNativeApi;

/**
 * The addons in build/Release and what each exports (native/addon.cc builds one per concern, each
 * linking only its own library). An addon is required the first time one of its exports is read,
 * so a bridge maps only the libraries its configuration uses: an audio-only PipeWire bridge never
 * maps libpulse and its chain (libsndfile and codecs, libX11/xcb, libsystemd, libgcrypt), libyuv,
 * libevdev or libvirt.
 */
const ADDONS = {
  qemu_dbus_bridge: ['socketpair', 'setCloexec', 'sdNotify', 'pcmFlipSign', 'pcmFillSilence', 'pcmIsSilence', 'pcmApplyGains'],
  qemu_dbus_bridge_pipewire: ['PwPlayback', 'PwSpeakerCore', 'PwSpeakerIntake', 'PwCapture', 'PwCamera'],
  qemu_dbus_bridge_pulse: ['PulsePlayback', 'PulseSpeakerCore', 'PulseSpeakerIntake', 'PulseCapture'],
  qemu_dbus_bridge_video: ['yuvBlit', 'yuvCompose', 'yuvFrameSize', 'v4l2QueryCap', 'v4l2SetOutputFormat', 'v4l2SetOutputFps', 'v4l2StreamOn'],
  qemu_dbus_bridge_evdev: ['EvdevDevice', 'evdevGrabFd', 'evdevEventLayout', 'evdevPackEvent'],
  qemu_dbus_bridge_libvirt: ['LibvirtConnection'],
} as const satisfies Record<string, readonly (keyof NativeAddon)[]>;

export type AddonName = keyof typeof ADDONS;
/** Every export of NativeAddon is in an addon's list (else a compile error here). */
const everyExportListed: Exclude<keyof NativeAddon, (typeof ADDONS)[AddonName][number]> extends never ? true : never = true;
void everyExportListed;

/** The addons and their exports (binding.gyp builds the same list; test/unit/native-core.test.ts checks both). */
export const ADDON_EXPORTS: Readonly<Record<AddonName, readonly string[]>> = ADDONS;

function addonPath(name: AddonName): string {
  // src/native.ts compiles to dist/src/native.js; vitest runs it from src/: both are two
  // levels below the package root only in the compiled case, so resolve from the package root.
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'build', 'Release', `${name}.node`);
    try {
      require.resolve(candidate);
      return candidate;
    } catch {
      dir = path.dirname(dir);
    }
  }
  return path.join(__dirname, '..', 'build', 'Release', `${name}.node`);
}

/**
 * An error the addon threw, as the project's one error shape. The addon throws only errors with
 * a `code` (native/addon.h: ThrowWithCode, ThrowErrno, js_args.h) whose message is the problem;
 * what a person should do about it depends on the code and on who called, so the fix is added
 * here, never parsed out of the text.
 */
export class NativeError extends CodedError {
  constructor(code: string, problem: string, fix = '', cause?: unknown) {
    super(code, problem, fix, cause !== undefined ? { cause } : {});
    this.name = 'NativeError';
  }
}

/** What to do about the addon's own codes, when the caller has nothing more specific. */
const NATIVE_FIXES: Readonly<Record<string, string>> = {
  // EINVAL/ECLOSED from the addon mean the TypeScript side passed what it validates itself.
  EINVAL: 'this is a bug in qemu-dbus-bridge (it passed the native addon an invalid argument): please report it',
  ECLOSED: 'this is a bug in qemu-dbus-bridge (it used a closed native stream): please report it',
  ENATIVE: 'build the native addon with: npm run setup',
  EPIPEWIRE: 'check that PipeWire runs for this user (XDG_RUNTIME_DIR, PIPEWIRE_REMOTE)',
  EPULSE: 'check that a PulseAudio server runs for this user (PULSE_SERVER, XDG_RUNTIME_DIR)',
};

/**
 * `err` as a NativeError when the addon threw it (an Error with a string code that is not yet a
 * CodedError); anything else unchanged. `fixes` overrides the fix per code for this caller
 * (e.g. audio adds "or choose --audio pulse").
 */
export function nativeError(err: unknown, fixes: Readonly<Record<string, string>> = {}): unknown {
  const code = errorCode(err);
  if (!code || err instanceof CodedError || !(err instanceof Error)) return err;
  return new NativeError(code, errorMessage(err), fixes[code] ?? NATIVE_FIXES[code] ?? '', err);
}

/** Runs an addon call, rethrowing what it throws through nativeError(). */
export function callNative<T>(fn: () => T, fixes?: Readonly<Record<string, string>>): T {
  try {
    return fn();
  } catch (err) {
    throw nativeError(err, fixes);
  }
}

function load<T>(name: AddonName): T {
  const file = addonPath(name);
  try {
    return require(file) as T;
  } catch (err) {
    throw new NativeError('ENATIVE', `native addon not loadable (${file}): ${errorMessage(err)}`, NATIVE_FIXES.ENATIVE, err);
  }
}

const loaded = new Map<AddonName, Record<string, unknown>>();

/**
 * Every native function and class. Each property is a getter until its addon is loaded; then the
 * addon's exports replace the getters as plain values, so a hot call (`native.yuvCompose` per
 * frame) costs a property read, nothing more. A missing or unloadable addon throws ENATIVE at the
 * first read of one of its exports, naming the file.
 */
export const native = {} as NativeAddon;
for (const [name, keys] of Object.entries(ADDONS) as [AddonName, readonly string[]][]) {
  const resolve = (): Record<string, unknown> => {
    let addon = loaded.get(name);
    if (!addon) {
      addon = load<Record<string, unknown>>(name);
      loaded.set(name, addon);
      for (const k of keys) Object.defineProperty(native, k, { value: addon[k], enumerable: true, configurable: true, writable: true });
    }
    return addon;
  };
  for (const k of keys) Object.defineProperty(native, k, { get: () => resolve()[k], enumerable: true, configurable: true });
}

export const socketpair = (): [number, number] => native.socketpair();
export const sdNotify = (text: string): boolean => native.sdNotify(text);
