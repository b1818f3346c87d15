// Smoke tests of the audio/video harness against the REAL daemons: PipeWire + WirePlumber (and
// pipewire-pulse), PulseAudio 16, gst-launch-1.0 with pipewiresrc/pipewiresink. A daemon that cannot
// start makes these tests fail with its log; nothing is skipped.
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  alignedMatch,
  channel,
  dominantFrequency,
  feedSource,
  findDiscontinuities,
  findSilenceGaps,
  makeToneWav,
  nonSilentSpan,
  playToSink,
  readWav,
  recordSinkMonitor,
  recordSource,
  rms,
  writeWav,
} from '../harness/audio-capture';
import { captureCameraFrames, colorDistance, decodePng, meanColor, startTestVideoSource } from '../harness/gst';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';
import { tempDir } from '../harness/procs';
import { runTool } from '../harness/audio-tools';

const RATE = 48000;
let work: string;
let anyFailed = false;

beforeAll(() => {
  work = tempDir('hat');
});
afterEach((ctx) => {
  if (ctx.task.result?.state === 'fail') anyFailed = true;
});
afterAll(() => {
  if (!anyFailed) fs.rmSync(work, { recursive: true, force: true });
  else console.warn(`[harness-audio] recordings kept in ${work}`);
});

/** Checks a recorded tone: right pitch, loud enough, about the right length, no dropouts. */
function expectTone(samples: Int16Array, channels: number, hz: number, ms: number): void {
  const left = channel(samples, channels, 0);
  const span = nonSilentSpan(left, 0.01);
  expect(span, 'recording is silent').not.toBeNull();
  const toneFrames = span!.endFrame - span!.startFrame;
  const tone = left.subarray(span!.startFrame, span!.endFrame);
  expect(dominantFrequency(tone, RATE)).toBeCloseTo(hz, 0);
  // 0.5 peak amplitude -> rms 0.354
  expect(rms(tone)).toBeGreaterThan(0.3);
  expect(rms(tone)).toBeLessThan(0.4);
  // Content length, not timing: every frame of the tone should have arrived (one period of slack
  // for where the threshold crosses at the ends).
  expect(Math.abs(toneFrames - (ms * RATE) / 1000)).toBeLessThanOrEqual(RATE / hz + 2);
  expect(findSilenceGaps(left, RATE)).toEqual([]);
  expect(findDiscontinuities(left, RATE, hz)).toEqual([]);
}

describe('analysis helpers (synthetic signals)', () => {
  it('finds frequency, span, gaps and discontinuities of a generated tone', async () => {
    const wav = await makeToneWav(path.join(work, 'synthetic.wav'), { hz: 997, ms: 300, channels: 1, padBeforeMs: 50, padAfterMs: 50 });
    const { samples, rate, channels, frames } = readWav(wav);
    expect({ rate, channels, frames }).toEqual({ rate: RATE, channels: 1, frames: (400 * RATE) / 1000 });
    expect(dominantFrequency(samples, rate)).toBeCloseTo(997, 0);
    const span = nonSilentSpan(samples, 0.01);
    expect(span!.startFrame).toBeGreaterThanOrEqual(2400);
    expect(span!.startFrame).toBeLessThan(2400 + 10);
    expect(span!.endFrame).toBeGreaterThan(2400 + 14400 - 10);
    expect(span!.endFrame).toBeLessThanOrEqual(2400 + 14400);
    expect(findDiscontinuities(samples, rate, 997)).toEqual([]);

    // Cut 10 ms out of the middle and zero 20 ms elsewhere: both must be reported.
    const cut = new Int16Array(samples.length - 480);
    cut.set(samples.subarray(0, 8000));
    cut.set(samples.subarray(8480), 8000);
    cut.fill(0, 12000, 12960);
    const damaged = path.join(work, 'damaged.wav');
    writeWav(damaged, cut, rate, 1);
    const back = readWav(damaged).samples;
    const disc = findDiscontinuities(back, rate, 997);
    expect(disc.map((d) => d.frame).some((f) => Math.abs(f - 8000) < 5)).toBe(true);
    const shifted = new Int16Array(samples.length + 123);
    shifted.set(samples, 123);
    const clean = alignedMatch(samples, shifted, 1)!;
    // The compared range is the non-silent span: the tone's first sample (sin 0 = 0) is not in it.
    expect(clean.comparedFrames).toBeGreaterThan(14400 - 5);
    expect(clean).toMatchObject({ offsetFrames: 123, exactFrames: clean.comparedFrames, maxAbsErr: 0 });
    shifted[123 + 5000] += 7;
    expect(alignedMatch(samples, shifted, 1)).toMatchObject({ offsetFrames: 123, exactFrames: clean.comparedFrames - 1, maxAbsErr: 7 });
    const gaps = findSilenceGaps(back, rate, { minGapMs: 5 });
    expect(gaps).toHaveLength(1);
    expect(gaps[0].ms).toBeGreaterThan(19);
    expect(gaps[0].ms).toBeLessThan(21);
  });
});

