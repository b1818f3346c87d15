// `install-unit`: puts the systemd user unit where `systemctl --user` finds it, with ExecStart
// pointing at this installation (for an `npm install -g`; the Debian package ships the unit in
// /usr/lib/systemd/user/ already). Idempotent; prints the commands that enable a VM.
import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../config/errors';
import { INSTALLED_BIN, renderUnit, unitTemplatePath, userUnitDir, writeUnit } from '../unit';
import type { CliIo } from '../main';

export async function installUnitCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  let dir: string;
  try {
    dir = (argv.dir as string | undefined) ?? userUnitDir(io.env);
  } catch (err) {
    throw new UsageError(`cannot find your systemd user unit directory: ${(err as Error).message}; pass --dir`);
  }
  const bin = (argv.bin as string | undefined) ?? INSTALLED_BIN;
  if (!path.isAbsolute(bin) || /\s/.test(bin)) throw new UsageError(`--bin must be an absolute path without spaces, got "${bin}"`);
  const template = fs.readFileSync(unitTemplatePath(), 'utf8');
  const { file, changed } = writeUnit(dir, renderUnit(template, bin));
  io.out(`${changed ? 'installed' : 'up to date'}: ${file} (ExecStart=${bin})`);
  io.out('enable it for a VM (the instance name is the VM name, QEMU -name):');
  io.out('  systemctl --user daemon-reload');
  io.out('  systemctl --user enable --now qemu-dbus-bridge@<vm>');
  return 0;
}
