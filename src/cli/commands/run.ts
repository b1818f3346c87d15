// `run`: resolve the config (exit 2 on any problem), then bridge until a signal arrives.
// The service (D-Bus, the native addon) is loaded only after the config is known to be good, so
// a typo never depends on the native build.
import { ConfigFlags, resolveConfig } from '../../config/load';
import { UsageError } from '../../config/errors';
import { createLogger } from '../../log';
import type { CliIo } from '../main';
import { vmFromSystemdInstance } from '../systemd-instance';

export async function runCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const instance = argv['systemd-instance'];
  if (typeof instance === 'string') {
    if (argv.vm !== undefined) throw new UsageError('--vm and --systemd-instance both name the VM: give one of them');
    argv = { ...argv, vm: vmFromSystemdInstance(instance) };
  }
  const { config, file } = resolveConfig(argv as ConfigFlags & { config?: string }, io.env);
  const log = createLogger({ format: config.log.format, level: config.log.level });
  if (file) log.info(`config: ${file}`);
  const { createAttacher } = require('../../service/attach') as typeof import('../../service/attach');
  const { runBridge } = require('../../service/run') as typeof import('../../service/run');
  const { buildRoutes } = require('../../service/routes') as typeof import('../../service/routes');
  const routes = buildRoutes(config);
  if (routes.length === 0) log.warn('every route is off (audio none, camera none, no input): only attaching');
  // On the session bus as io.github.qemu_dbus_bridge.Vm.<VM> (see `status`); the VM as configured.
  const statusBus = { vmName: config.connection.vm ?? config.connection.libvirt };
  return runBridge({ config, log, attacher: createAttacher(config, log), routes, statusBus });
}