describe('PipeWire + WirePlumber', () => {
  let pw: PipeWire;
  beforeAll(async () => {
    pw = await startPipeWire();
    console.log(`[harness-audio] pipewire+wireplumber ready in ${pw.startupMs} ms`);
  });
  afterAll(async () => {
    await pw?.stop({ keepLogs: anyFailed });
  });

  it('has vm-sink and vm-mic as the default sink and source', async () => {
    expect(await pw.defaults()).toEqual({ sink: 'vm-sink', source: 'vm-mic' });
    const nodes = await pw.nodesByName();
    expect(nodes.get('vm-sink')?.info?.props?.['media.class']).toBe('Audio/Sink');
    expect(nodes.get('vm-mic')?.info?.props?.['media.class']).toBe('Audio/Source/Virtual');
    expect(fs.statSync(pw.socketPath).isSocket()).toBe(true);
  });

  it('captures a tone played into vm-sink from its monitor', async () => {
    // Trailing silence: pw-play 0.3.65 drops its last ~1800 frames.
    const wav = await makeToneWav(path.join(work, 'pw-440.wav'), { hz: 440, ms: 400, padAfterMs: 100 });
    const rec = recordSinkMonitor(pw, { sink: 'vm-sink', rate: RATE, channels: 2, format: 's16', dir: work });
    await rec.ready;
    await playToSink(pw, wav, { sink: 'vm-sink' });
    const got = await rec.stop();
    expect(got.channels).toBe(2);
    expect(got.rate).toBe(RATE);
    expectTone(got.samples, got.channels, 440, 400);
  });

  it('round-trips s16 through vm-sink bit-exactly (reference for the bridge tests)', async () => {
    // 997 Hz does not repeat within the file at 48 kHz, so the alignment is unique.
    const wav = await makeToneWav(path.join(work, 'pw-997.wav'), { hz: 997, ms: 300, padAfterMs: 100 });
    const rec = recordSinkMonitor(pw, { dir: work });
    await rec.ready;
    await playToSink(pw, wav, { sink: 'vm-sink' });
    const got = await rec.stop();
    const ref = readWav(wav);
    const m = alignedMatch(ref.samples, got.samples, 2);
    expect(m).not.toBeNull();
    // Every frame of the tone is in the recording (the 100 ms pad covers pw-play's lost tail) and equal.
    const toneFrames = (300 * RATE) / 1000;
    expect(m!.comparedFrames).toBeGreaterThanOrEqual(toneFrames - 2);
    expect(m!).toMatchObject({ exactFrames: m!.comparedFrames, maxAbsErr: 0 });
  });

  it('delivers a tone fed into the vm-mic source to a recorder of vm-mic', async () => {
    const wav = await makeToneWav(path.join(work, 'pw-660.wav'), { hz: 660, ms: 300, padAfterMs: 100 });
    const rec = recordSource(pw, { source: 'vm-mic', dir: work });
    await rec.ready;
    await feedSource(pw, wav, { dir: work });
    const got = await rec.stop();
    expectTone(got.samples, got.channels, 660, 300);
  });

  it('restart() brings the daemons back on the same socket and audio flows again', async () => {
    const before = { pid: pw.pid, wp: pw.wireplumberPid, socket: pw.socketPath };
    await pw.restart();
    console.log(`[harness-audio] pipewire+wireplumber restarted, ready in ${pw.startupMs} ms`);
    expect(pw.pid).not.toBe(before.pid);
    expect(pw.wireplumberPid).not.toBe(before.wp);
    expect(pw.socketPath).toBe(before.socket);
    await pw.run('pw-cli', ['info', '0']);
    expect(await pw.defaults()).toEqual({ sink: 'vm-sink', source: 'vm-mic' });
    const wav = await makeToneWav(path.join(work, 'pw-restart.wav'), { hz: 523, ms: 200, padAfterMs: 100 });
    // No dir: the recording goes to the per-process scratch dir.
    const rec = recordSinkMonitor(pw);
    await rec.ready;
    await playToSink(pw, wav, { sink: 'vm-sink' });
    expectTone((await rec.stop()).samples, 2, 523, 200);
  });

  it('halt("SIGKILL") leaves a dead socket behind and resume() serves on it again', async () => {
    await pw.halt('SIGKILL');
    expect(fs.existsSync(pw.socketPath)).toBe(true);
    expect((await pw.run('pw-cli', ['info', '0'], { allowFail: true, timeoutMs: 5000 })).code).not.toBe(0);
    await pw.resume();
    expect(await pw.defaults()).toEqual({ sink: 'vm-sink', source: 'vm-mic' });
  });
});

