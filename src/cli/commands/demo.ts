// `demo`: placeholder until the routes land (see the report in issue 8).
import type { CliIo } from '../main';

export function demoCommand(_argv: Record<string, unknown>, io: CliIo): Promise<number> {
  io.err('qemu-dbus-bridge demo: waiting for the QEMU D-Bus layer and the audio, camera and input routes to land; nothing was started');
  return Promise.resolve(1);
}
