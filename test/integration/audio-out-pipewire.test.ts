// Guest speaker -> Speaker handler -> REAL PipeWire (private daemon + WirePlumber, null sink
// vm-sink) -> monitor capture with pw-record -> analysis. Blocks are fed exactly as QEMU 7.2
// sends them (see audio-out-helpers.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selectAudioBackend, PlaybackBackend } from '../../src/audio/backend';
import { startPipeWire, PipeWire } from '../harness/pipewire';
import { speakerSuite } from './audio-out-speaker-suite';

let pw: PipeWire;
let backend: PlaybackBackend;

beforeAll(async () => {
  pw = await startPipeWire();
  const b = await selectAudioBackend('auto', { env: pw.env });
  if (!b) throw new Error('selectAudioBackend(auto) returned no backend');
  backend = b;
});
afterAll(async () => {
  await pw?.stop();
});

describe('speaker on PipeWire', () => {
  it('auto picks PipeWire when its socket answers', () => {
    expect(backend.kind).toBe('pipewire');
    expect(backend.where).toBe(pw.socketPath);
  });

  speakerSuite({
    server: () => pw,
    backend: () => backend,
    streamProps: async (nodeName) => (await pw.waitForNode(nodeName)).info?.props ?? {},
    expectedProps: (vm) => ({
      'application.name': `QEMU ${vm}`,
      'node.description': `${vm} speaker`,
      'media.role': 'Game',
      'application.icon-name': 'qemu',
    }),
    addSink: async (name) => {
      await pw.run('pw-cli', ['create-node', 'adapter', `{ factory.name=support.null-audio-sink node.name=${name} media.class=Audio/Sink object.linger=true audio.position=[ FL FR ] monitor.channel-volumes=true }`]);
      await pw.waitForNode(name);
    },
  });
});
