// Playback contract suite against the REAL native streams on private sound servers started here.
import { afterAll, beforeAll, describe } from 'vitest';
import { native } from '../../src/native';
import { startPipeWire, PipeWire } from '../harness/pipewire';
import { startPulseAudio, Pulse } from '../harness/pulseaudio';
import { baseOptions, playbackContract } from '../contracts/playback.contract';

describe('playback contract: PipeWire (PwPlayback)', () => {
  let pw: PipeWire;
  beforeAll(async () => {
    pw = await startPipeWire();
  });
  afterAll(async () => {
    await pw?.stop();
  });
  playbackContract((o) => {
    const Ctor = native.PwPlayback;
    if (!Ctor) throw new Error('addon lacks PwPlayback: build it with bash scripts/build-native.sh');
    return new Ctor(baseOptions({ remote: pw.socketPath, ...o }));
  }, { followsSchedule: true });
});

describe('playback contract: PulseAudio (PulsePlayback)', () => {
  let pa: Pulse;
  beforeAll(async () => {
    pa = await startPulseAudio();
  });
  afterAll(async () => {
    await pa?.stop();
  });
  playbackContract((o) => {
    const Ctor = native.PulsePlayback;
    if (!Ctor) throw new Error('addon lacks PulsePlayback: build it with bash scripts/build-native.sh');
    return new Ctor(baseOptions({ remote: pa.server, ...o }));
  }, { followsSchedule: false });
});
