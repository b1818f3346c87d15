// Clock drift against the REAL servers: the feeder runs QEMU's clock 0.3 % fast, then 0.3 % slow.
// With drift control the ring fill stays bounded and nothing underruns; the same feed without
// control lets the fill grow (checked too, so this test can fail). 15 s per case here; the
// 60 s runs are in bench/audio.bench.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlaybackBackend, selectAudioBackend } from '../../src/audio/backend';
import { Speaker } from '../../src/audio/out/speaker';
import { startPipeWire, PipeWire } from '../harness/pipewire';
import { startPulseAudio, Pulse } from '../harness/pulseaudio';
import { feedTone, pcmFormat } from './audio-out-helpers';

export interface DriftRun {
  underruns: number;
  overflowFrames: number;
  startFill: number;
  endFill: number;
  maxFill: number;
  target: number;
  /** The level the drift controller held. */
  driftTarget: number;
  meanRatio: number;
  /** Seconds into the run at which underruns were first seen (diagnostics). */
  underrunTimes: number[];
}

export async function driftRun(backend: PlaybackBackend, drift: number, seconds: number, control = true): Promise<DriftRun> {
  // 100 ms: this test is about clock drift, not about riding out a starved JS feeder on the
  // loaded shared machine (underruns from that are what bench/audio.bench.ts measures).
  const speaker = new Speaker({ vmName: `drift`, backend, latencyMs: 100, driftControl: control });
  const fmt = pcmFormat({ bits: 16, freq: 48000 });
  speaker.init(9n, fmt);
  speaker.setEnabled(9n, true);
  const fills: Array<{ t: number; fill: number; ratio: number }> = [];
  const underrunTimes: number[] = [];
  let seenUnderruns = 0;
  const t0 = Date.now();
  let last = 0;
  await feedTone(speaker, {
    id: 9n,
    format: fmt,
    seconds,
    freq: 440,
    amplitude: 0.3,
    drift,
    onBlock: () => {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      const st = speaker.voice(9n)!.stats();
      fills.push({ t: (now - t0) / 1000, fill: st.fillFrames, ratio: st.ratio });
      if (st.underruns > seenUnderruns) {
        seenUnderruns = st.underruns;
        underrunTimes.push((now - t0) / 1000);
      }
    },
  });
  const st = speaker.voice(9n)!.stats();
  await speaker.close();
  const window = (a: number, b: number): number[] => fills.filter((f) => f.t >= a && f.t < b).map((f) => f.fill);
  const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
  const late = fills.filter((f) => f.t >= seconds - 5);
  return {
    underruns: st.underruns,
    overflowFrames: st.overflowFrames,
    startFill: mean(window(2, 4)),
    endFill: mean(window(seconds - 2, seconds)),
    maxFill: Math.max(...late.map((f) => f.fill)),
    target: st.targetFrames,
    driftTarget: st.driftTargetFrames ?? st.targetFrames,
    meanRatio: mean(late.map((f) => f.ratio)),
    underrunTimes,
  };
}

function checkControlled(r: DriftRun, drift: number, kind: 'pipewire' | 'pulse'): void {
  const why = JSON.stringify(r);
  expect(r.underruns, why).toBe(0);
  expect(r.overflowFrames, why).toBe(0);
  // Bounded: the polled fill is a sawtooth (one QEMU block up, one graph quantum down) around
  // the level the controller holds, which may sit above its target by the 8 ms deadband plus
  // drift/kp = 0.003/0.5 = 6 ms until the integral term has taken over; 10 ms slack.
  // (Uncontrolled, 0.3 % keeps adding 3 ms per second without limit: see the last test here and
  // the 60 s runs in bench/audio.bench.ts.)
  expect(r.maxFill, why).toBeLessThan(r.driftTarget + 2 * 1024 + 0.024 * 48000);
  // The controller leans the way the clocks differ. PulseAudio's queue is only known to the
  // server's 1024-frame requests, too coarse to show the sign within 15 s.
  if (kind === 'pipewire') expect(Math.sign(r.meanRatio - 1), why).toBe(Math.sign(drift));
}

for (const kind of ['pipewire', 'pulse'] as const) {
  describe(`drift control on ${kind}`, () => {
    let server: PipeWire | Pulse;
    let backend: PlaybackBackend;
    beforeAll(async () => {
      server = kind === 'pipewire' ? await startPipeWire() : await startPulseAudio();
      backend = (await selectAudioBackend(kind, { env: server.env }))!;
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('QEMU 0.3 % fast for 15 s: fill bounded, no underrun', async () => {
      checkControlled(await driftRun(backend, 0.003, 15), 0.003, kind);
    });

    it('QEMU 0.3 % slow for 15 s: fill bounded, no underrun', async () => {
      checkControlled(await driftRun(backend, -0.003, 15), -0.003, kind);
    });

    if (kind === 'pipewire') {
      it('without drift control the same fast feed grows the fill (the check above can fail)', async () => {
        const r = await driftRun(backend, 0.003, 15, false);
        expect(r.endFill - r.startFill, JSON.stringify(r)).toBeGreaterThan(0.02 * 48000);
      });
    }
  });
}