describe('PipeWire options', () => {
  it('sets the graph quantum to 256 when asked', async () => {
    const pw = await startPipeWire({ quantum: 256 });
    try {
      const settings = (await pw.run('pw-metadata', ['-n', 'settings', '0'])).stdout;
      expect(settings).toMatch(/key:'clock.quantum' value:'256'/);
      expect(settings).toMatch(/key:'clock.min-quantum' value:'16'/);
    } finally {
      await pw.stop();
    }
  });

  it('rejects a quantum that is not a power of two with a clear error', async () => {
    await expect(startPipeWire({ quantum: 300 })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringContaining('power of two') });
  });

  it('serves PulseAudio clients through pipewire-pulse with pulse: true', async () => {
    const pw = await startPipeWire({ pulse: true });
    try {
      const pulse = pw.pulse!;
      const info = (await pw.run('pactl', ['info'])).stdout;
      expect(info).toMatch(/on PipeWire/);
      const wav = await makeToneWav(path.join(work, 'pwpulse-880.wav'), { hz: 880, ms: 300, padBeforeMs: 100, padAfterMs: 200 });
      const rec = recordSinkMonitor(pulse, { dir: work });
      await rec.ready;
      await playToSink(pulse, wav);
      const got = await rec.stop();
      const left = channel(got.samples, 2, 0);
      expect(dominantFrequency(left, RATE)).toBeCloseTo(880, 0);
      // restart() also brings pipewire-pulse back on the same socket.
      const before = pulse.pid;
      await pw.restart();
      expect(pw.pulse!.pid).not.toBe(before);
      expect((await pw.run('pactl', ['get-default-sink'])).stdout.trim()).toBe('vm-sink');
    } finally {
      await pw.stop();
    }
  });
});

describe('PulseAudio', () => {
  let pa: Pulse;
  beforeAll(async () => {
    pa = await startPulseAudio();
    console.log(`[harness-audio] pulseaudio ready in ${pa.startupMs} ms`);
  });
  afterAll(async () => {
    await pa?.stop({ keepLogs: anyFailed });
  });

  it('has vm-sink and vm-mic as defaults', async () => {
    expect((await pa.run('pactl', ['get-default-sink'])).stdout.trim()).toBe('vm-sink');
    expect((await pa.run('pactl', ['get-default-source'])).stdout.trim()).toBe('vm-mic');
  });

  it('captures a tone played into vm-sink from vm-sink.monitor', async () => {
    // Leading silence: a new stream on a PulseAudio null sink loses its first ~10 ms.
    const wav = await makeToneWav(path.join(work, 'pa-440.wav'), { hz: 440, ms: 400, padBeforeMs: 250, padAfterMs: 250 });
    const rec = recordSinkMonitor(pa, { dir: work });
    await rec.ready;
    await playToSink(pa, wav);
    const got = await rec.stop();
    expectTone(got.samples, got.channels, 440, 400);
  });

  it('delivers a tone fed into vm-mic-in to a recorder of vm-mic', async () => {
    const wav = await makeToneWav(path.join(work, 'pa-660.wav'), { hz: 660, ms: 300, padBeforeMs: 250, padAfterMs: 250 });
    const rec = recordSource(pa, { dir: work });
    await rec.ready;
    await feedSource(pa, wav, { dir: work });
    const got = await rec.stop();
    expectTone(got.samples, got.channels, 660, 300);
  });

  it('restart() brings the daemon back on the same socket', async () => {
    const before = pa.pid;
    await pa.restart();
    console.log(`[harness-audio] pulseaudio restarted, ready in ${pa.startupMs} ms`);
    expect(pa.pid).not.toBe(before);
    expect((await pa.run('pactl', ['info'])).stdout).toContain(`Server String: ${pa.server}`);
    expect((await pa.run('pactl', ['get-default-sink'])).stdout.trim()).toBe('vm-sink');
  });

  it('halt() takes the server away and resume() brings it back', async () => {
    await pa.halt();
    // With our client.conf (autospawn = no) nothing starts a replacement daemon.
    expect((await pa.run('pactl', ['info'], { allowFail: true, timeoutMs: 5000 })).code).not.toBe(0);
    await pa.resume();
    expect((await pa.run('pactl', ['get-default-source'])).stdout.trim()).toBe('vm-mic');
  });
});

