// The sound server restarts while the guest records: the bridge sees the capture stream fail,
// answers Reads with silence meanwhile (never blocking QEMU), and reopens the microphone on the
// new server by itself. Real PipeWire + WirePlumber and real PulseAudio, restarted by PID.
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { AudioInBridge } from '../../src/audio/in/audio-in-bridge';
import { audioBackendFor } from '../../src/audio/backend';
import type { PcmFormat } from '../../src/qemu/handlers';
import { FeedHandle, makeToneWav, startFeed } from '../harness/audio-capture';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { lineLogger } from '../fakes/logger';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { sleep, tempDir } from '../harness/procs';

const S16: PcmFormat = { bits: 16, isSigned: true, isFloat: false, freq: 44100, nchannels: 2, bytesPerFrame: 4, bytesPerSecond: 176400, bigEndian: false };
const ID = 1n;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** Reads like QEMU (10 ms blocks every 10 ms) until `until` holds; returns the non-silent bytes seen. */
async function readWhile(bridge: AudioInBridge, until: () => boolean, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  let loud = 0;
  while (!until() && Date.now() < end) {
    const r = bridge.read(ID, 1764);
    expect(r.byteLength).toBe(1764);
    for (let i = 0; i < r.byteLength; i++) if (r[i] !== 0) loud++;
    await sleep(10);
  }
  return loud;
}

async function feedTone(server: PipeWire | Pulse): Promise<FeedHandle> {
  const wav = await makeToneWav(path.join(tempDir('mic-rs'), 'tone.wav'), { hz: 1000, ms: 60_000, rate: 48000, channels: 2 });
  const f = await startFeed(server, wav);
  cleanups.push(() => f.stop());
  return f;
}

describe.each(['pipewire', 'pulse'] as const)('microphone survives a %s restart', (kind) => {
  it('fails over to silence, then captures again from the restarted server', async () => {
    const server = kind === 'pipewire' ? await startPipeWire() : await startPulseAudio();
    cleanups.push(() => server.stop());
    const log: string[] = [];
    const bridge = new AudioInBridge({
      vmName: `restart-${kind}`,
      backend: audioBackendFor(kind, server.env),
      source: server.source,
      log: lineLogger((line, level) => log.push(`${level}: ${line}`)),
      retryMs: 200,
    });
    cleanups.push(async () => bridge.close());
    bridge.init(ID, S16);
    bridge.setEnabled(ID, true);
    let feed = await feedTone(server);
    expect(await readWhile(bridge, () => bridge.stats()[0].capturedBytes > 44100, 20_000)).toBeGreaterThan(0);

    await feed.stop();
    await server.restart();
    // The old stream fails (error logged), reads keep answering at once with whole blocks.
    await readWhile(bridge, () => log.some((l) => l.startsWith('error')), 20_000);
    expect(log.find((l) => l.startsWith('error'))).toMatch(/microphone stream failed|cannot open the microphone/);
    feed = await feedTone(server);
    const before = bridge.stats()[0].capturedBytes;
    await readWhile(bridge, () => bridge.stats()[0].capturedBytes > before + 44100, 30_000);
    const st = bridge.stats()[0];
    expect(st.capturedBytes, `log: ${log.join(' | ')}`).toBeGreaterThan(before + 44100);
    expect(st.state).toBe('streaming');
    expect(st.opens).toBeGreaterThanOrEqual(2);
    bridge.setEnabled(ID, false);
    expect(bridge.capturing).toBe(false);
  });
});
