// The capture contract (test/contracts/capture.contract.ts) against the addon's PwCapture and
// PulseCapture on real servers started here: PipeWire + WirePlumber with the null source vm-mic,
// and PulseAudio 16 with vm-mic remapped from the monitor of vm-mic-in. The tone is played into
// the virtual microphone with pw-play + pw-link / paplay (test/harness/audio-capture.ts).
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { audioBackendFor } from '../../src/audio/backend';
import { makeToneWav, startFeed } from '../harness/audio-capture';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { sleep, tempDir, waitFor } from '../harness/procs';
import { captureContract, captureOptions } from '../contracts/capture.contract';

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
  backend: () => audioBackendFor('pipewire', pw!.env),
  source: () => pw!.source,
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
  backend: () => audioBackendFor('pulse', pa!.env),
  source: () => pa!.source,
  startTone: toneFeeder(() => pa!, () => paDir),
  idle: (_s, ms) => sleep(ms),
});

describe('capture errors the user can act on', () => {
  it('PulseAudio unreachable: EPULSE at open, naming what to check', () => {
    const backend = audioBackendFor('pulse');
    const open = (): unknown =>
      backend.openCapture(captureOptions(backend, { format: 'S16LE', rate: 44100, channels: 2, vmName: 'nobody', remote: 'unix:/nonexistent/qdb/pulse/native' }), () => undefined);
    expect(open).toThrow(expect.objectContaining({ code: 'EPULSE', problem: expect.stringMatching(/^cannot connect to PulseAudio at unix:\/nonexistent\/qdb\/pulse\/native \(/), fix: expect.stringMatching(/PULSE_SERVER/) }));
  });

  it('PipeWire: a named source that does not exist never links to another microphone', async () => {
    const server = await startPipeWire();
    const states: string[] = [];
    const backend = audioBackendFor('pipewire', server.env);
    const s = backend.openCapture(captureOptions(backend, { format: 'S16LE', rate: 44100, channels: 2, vmName: 'nosource', source: 'no-such-mic' }), (st, msg) => states.push(`${st}: ${msg}`));
    try {
      // WirePlumber drops a stream whose target does not exist (node.dont-reconnect): reported
      // as an error naming the source, and nothing was captured from the default source.
      const err = await waitFor('an error state', 20_000, () => states.find((x) => x.startsWith('error')));
      expect(err).toMatch(/no-such-mic/);
      expect(s.stats().capturedBytes).toBe(0);
      expect((await server.nodesByName()).has('qemu-nosource-mic')).toBe(false);
    } finally {
      s.close();
      await server.stop();
    }
  });
});
