// The ONE place that loads the native addon (build/Release/qemu_dbus_bridge.node).
// Everything else imports `native` (or the helpers below) from here, never the .node file,
// so tests can swap in fakes through the handler/backend interfaces instead.
//
// The addon's surface is declared per concern in src/native-api/*.ts.
import * as path from 'path';
import type { AudioNativeApi } from './native-api/audio';
import type { CaptureNativeApi } from './native-api/capture';
import type { CoreNativeApi } from './native-api/core';
import type { FdNativeApi } from './native-api/fd';
import type { EvdevNativeApi } from './native-api/evdev';
import type { LibvirtNativeApi } from './native-api/libvirt';
import type { VideoNativeApi } from './native-api/video';

export type NativeAddon = CoreNativeApi & EvdevNativeApi & AudioNativeApi & VideoNativeApi & CaptureNativeApi & FdNativeApi & LibvirtNativeApi;

function addonPath(): string {
  // src/native.ts compiles to dist/src/native.js; vitest runs it from src/: both are two
  // levels below the package root only in the compiled case, so resolve from the package root.
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'build', 'Release', 'qemu_dbus_bridge.node');
    try {
      require.resolve(candidate);
      return candidate;
    } catch {
      dir = path.dirname(dir);
    }
  }
  return path.join(__dirname, '..', 'build', 'Release', 'qemu_dbus_bridge.node');
}

function load(): NativeAddon {
  const file = addonPath();
  try {
    return require(file) as NativeAddon;
  } catch (err) {
    const e = new Error(
      `native addon not loadable (${file}): ${(err as Error).message}. Build it with: npm run setup`,
    ) as Error & { code: string };
    e.code = 'ENATIVE';
    throw e;
  }
}

export const native: NativeAddon = load();

export const socketpair = (): [number, number] => native.socketpair();
export const sdNotify = (text: string): boolean => native.sdNotify(text);
