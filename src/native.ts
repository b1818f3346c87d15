// The ONE place that loads the native addon (build/Release/qemu_dbus_bridge.node).
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

/** The addons in build/Release: the main one, and libvirt's, loaded only when a libvirt domain is bridged. */
type AddonName = 'qemu_dbus_bridge' | 'qemu_dbus_bridge_libvirt';

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

/**
 * Every native function and class. libvirt's part is a separate addon (libvirt.so and what it
 * pulls in cost about 11 MB of resident memory at load), required the first time
 * `LibvirtConnection` is read: a bridge that never talks to libvirt never loads it.
 */
export const native: NativeAddon = Object.defineProperty(load<Omit<NativeAddon, keyof LibvirtNativeApi>>('qemu_dbus_bridge'), 'LibvirtConnection', {
  get: (): LibvirtNativeApi['LibvirtConnection'] => (libvirtAddon ??= load<LibvirtNativeApi>('qemu_dbus_bridge_libvirt')).LibvirtConnection,
  enumerable: true,
}) as NativeAddon;
let libvirtAddon: LibvirtNativeApi | undefined;

export const socketpair = (): [number, number] => native.socketpair();
export const sdNotify = (text: string): boolean => native.sdNotify(text);
