// Sound server restart while the guest plays: the speaker reconnects by itself (no bridge or VM
// restart) and the tone reaches the NEW server. How fast is measured in bench/audio.bench.ts.
import { describe, expect, it } from 'vitest';
import { selectAudioBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import type { AudioServer } from '../harness/audio-tools';
import { channel, dominantFrequency, recordSinkMonitor, rms } from '../harness/audio-capture';
import { startPipeWire } from '../harness/pipewire';
import { startPulseAudio } from '../harness/pulseaudio';
import { TEST_LATENCY_MS, feedTone, pcmFormat, pitchToleranceHz, sleep } from './audio-out-helpers';

async function restartWhilePlaying(server: AudioServer & { restart(): Promise<void> }, kind: 'pipewire' | 'pulse'): Promise<void> {
  const backend = (await selectAudioBackend(kind, { env: server.env }))!;
  const speaker = new Speaker({ vmName: 'restart', backend, latencyMs: TEST_LATENCY_MS });
  const fmt = pcmFormat({ bits: 16, freq: 48000 });
  speaker.init(7n, fmt);
  speaker.setEnabled(7n, true);
  let stop = false;
  const feeding = (async () => {
    while (!stop) await feedTone(speaker, { id: 7n, format: fmt, seconds: 0.5, freq: 997, amplitude: 0.5 });
  })();
  try {
    await sleep(1000);
    expect(speaker.voice(7n)!.stats().nativeState).toBe('streaming');
    await server.restart();
    const t0 = Date.now();
    while (Date.now() - t0 < 15_000) {
      const st = speaker.voice(7n)!.stats();
      if (st.reconnects > 0 && st.state === 'open' && st.nativeState === 'streaming') break;
      await sleep(20);
    }
    const st = speaker.voice(7n)!.stats();
    expect(st.reconnects, JSON.stringify(st)).toBeGreaterThan(0);
    expect(st.nativeState, JSON.stringify(st)).toBe('streaming');
    // The tone is audible on the restarted server.
    const rec = recordSinkMonitor(server);
    await rec.ready;
    await sleep(1000);
    const r = await rec.stop();
    const left = channel(r.samples, 2, 0);
    expect(rms(left), `nothing heard after the restart: ${JSON.stringify(speaker.voice(7n)!.stats())}`).toBeGreaterThan(0.1);
    // after a reconnect the drift controller may be correcting: allow its pitch range
    expect(Math.abs(dominantFrequency(left, r.rate) - 997)).toBeLessThan(pitchToleranceHz(997));
  } finally {
    stop = true;
    await feeding;
    await speaker.close();
  }
}

describe('sound server restart', () => {
  it('PipeWire restart: the speaker reconnects and plays on', async () => {
    const pw = await startPipeWire();
    try {
      await restartWhilePlaying(pw, 'pipewire');
    } finally {
      await pw.stop();
    }
  });

  it('PulseAudio restart: the speaker reconnects and plays on', async () => {
    const pa = await startPulseAudio();
    try {
      await restartWhilePlaying(pa, 'pulse');
    } finally {
      await pa.stop();
    }
  });
});
