// Guest speaker -> Speaker handler -> REAL PulseAudio 16 (private daemon, null sink vm-sink) ->
// parecord of vm-sink.monitor -> analysis. Same suite as the PipeWire backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectAudioBackend, PlaybackBackend } from '../../src/audio/backend';
import { startPulseAudio, Pulse } from '../harness/pulseaudio';
import { sleep } from './audio-out-helpers';
import { speakerSuite } from './audio-out-speaker-suite';

let pa: Pulse;
let backend: PlaybackBackend;

beforeAll(async () => {
  pa = await startPulseAudio();
  // No PipeWire socket in this environment: auto must fall back to PulseAudio.
  const b = await selectAudioBackend('auto', { env: { ...pa.env, XDG_RUNTIME_DIR: pa.dir, PIPEWIRE_REMOTE: `${pa.dir}/no-pipewire-here` } });
  if (!b) throw new Error('selectAudioBackend(auto) returned no backend');
  backend = b;
});
afterAll(async () => {
  await pa?.stop();
});

async function sinkInputProps(appName: string): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  for (;;) {
    const r = await pa.run('pactl', ['--format=json', 'list', 'sink-inputs']);
    const found = (JSON.parse(r.stdout) as Array<{ properties?: Record<string, string> }>).find((s) => s.properties?.['node.name'] === appName);
    if (found?.properties) return found.properties;
    if (Date.now() - t0 > 15_000) throw new Error(`no sink-input with node.name=${appName}: ${r.stdout.slice(0, 2000)}`);
    await sleep(100);
  }
}

describe('speaker on PulseAudio', () => {
  it('auto falls back to PulseAudio when no PipeWire socket answers', () => {
    expect(backend.kind).toBe('pulse');
    expect(backend.where).toBe(pa.server);
  });

  speakerSuite({
    server: () => pa,
    backend: () => backend,
    streamProps: sinkInputProps,
    expectedProps: (vm) => ({
      'application.name': `QEMU ${vm}`,
      'media.name': `${vm} speaker`,
      'media.role': 'game',
      'application.icon_name': 'qemu',
    }),
    addSink: async (name) => {
      await pa.run('pactl', ['load-module', 'module-null-sink', `sink_name=${name}`, 'rate=48000', 'channels=2']);
    },
  });
});
