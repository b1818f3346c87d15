// Entry point of `qemu-dbus-bridge`. Exit codes: 0 ok, 1 runtime failure, 2 usage or
// configuration error. Every failure prints exactly one line on stderr saying what is wrong
// and what to do; --help prints examples for each command.
import yargsFactory from 'yargs/yargs';
import { ConfigError, EXIT_CODE_MEANINGS, EXIT_OK, EXIT_PERMISSION, EXIT_RUNTIME, EXIT_USAGE, UsageError, isUsageProblem } from '../config/errors';
import { closest } from '../config/suggest';
import { withStatusCommands } from './commands/status-commands';
import { ALL_FLAGS, GLOBAL_GROUP, withConnectionOptions, withLogOptions, withRouteOptions, withSystemdInstanceOption } from './options';

const PROG = 'qemu-dbus-bridge';

const EPILOGUE = `Exit codes:
${EXIT_CODE_MEANINGS.map(([code, meaning]) => `  ${code}  ${meaning}`).join('\n')}
Config: $XDG_CONFIG_HOME/${PROG}/<vm>.toml, overridden by flags; every key is in docs/config-example.toml.
  Several webcams (one per console): [[camera]] entries instead of [camera], each with its console.`;

/** Error codes with an exit status of their own (see EPILOGUE); every other runtime failure is 1. */
const EXIT_FOR_CODE: Record<string, number> = { EBUS_PERMISSION: EXIT_PERMISSION };

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  env: process.env,
};

type Handler = (argv: Record<string, unknown>, io: CliIo) => Promise<number>;

/** Lazy so `--help` and usage errors load neither the addon nor D-Bus. */
function lazy(load: () => Handler): Handler {
  return (argv, io) => load()(argv, io);
}

const handlers: Record<string, Handler> = {
  run: lazy(() => (require('./commands/run') as typeof import('./commands/run')).runCommand),
  list: lazy(() => (require('./commands/list') as typeof import('./commands/list')).listCommand),
  devices: lazy(() => (require('./commands/devices') as typeof import('./commands/devices')).devicesCommand),
  doctor: lazy(() => (require('./commands/doctor') as typeof import('./commands/doctor')).doctorCommand),
  demo: lazy(() => (require('./commands/demo') as typeof import('./commands/demo')).demoCommand),
  'install-unit': lazy(() => (require('./commands/install-unit') as typeof import('./commands/install-unit')).installUnitCommand),
  status: lazy(() => (require('./commands/status') as typeof import('./commands/status')).statusCommand),
  grab: lazy(() => (require('./commands/status') as typeof import('./commands/status')).grabCommand),
  release: lazy(() => (require('./commands/status') as typeof import('./commands/status')).releaseCommand),
};

export const COMMANDS = Object.keys(handlers);

