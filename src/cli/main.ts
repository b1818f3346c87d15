// Entry point of `qemu-dbus-bridge`. Exit codes: 0 ok, 1 runtime failure, 2 usage or
// configuration error. Every failure prints exactly one line on stderr saying what is wrong
// and what to do; --help prints examples for each command.
import yargsFactory from 'yargs/yargs';
import { ConfigError, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, UsageError, isUsageProblem } from '../config/errors';
import { closest } from '../config/suggest';
import { ALL_FLAGS, GLOBAL_GROUP, withConnectionOptions, withLogOptions, withRouteOptions, withSystemdInstanceOption } from './options';

const PROG = 'qemu-dbus-bridge';

const EPILOGUE = `Exit codes:
  0  ok
  1  runtime failure (VM or sound server unreachable, a crash)
  2  usage or configuration error (the message names the flag or file and key)
Config: $XDG_CONFIG_HOME/${PROG}/<vm>.toml, overridden by flags; every key is in docs/config-example.toml.`;

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
        const e = err as Error & { code?: string };
        failure = `${e.message}${e.code && !e.message.includes(e.code) ? ` [${e.code}]` : ''}`;
        code = EXIT_RUNTIME;
        if (process.env.QDB_DEBUG) io.err(String(e.stack));
      }
    }
  };

  const y = yargsFactory(args)
    .scriptName(PROG)
    .usage(`${PROG} <command> [options]\n\nBridge a QEMU VM's display D-Bus (audio, screen, input) to PipeWire/PulseAudio, a webcam and host input devices.`)
    .command(
      'run',
      'bridge one VM until stopped (SIGTERM/SIGINT stop it cleanly)',
      (c) =>
        withSystemdInstanceOption(withRouteOptions(withLogOptions(withConnectionOptions(c))))
          .example(`$0 run --vm win11`, 'bridge the VM named win11 on the session bus with ~/.config/qemu-dbus-bridge/win11.toml')
          .example(`$0 run --address unix:path=/run/libvirt/qemu/dbus/1-win11-dbus.sock --vm win11 --camera /dev/video10`, "a libvirt VM's private bus, webcam on /dev/video10")
          .example(`$0 run --qmp /tmp/vm.qmp --audio pulse --audio-sink alsa_output.usb-headset`, 'a VM started with -display dbus,p2p=yes; audio to a PulseAudio sink')
          .example(`$0 run --vm win11 --input /dev/input/by-id/usb-Logitech-event-kbd --grab-toggle scrolllock`, 'forward a keyboard, Scroll Lock toggles the grab'),
      run('run'),
    )
    .command(
      'list',
      'list the VMs on a bus: name, UUID, consoles, audio, capabilities',
      (c) =>
        withLogOptions(withConnectionOptions(c))
          .option('json', { type: 'boolean', describe: 'machine-readable output' })
          .example('$0 list', 'VMs on the session bus')
          .example('$0 list --address unix:path=/run/libvirt/qemu/dbus/1-win11-dbus.sock', "VMs on a libvirt VM's bus"),
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
          .example('$0 doctor --vm win11', 'also check that VM win11 has -display dbus with audio wired'),
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
