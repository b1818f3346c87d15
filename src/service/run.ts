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
}

export async function runBridge<V extends VmLink>(opts: RunOptions<V>): Promise<number> {
  const { log } = opts;
  const notifier = opts.notifier ?? new SystemdNotifier();
  const controller = new Controller<V>({ attacher: opts.attacher, routes: opts.routes, log, notifier });
  opts.onController?.(controller);

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
    await Promise.race([stopRequested, opts.until ?? new Promise(() => undefined), controller.fatal.then((e) => (fatal = e))]);
    await controller.stop();
  } finally {
    clearInterval(keepAlive);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  // The caller prints it as the one line that explains the exit (its `exitCode`, if any, is the status).
  if (fatal) throw fatal;
  return 0;
}