/** Unknown flag → one line with the closest real flag. */
function explainYargsFailure(msg: string, args: string[]): string {
  const first = args[0]?.startsWith('-') ? undefined : args[0];
  if (first !== undefined && !COMMANDS.includes(first)) {
    const guess = closest(first, COMMANDS);
    return `unknown command ${first}${guess ? ` (did you mean ${guess}?)` : ''}; commands: ${COMMANDS.join(', ')}`;
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(msg);
  if (unknown) {
    const name = unknown[1].split(',')[0].trim();
    const guess = closest(name.replace(/^-+/, ''), ALL_FLAGS);
    return `unknown option --${name.replace(/^-+/, '')}${guess ? ` (did you mean --${guess}?)` : ''}; see ${PROG} --help`;
  }
  return `${msg.replace(/\n+/g, '; ')}; see ${PROG} --help`;
}

export async function main(args: string[], io: CliIo = defaultIo): Promise<number> {
  let code: number | undefined;
  let failure: string | undefined;

  const run = (name: string) => async (argv: Record<string, unknown>) => {
    // yargs calls fail() for unknown flags and then STILL runs the handler: do not.
    if (code !== undefined) return;
    try {
      code = await handlers[name](argv, io);
    } catch (err) {
      if (isUsageProblem(err)) {
        failure = err.message;
        code = EXIT_USAGE;
      } else {
        const e = err as Error & { code?: string; exitCode?: unknown };
        failure = `${e.message}${e.code && !e.message.includes(e.code) ? ` [${e.code}]` : ''}`;
        code = typeof e.exitCode === 'number' ? e.exitCode : (EXIT_FOR_CODE[e.code ?? ''] ?? EXIT_RUNTIME);
        if (process.env.QDB_DEBUG) io.err(String(e.stack));
      }
    }
  };

  // --help lists the commands in this order: run, then the ones that talk to running bridges
  const withRun = yargsFactory(args)
    .scriptName(PROG)
    .usage(`${PROG} <command> [options]\n\nBridge a QEMU VM's display D-Bus (audio, screen, input) to PipeWire/PulseAudio, a webcam and host input devices.`)
    .command(
      'run',
      'bridge one VM until stopped (SIGTERM/SIGINT stop it cleanly)',
      (c) =>
        withSystemdInstanceOption(withRouteOptions(withLogOptions(withConnectionOptions(c))))
          .example(`$0 run --vm win11`, 'bridge the VM named win11 on the session bus with ~/.config/qemu-dbus-bridge/win11.toml')
          .example(`$0 run --libvirt win11 --camera /dev/video10`, 'the libvirt domain win11 (qemu:///session; followed across VM restarts), webcam on /dev/video10')
          .example(`$0 run --qmp /tmp/vm.qmp --audio pulse --audio-sink alsa_output.usb-headset`, 'a VM started with -display dbus,p2p=yes; audio to a PulseAudio sink')
          .example(`$0 run --vm win11 --input /dev/input/by-id/usb-Logitech-event-kbd --grab-toggle scrolllock`, 'forward a keyboard, Scroll Lock toggles the grab'),
      run('run'),
    );
  const y = withStatusCommands(withRun, run)
    .command(
      'list',
      'list the VMs on a bus: name, UUID, consoles, audio, capabilities',
      (c) =>
        withLogOptions(withConnectionOptions(c))
          .option('json', { type: 'boolean', describe: 'machine-readable output' })
          .example('$0 list', 'VMs on the session bus')
          .example('$0 list --address unix:path=/run/user/1000/qemu.bus', 'VMs on another bus')
          .example('$0 list --qmp /run/user/1000/win11.qmp', 'the VM behind a QMP socket (-display dbus,p2p=yes)')
          .example('$0 list --libvirt win11', "libvirt domain win11's VM, wherever its display is now"),
      run('list'),
    )
    .command(
      'devices',
      'list host devices: input devices, sound sinks and sources, v4l2loopback webcams',
      (c) =>
        withLogOptions(c)
          .option('json', { type: 'boolean', describe: 'machine-readable output' })
          .example('$0 devices', 'what can be passed to --input, --audio-sink, --audio-source and --camera'),
      run('devices'),
    )
    .command(
      'doctor',
      'check every prerequisite and print the fix for each failure',
      (c) =>
        withLogOptions(withConnectionOptions(c))
          .example('$0 doctor', 'sound server, v4l2loopback, /dev/input access, QEMU on the session bus')
          .example('$0 doctor --vm win11', 'also check that VM win11 has -display dbus with audio wired')
          .example('$0 doctor --libvirt win11', "check libvirt domain win11's XML (D-Bus display, audio, input) and print the XML to add"),
      run('doctor'),
    )
    .command(
      'demo',
      'boot the bundled guest on a private bus and bridge it (audio, camera, typing) with a live status line',
      (c) =>
        withLogOptions(c)
          .option('duration', { type: 'number', describe: 'stop after this many seconds (default: until Ctrl-C)' })
          .example('$0 demo', 'everything it starts is stopped again on Ctrl-C')
          .example('$0 demo --duration 60', 'run for one minute'),
      run('demo'),
    )
    .command(
      'install-unit',
      'install the systemd user unit qemu-dbus-bridge@.service for this installation (not needed with the Debian package)',
      (c) =>
        withLogOptions(c)
          .option('dir', { type: 'string', describe: 'unit directory (default: $XDG_CONFIG_HOME/systemd/user, i.e. ~/.config/systemd/user)' })
          .option('bin', { type: 'string', describe: 'absolute path of the program ExecStart runs (default: this installation)' })
          .example('$0 install-unit', 'then: systemctl --user daemon-reload && systemctl --user enable --now qemu-dbus-bridge@win11'),
      run('install-unit'),
    )
    .demandCommand(1, `a command is needed: ${COMMANDS.join(', ')}`)
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .group(['help', 'version'], GLOBAL_GROUP)
    .epilogue(EPILOGUE)
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      failure = explainYargsFailure(msg ?? 'invalid command line', args);
      code = EXIT_USAGE;
    });

  try {
    await y.parseAsync();
  } catch (err) {
    if (code === undefined) {
      failure = isUsageProblem(err) ? err.message : (err as Error).message;
      code = isUsageProblem(err) ? EXIT_USAGE : EXIT_RUNTIME;
    }
  }
  if (failure !== undefined) io.err(`${PROG}: ${failure}`);
  return code ?? EXIT_OK;
}

export { ConfigError, UsageError };

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (c) => {
      process.exitCode = c;
    },
    (err: unknown) => {
      process.stderr.write(`${PROG}: ${(err as Error).message}\n`);
      process.exitCode = EXIT_RUNTIME;
    },
  );
}
