// The speaker and the microphone share one PipeWire connection (native/pw_client.cc: one loop
// thread, context, data thread and core for both; issue 17, resident memory per bridge), against
// a real PipeWire + WirePlumber started here: the daemon sees one client, the process runs one
// loop thread, each stream outlives the other's close, and a connection whose daemon went away is
// never handed to a stream opened afterwards.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audioBackendFor, type AudioBackend } from '../../src/audio/backend';
import type { NativeCapture } from '../../src/native-api/capture';
import type { NativePlayback } from '../../src/native-api/audio';
import { micIdentity, speakerIdentity } from '../../src/stream-identity';
import { captureOptions } from '../contracts/capture.contract';
import { makeToneWav, startFeed } from '../harness/audio-capture';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { sleep, tempDir, waitFor } from '../harness/procs';

let pw: PipeWire;
let dir: string;
let backend: AudioBackend;

beforeAll(async () => {
  pw = await startPipeWire();
  dir = tempDir('pw-shared');
  backend = audioBackendFor('pipewire', pw.env);
});
afterAll(async () => {
  await pw?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function openSpeaker(vm: string): NativePlayback {
  const id = speakerIdentity(vm, 'pipewire', pw.sink);
  return backend.openPlayback({ format: 'S16LE', rate: 48000, channels: 2, positions: ['FL', 'FR'], ringFrames: 4800, startFrames: 0, latencyFrames: 480, streamName: id.streamName, props: id.props });
}

function openMic(vm: string, states: string[] = []): NativeCapture {
  return backend.openCapture(captureOptions(backend, { format: 'S16LE', rate: 48000, channels: 2, vmName: vm, source: pw.source }), (st, msg) => states.push(`${st}: ${msg}`));
}

const speakerNode = (vm: string): string => speakerIdentity(vm, 'pipewire').props['node.name'];
const micNode = (vm: string): string => micIdentity(vm, 'pipewire').props['node.name'];

/** The daemon's client objects that are this process (its own view: the socket's peer pid). */
async function clientsOfThisProcess(): Promise<number> {
  return (await pw.pwDump()).filter((o) => o.type === 'PipeWire:Interface:Client' && Number(o.info?.props?.['pipewire.sec.pid']) === process.pid).length;
}

/** This process's threads by name (/proc/self/task/N/comm). */
function threadNames(): string[] {
  return fs.readdirSync('/proc/self/task').map((t) => fs.readFileSync(path.join('/proc/self/task', t, 'comm'), 'utf8').trim());
}

describe('one PipeWire connection for the speaker and the microphone', () => {
  it('a speaker and a microphone open together are one client of the daemon, on one loop thread', async () => {
    const speaker = openSpeaker('shared-a');
    const mic = openMic('shared-a');
    try {
      await pw.waitForNode(speakerNode('shared-a'));
      await pw.waitForNode(micNode('shared-a'));
      expect(await clientsOfThisProcess()).toBe(1);
      expect(threadNames().filter((n) => n.startsWith('qdb-')).sort()).toEqual(['qdb-play']);
    } finally {
      mic.close();
      speaker.close();
    }
    // The last user closed it: no client of ours is left.
    await waitFor('our PipeWire client gone', 10_000, async () => (await clientsOfThisProcess()) === 0, 200);
    expect(threadNames().filter((n) => n.startsWith('qdb-play'))).toEqual([]);
  });

  it('the microphone keeps capturing after the speaker that opened the connection closed', async () => {
    const speaker = openSpeaker('shared-b');
    const mic = openMic('shared-b');
    const wav = await makeToneWav(path.join(dir, 'tone.wav'), { hz: 440, ms: 4000, rate: 48000, channels: 2 });
    const feed = await startFeed(pw, wav);
    try {
      await waitFor('the microphone capturing', 15_000, () => mic.stats().capturedBytes > 0, 100);
      speaker.close();
      const before = mic.stats().capturedBytes;
      await sleep(1000);
      expect(mic.stats().capturedBytes).toBeGreaterThan(before + 48000 * 4 * 0.5);
      expect((await pw.nodesByName()).has(micNode('shared-b'))).toBe(true);
      expect(await clientsOfThisProcess()).toBe(1);
    } finally {
      await feed.stop();
      mic.close();
      speaker.close();
    }
  });

  it('after the daemon restarted, a speaker opened while the old microphone is still open gets a live connection', async () => {
    const speaker = openSpeaker('shared-c');
    const states: string[] = [];
    const mic = openMic('shared-c', states);
    let speaker2: NativePlayback | undefined;
    let mic2: NativeCapture | undefined;
    try {
      await pw.waitForNode(speakerNode('shared-c'));
      await pw.restart();
      // Both hear of it: the speaker in its stats, the microphone as an error state.
      await waitFor('the speaker sees the daemon gone', 15_000, () => speaker.stats().error !== undefined, 100);
      await waitFor('the microphone sees the daemon gone', 15_000, () => states.some((s) => s.startsWith('error')), 100);
      // The speaker is reopened (as the route does) while the old microphone still holds the dead
      // connection: the new stream must reach the new daemon.
      speaker.close();
      speaker2 = openSpeaker('shared-c');
      await pw.waitForNode(speakerNode('shared-c'));
      expect(speaker2.stats().error).toBeUndefined();
      // The old microphone closes, a new one joins the speaker's live connection.
      mic.close();
      mic2 = openMic('shared-c');
      await pw.waitForNode(micNode('shared-c'));
      expect(await clientsOfThisProcess()).toBe(1);
    } finally {
      mic2?.close();
      speaker2?.close();
      mic.close();
      speaker.close();
    }
  });
});
