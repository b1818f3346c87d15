// The yargs definitions of `status`, `grab` and `release` (loaded with --help; the handlers in
// status.ts are loaded only when run, so help needs no D-Bus).
import type { Argv } from 'yargs';

type Run = (name: string) => (argv: Record<string, unknown>) => Promise<void>;

export const STATUS_COMMANDS = ['status', 'grab', 'release'] as const;

export function withStatusCommands<T>(y: Argv<T>, run: Run): Argv<T> {
  return y
    .command(
      'status',
      'show what every running bridge is doing: VM, routes, live counters, where the keyboard goes (read from the session bus)',
      (c) =>
        c
          .option('vm', { type: 'string', describe: 'only the bridge of this VM (fails when it has none)' })
          .option('json', { type: 'boolean', describe: 'machine-readable output; schema in docs/status.schema.json (docs/status-bus.md)' })
          .option('watch', { type: 'boolean', describe: 'refresh every second (in place on a terminal; --json: one object per line)' })
          .example('$0 status', 'one row per bridged VM: attached?, audio format and underruns, mic, camera fps, input grabbed or released')
          .example('$0 status --vm win11 --json', "win11's bridge with every counter, for scripts")
          .example('$0 status --watch', 'live view; Ctrl-C ends it')
          .epilogue('Each bridge is on the session bus as io.github.qemu_dbus_bridge.Vm.<VM>; busctl --user introspect <that name> /io/github/qemu_dbus_bridge/Bridge shows the same object.'),
      run('status'),
    )
    .command(
      'grab',
      "send the keyboard and mouse of a bridged VM to the guest (as the grab hotkey does)",
      (c) => c.option('vm', { type: 'string', demandOption: true, describe: 'VM whose bridge grabs' }).example('$0 grab --vm win11', 'input goes to win11'),
      run('grab'),
    )
    .command(
      'release',
      'give the keyboard and mouse of a bridged VM back to the host (keys held in the guest are released)',
      (c) => c.option('vm', { type: 'string', demandOption: true, describe: 'VM whose bridge releases' }).example('$0 release --vm win11', 'input goes back to the host'),
      run('release'),
    ) as Argv<T>;
}
