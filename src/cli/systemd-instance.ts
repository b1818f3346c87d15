// The VM name inside a systemd instance name (qemu-dbus-bridge@<instance>.service). The unit
// passes the RAW instance (%i), not systemd's unescaped one (%I): %I turns every '-' into '/'
// (systemd's path escaping), so `qemu-dbus-bridge@win-11` would look for a VM named "win/11"
// and never find it. Here '\xNN' escapes are decoded (what `systemd-escape` and systemctl's
// name mangling produce for spaces, non-ASCII and a leading '.') and '-' stays '-':
//   win-11, win\x2d11 -> "win-11"; my\x20vm -> "my vm"; \xc3\xbcn\xc3\xafcode -> "ünïcode".
// A VM whose name contains '/' cannot be named this way (use a drop-in with --vm).
import { UsageError } from '../config/errors';

export function vmFromSystemdInstance(instance: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < instance.length; ) {
    if (instance[i] === '\\') {
      const m = /^\\x([0-9a-fA-F]{2})/.exec(instance.slice(i));
      if (!m) throw new UsageError(`--systemd-instance "${instance}": "\\" must start a \\xNN escape (as systemd-escape writes them)`);
      bytes.push(parseInt(m[1], 16));
      i += 4;
    } else {
      const cp = instance.codePointAt(i)!;
      bytes.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
      i += cp > 0xffff ? 2 : 1;
    }
  }
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw new UsageError(`--systemd-instance "${instance}": its \\xNN escapes are not UTF-8 text`);
  }
  if (name === '') throw new UsageError('--systemd-instance is empty: give the VM name (the unit passes %i)');
  return name;
}
