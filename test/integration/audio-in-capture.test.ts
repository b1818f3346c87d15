// The capture contract (test/unit/audio-in-capture.contract.ts) against the addon's PwCapture and
// PulseCapture on real servers started here: PipeWire + WirePlumber with the null source vm-mic,
// and PulseAudio 16 with vm-mic remapped from the monitor of vm-mic-in. The tone is played into
// the virtual microphone with pw-play + pw-link / paplay (test/harness/audio-capture.ts).
import * as path from 'path';
import { nativeCaptureOpener } from '../../src/audio/in/native-capture';
import { makeToneWav, startFeed } from '../harness/audio-capture';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { sleep, tempDir } from '../harness/procs';
import { captureContract } from '../unit/audio-in-capture.contract';

function toneFeeder(getServer: () => PipeWire | Pulse, dir: () => string) {
  return async (_stream: unknown, hz: number, ms: number) => {
    const server = getServer();
    // Leading silence: a new PulseAudio stream loses its first ~10 ms.
    const wav = await makeToneWav(path.join(dir(), `tone-${hz}-${ms}.wav`), { hz, ms, rate: 48000, channels: 2, padBeforeMs: 50, padAfterMs: 100 });
    const feed = await startFeed(server, wav);
    return { done: feed.done, stop: () => feed.stop() };
  };
}

let pw: PipeWire | undefined;
let pwDir = '';
captureContract('PipeWire (PwCapture)', {
  setup: async () => {
    pw = await startPipeWire();
    pwDir = tempDir('mic-pw');
  },
  teardown: async () => {
    await pw?.stop();
  },
  open: (req) => nativeCaptureOpener('pipewire')({ ...req, remote: pw!.socketPath, source: pw!.source }),
  startTone: toneFeeder(() => pw!, () => pwDir),
  idle: (_s, ms) => sleep(ms),
});

let pa: Pulse | undefined;
let paDir = '';
captureContract('PulseAudio (PulseCapture)', {
  setup: async () => {
    pa = await startPulseAudio();
    paDir = tempDir('mic-pa');
  },
  teardown: async () => {
    await pa?.stop();
  },
  open: (req) => nativeCaptureOpener('pulse')({ ...req, remote: pa!.server, source: pa!.source }),
  startTone: toneFeeder(() => pa!, () => paDir),
  idle: (_s, ms) => sleep(ms),
});