describe('GStreamer capture from a PipeWire video node', () => {
  let pw: PipeWire;
  beforeAll(async () => {
    pw = await startPipeWire();
  });
  afterAll(async () => {
    await pw?.stop({ keepLogs: anyFailed });
  });

  it('captures frames of a solid green Video/Source node', async () => {
    const src = await startTestVideoSource({ env: pw.env, pattern: 'solid-color', foregroundColor: 0xff00ff00, width: 160, height: 120 });
    try {
      const node = await pw.waitForNode(src.name);
      expect(node.info?.props?.['media.class']).toBe('Video/Source');
      const files = await captureCameraFrames({ env: pw.env, target: src.name, count: 3, dir: work });
      expect(files).toHaveLength(3);
      const img = decodePng(files[2]);
      expect([img.width, img.height]).toEqual([160, 120]);
      expect(colorDistance(meanColor(img, { x: 0, y: 0, w: 160, h: 120 }), { r: 0, g: 255, b: 0 })).toBeLessThanOrEqual(2);
    } finally {
      await src.stop();
    }
  });

  it('captures SMPTE bars through caps YUY2 with the same bar colours as videotestsrc renders directly', async () => {
    const src = await startTestVideoSource({ env: pw.env, pattern: 'smpte', width: 320, height: 240, format: 'YUY2' });
    try {
      const files = await captureCameraFrames({ env: pw.env, target: src.name, count: 3, caps: 'video/x-raw,format=YUY2', dir: work });
      const img = decodePng(files[0]);
      // Reference: the same pattern and format rendered without PipeWire in between.
      const refFile = path.join(work, 'smpte-ref.png');
      await runTool('gst-launch-1.0', ['-q', 'videotestsrc', 'num-buffers=1', 'pattern=smpte', '!', 'video/x-raw,format=YUY2,width=320,height=240', '!',
        'videoconvert', '!', 'pngenc', '!', 'filesink', `location=${refFile}`]);
      const ref = decodePng(refFile);
      // Top two thirds: seven bars, left to right (white, yellow, cyan, green, magenta, red, blue).
      const barW = img.width / 7;
      const got = [];
      for (let i = 0; i < 7; i++) {
        const rect = { x: i * barW + barW / 4, y: 20, w: barW / 2, h: 80 };
        const c = meanColor(img, rect);
        got.push(c);
        expect(colorDistance(c, meanColor(ref, rect)), `bar ${i}: ${JSON.stringify(c)}`).toBeLessThanOrEqual(2);
      }
      // And the bars really are the SMPTE colours (not e.g. a uniform frame equal to a uniform reference).
      const [white, yellow, cyan, green, magenta, red, blue] = got;
      expect(Math.min(white.r, white.g, white.b)).toBeGreaterThan(150);
      expect(yellow.b).toBeLessThan(40);
      expect(cyan.r).toBeLessThan(40);
      expect(Math.max(green.r, green.b)).toBeLessThan(40);
      expect(magenta.g).toBeLessThan(40);
      expect(Math.max(red.g, red.b)).toBeLessThan(40);
      expect(Math.max(blue.r, blue.g)).toBeLessThan(40);
      expect(Math.min(yellow.r, yellow.g, cyan.g, cyan.b, green.g, magenta.r, magenta.b, red.r, blue.b)).toBeGreaterThan(150);
    } finally {
      await src.stop();
    }
  });

  it('says which video nodes exist when the target is missing or not video', async () => {
    await expect(captureCameraFrames({ env: pw.env, target: 'no-such-camera', count: 1, dir: work, timeoutMs: 1000 })).rejects.toMatchObject({
      code: 'ENONODE',
    });
    await expect(captureCameraFrames({ env: pw.env, target: 'vm-sink', count: 1, dir: work })).rejects.toMatchObject({
      code: 'EINVAL',
      message: expect.stringContaining('Audio/Sink'),
    });
  });

  it('times out with the gst log when the node cannot give the caps asked for', async () => {
    const src = await startTestVideoSource({ env: pw.env, pattern: 'ball', width: 160, height: 120, format: 'RGBx' });
    try {
      // pipewiresrc 0.3.65 hangs instead of failing negotiation: the harness timeout must end it.
      await expect(captureCameraFrames({ env: pw.env, target: src.name, count: 1, caps: 'video/x-raw,format=YUY2', dir: work, timeoutMs: 2000 })).rejects.toMatchObject({
        code: 'EGSTCAPTURE',
        message: expect.stringContaining('timed out'),
      });
    } finally {
      await src.stop();
    }
  });
});
