// `run`: resolve the config (exit 2 on any problem), then bridge until a signal arrives.
// The service (D-Bus, the native addon) is loaded only after the config is known to be good, so
// a typo never depends on the native build.
import { setFlagsFromString } from 'v8';
import { ConfigFlags, resolveConfig } from '../../config/load';
import { UsageError } from '../../config/errors';
import { createLogger } from '../../log';
import type { CliIo } from '../main';
import { vmFromSystemdInstance } from '../systemd-instance';

/**
 * V8 sizes its heap for memory, not speed: a bridge holds little for long, and a host runs one
 * per VM (issue 17, resident memory per bridge). Not allowed in NODE_OPTIONS, so set here, before
 * the service is loaded; V8 reads it at each heap-sizing decision. The scale bench's fake VMs,
 * bridges side by side, same run: 69.0 against 70.8 MB Rss at the same CPU; with the unit's
 * `--jitless` (systemd/qemu-dbus-bridge@.service; together V8's `--lite-mode`) 61.8 against 63.7
 * (both before discovery stopped using ICU collation, which took ~2.5 MB more off each).
 */
const V8_RUN_FLAGS = '--optimize-for-size';

export async function runCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  setFlagsFromString(V8_RUN_FLAGS);
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
