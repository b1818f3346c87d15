// `demo` (npm run demo): everything a new user needs to see the bridge work, with nothing to set
// up. Boots the bundled test guest (QEMU 7.2, TCG) on a private D-Bus, uses the user's PipeWire
// or starts a private headless one, and bridges the guest's tone, its screen (a test pattern) and
// a replayed typing script. A live status line shows the audio level, camera frames per second
// and input events; the commands to hear and see the result are printed. Ctrl-C (or --duration)
// stops everything this command started, by PID.
import * as fs from 'fs';
import * as path from 'path';
import { ConfigSchema, cameraEntries } from '../../config/schema';
import { createLogger, type Logger } from '../../log';
import type { CliIo } from '../main';
import { CodedError } from '../../service/route';

/** Typed into the guest every few seconds (the guest logs every key it receives). */
const TYPING = 'hello from qemu-dbus-bridge\n';

function fmtDb(db: number): string {
  return Number.isFinite(db) ? `${db.toFixed(0).padStart(3)} dBFS` : ' silent ';
}

export async function demoCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const duration = argv.duration as number | undefined;
  const config = ConfigSchema.parse({
    log: { format: (argv.logFormat as string | undefined) ?? 'text', level: (argv.logLevel as string | undefined) ?? 'warn' },
    audio: { backend: 'pipewire', microphone: false },
    camera: { device: 'pipewire' },
  });
  const log: Logger = createLogger({ format: config.log.format, level: config.log.level });
  const say = (line: string): void => io.out(line);

  // The demo boots the test guest through the test harness, which only a clone of the repository
  // has (not the Debian or npm package). Loaded here, not at the top: the harness and the service
  // pull in QEMU, PipeWire and the addon. Asked of require itself, not of a path on disk, so that it
  // holds for dist/ and for a bundle of the CLI alike.
  let harness: typeof import('../../../test/harness/qemu');
  try {
    harness = require('../../../test/harness/qemu') as typeof import('../../../test/harness/qemu');
  } catch (err) {
    if ((err as { code?: string }).code !== 'MODULE_NOT_FOUND') throw err;
    throw new CodedError(
      'EDEMO_NEEDS_CLONE',
      'demo boots the test guest, which only a clone of the repository has',
      'git clone the repository and run npm run demo there',
    );
  }
  const { startGuest, buildGuest } = harness;
  const { startPipeWire } = require('../../../test/harness/pipewire') as typeof import('../../../test/harness/pipewire');
  const { probeUnixSocket, pipewireSocketPath } = require('../../audio/backend') as typeof import('../../audio/backend');
  const { EventScript, writeEvents } = require('../../input/replay-writer') as typeof import('../../input/replay-writer');
  const { cameraNodeName } = require('../../camera/sinks/pipewire') as typeof import('../../camera/sinks/pipewire');
  const { createAttacher } = require('../../service/attach') as typeof import('../../service/attach');
  const { runBridge } = require('../../service/run') as typeof import('../../service/run');
  const { AudioOutRoute, CameraRoute, InputRoute } = require('../../service/routes') as typeof import('../../service/routes');

  const started: string[] = [];
  let pw: Awaited<ReturnType<typeof startPipeWire>> | undefined;
  let guest: Awaited<ReturnType<typeof startGuest>> | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  let feeder: NodeJS.Timeout | undefined;
  let fifoFd: number | undefined;
  let fifoHandle: fs.promises.FileHandle | undefined;
  const tty = process.stdout.isTTY === true;
  const work = fs.mkdtempSync('/tmp/qdb-demo-');
  try {
    // 1. a sound server: the user's PipeWire if it answers, else a private headless one
    const userPw = pipewireSocketPath(io.env);
    if ((await probeUnixSocket(userPw)) === null) {
      say(`PipeWire: using yours (${userPw}); the guest's tone plays on your default output`);
    } else {
      say('PipeWire: none running for this user; starting a private headless one (pipewire + wireplumber)…');
      pw = await startPipeWire();
      started.push(`pipewire pid ${pw.pid}`, `wireplumber pid ${pw.wireplumberPid}`);
      // The addon and the tools read these: point everything at the private server.
      Object.assign(process.env, pw.env);
    }

    // 2. the guest on its own bus
    say('Guest: building the bundled test guest (cached after the first time)…');
    await buildGuest();
    const name = `demo-${process.pid}`;
    say(`Guest: booting QEMU 7.2 (TCG, no KVM needed) as VM '${name}' on a private D-Bus…`);
    // The guest builds each tone in RAM: one minute at a time (10 MB), repeated for an hour.
    const tones = Array.from({ length: 60 }, () => 'tone' as const);
    guest = await startGuest({ scenario: ['pattern', ...tones], name, params: { tone_hz: 440, tone_ms: 60_000, volume: 60 } });
    started.push(`qemu pid ${guest.pid}`);
    if (guest.bus) started.push(`dbus-daemon pid ${guest.bus.pid}`);

    // 3. typing: a FIFO the input route reads; fed once the guest's keyboard driver is up
    const fifo = path.join(work, 'typing.fifo');
    const { spawnSync } = require('child_process') as typeof import('child_process');
    if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error(`mkfifo ${fifo} failed`);

    const bridgeConfig = ConfigSchema.parse({
      ...config,
      connection: { address: guest.busAddress, vm: name },
      // The private server's null sink (its default anyway): named, so the status line says where.
      audio: { ...config.audio, sink: pw ? pw.sink : '' },
      input: { replay: [fifo], grab: false },
    });
    const audio = new AudioOutRoute(bridgeConfig, { meter: true });
    const camera = new CameraRoute(cameraEntries(bridgeConfig)[0]);
    const input = new InputRoute(bridgeConfig);
    const g = guest;

    say('');
    say('While it runs, in another terminal:');
    const envPrefix = pw ? `XDG_RUNTIME_DIR=${pw.env.XDG_RUNTIME_DIR} PIPEWIRE_REMOTE=${pw.env.PIPEWIRE_REMOTE} ` : '';
    say(`  hear:  ${envPrefix}pw-record -P '{ stream.capture.sink=true }' --target ${pw ? 'vm-sink' : '@DEFAULT_SINK@'} /tmp/vm-audio.wav   (Ctrl-C, then play it)`);
    say(`  see:   ${envPrefix}gst-launch-1.0 pipewiresrc target-object=${cameraNodeName(name)} num-buffers=1 ! videoconvert ! pngenc ! filesink location=/tmp/vm-screen.png`);
    if (!pw) say(`         (or any webcam app: the camera is "${name} screen")`);
    say(`  keys:  the guest logs every key it receives: tail -f ${path.join(g.dir, 'serial.log')} | grep ' EV '`);
    say(`Started (stopped again on exit, by PID): ${started.join(', ')}`);
    say('Ctrl-C stops everything.');
    say('');

    let stopDemo!: () => void;
    const until = new Promise<void>((r) => (stopDemo = r));
    if (duration !== undefined) setTimeout(() => stopDemo(), duration * 1000).unref();

    // Open the writing end now (in the thread pool: it waits for the reader, the input route).
    const writer = fs.promises.open(fifo, 'w');
    const onGuestReady = async (): Promise<void> => {
      const fh = await writer;
      fifoHandle = fh;
      fifoFd = fh.fd;
      await g.waitForSerial(/MARK ready/, 180_000);
      // One frame (one key press or release) every 20 ms, as a fast typist: the whole sentence at
      // once is a burst of presses the forwarder's press budget (DEFAULT_CALL_BUDGET) drops.
      const frames = new EventScript().typeText(TYPING).frames();
      let typing: NodeJS.Timeout | undefined;
      const typeOnce = (): void => {
        if (typing) return;
        let next = 0;
        typing = setInterval(() => {
          try {
            if (fifoFd === undefined || next >= frames.length) {
              clearInterval(typing);
              typing = undefined;
              return;
            }
            writeEvents(fifoFd, frames[next++]);
          } catch (err) {
            clearInterval(typing);
            typing = undefined;
            log.warn(`typing stopped: ${(err as Error).message}`);
          }
        }, 20);
        typing.unref();
      };
      typeOnce();
      feeder = setInterval(typeOnce, 5000);
    };
    onGuestReady().catch((err: Error) => log.warn(`typing not started: ${err.message}`));

    let lastFrames = 0;
    let lastT = Date.now();
    const code = await runBridge({
      config: bridgeConfig,
      log,
      attacher: createAttacher(bridgeConfig, log),
      routes: [audio, camera, input],
      until,
      onController: (c) => {
        statusTimer = setInterval(() => {
          const now = Date.now();
          const cs = camera.stats();
          const frames = cs?.written ?? 0;
          const fps = ((frames - lastFrames) * 1000) / Math.max(1, now - lastT);
          // The pipeline writes only while somebody watches: say so instead of "0 fps".
          const viewing = cs !== undefined && frames > lastFrames;
          lastFrames = frames;
          lastT = now;
          const s = input.stats();
          const events = s ? s.keysForwarded + s.buttonsForwarded + s.motions + s.wheelNotches : 0;
          const line = `audio ${fmtDb(audio.takeLevelDb())} · camera ${viewing ? `${fps.toFixed(1).padStart(4)} fps` : 'no viewer'} · input ${String(events).padStart(4)} events · ${c.statusLine()}`;
          if (tty) process.stdout.write(`\r\x1b[2K${line.slice(0, (process.stdout.columns ?? 200) - 1)}`);
          else say(line);
        }, 1000);
      },
    });
    if (tty) process.stdout.write('\n');
    return code;
  } finally {
    if (statusTimer) clearInterval(statusTimer);
    if (feeder) clearInterval(feeder);
    fifoFd = undefined;
    if (fifoHandle) await fifoHandle.close();
    else {
      // The writer may still wait for a reader that never came (input route failed): be that
      // reader for a moment so the pending open returns and the process can exit.
      try {
        fs.closeSync(fs.openSync(path.join(work, 'typing.fifo'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
      } catch {
        /* no FIFO yet */
      }
    }
    say('Stopping what the demo started…');
    await guest?.stop();
    await pw?.stop();
    fs.rmSync(work, { recursive: true, force: true });
    if (started.length) say(`Stopped: ${started.join(', ')}`);
  }
}
