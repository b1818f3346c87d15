// `qemu-dbus-bridge run`: the process around the Controller. Installs SIGTERM/SIGINT handlers
// (first signal: orderly stop within 2 s; a second one: exit at once), wires sd_notify, and
// resolves with the exit code once everything is stopped.
import type { BridgeConfig } from '../config/schema';
import type { Logger } from '../log';
import { Controller } from './controller';
import { SystemdNotifier } from './notify';
import type { Attacher, Route, VmLink } from './route';

export interface RunOptions<V extends VmLink> {
  config: BridgeConfig;
  log: Logger;
  attacher: Attacher<V>;
  routes: Route<V>[];
  notifier?: SystemdNotifier;
  /** For tests and the demo: resolves when the bridge should stop (in addition to signals). */
  until?: Promise<unknown>;
  /** Called once the controller exists (the demo subscribes to its events). */
  onController?: (c: Controller<V>) => void;
  /**
   * Publish the bridge on the user's session bus (src/service/status-bus): `vmName` is the VM as
   * configured (undefined: named at the first attach). Another bridge of the same VM makes this
   * one end at once with AlreadyBridgedError; no session bus is said once, and the bridge runs on.
   */
  statusBus?: { vmName: string | undefined; address?: string };
}

export async function runBridge<V extends VmLink>(opts: RunOptions<V>): Promise<number> {
  const { log } = opts;
  const notifier = opts.notifier ?? new SystemdNotifier();
  const controller = new Controller<V>({ attacher: opts.attacher, routes: opts.routes, log, notifier });
  opts.onController?.(controller);
  // Before attaching: a second bridge of the same VM must not touch the VM at all.
  const status = opts.statusBus ? await startStatusBus(controller, log, opts.statusBus) : undefined;

  let signals = 0;
  let resolveStop!: (why: string) => void;
  const stopRequested = new Promise<string>((r) => (resolveStop = r));
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      log.info(`${sig}: stopping`);
      resolveStop(sig);
    } else {
      // The user insists: do not wait for a hung route.
      log.warn(`${sig} again: exiting without waiting`);
      process.exit(1);
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A service runs until told to stop, even at moments when no socket or timer is pending.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let fatal: Error | undefined;
  try {
    controller.start();
    const never = new Promise<never>(() => undefined);
    await Promise.race([stopRequested, opts.until ?? never, controller.fatal.then((e) => (fatal = e)), status?.fatal.then((e) => (fatal = e)) ?? never]);
    await controller.stop();
    await status?.close();
  } finally {
    clearInterval(keepAlive);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  // The caller prints it as the one line that explains the exit (its `exitCode`, if any, is the status).
  if (fatal) throw fatal;
  return 0;
}

async function startStatusBus<V extends VmLink>(controller: Controller<V>, log: Logger, o: NonNullable<RunOptions<V>['statusBus']>) {
  // Loaded here: a bridge without the status bus never needs it.
  const { StatusService } = require('./status-bus/service') as typeof import('./status-bus/service');
  return StatusService.start({ controller, log: log.child('status'), vmName: o.vmName, address: o.address });
}
