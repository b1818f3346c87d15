// Native capture lifetime at the edges, in child processes against a real PipeWire and
// PulseAudio: a process that exits with microphones open, one that drops them to the garbage
// collector, and one whose event loop simply runs out must all end promptly with status 0 (the
// env cleanup hook stops the server threads; the state ThreadSafeFunction is unref'd).
import { spawn } from 'child_process';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipeWire, startPipeWire } from '../harness/pipewire';
import { Pulse, startPulseAudio } from '../harness/pulseaudio';

const NATIVE = path.resolve(__dirname, '../../dist/src/native.js');

let pw: PipeWire;
let pa: Pulse;
beforeAll(async () => {
  pw = await startPipeWire();
  pa = await startPulseAudio();
});
afterAll(async () => {
  await pw?.stop();
  await pa?.stop();
});

function runChild(body: string, timeoutMs = 30_000): Promise<{ code: number | null; signal: string | null; out: string }> {
  const script = `
    const { native } = require(${JSON.stringify(NATIVE)});
    const opts = (remote, name) => ({ format: 'S16LE', rate: 44100, channels: 2, streamName: name,
      props: { 'node.name': name, 'media.role': 'Communication', 'application.name': 'exit-test' },
      latencyFrames: 441, ringFrames: 44100, remote });
    const open = () => [
      new native.PwCapture(opts(${JSON.stringify(pw.socketPath)}, 'exit-pw'), () => {}),
      new native.PulseCapture(opts(${JSON.stringify(pa.server)}, 'exit-pa'), () => {}),
    ];
    ${body}
  `;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

describe('native capture at process exit and garbage collection', () => {
  it('process.exit() with microphones open and streaming', async () => {
    const r = await runChild(`
      const s = open();
      const t0 = Date.now();
      const tick = () => {
        if (s[0].stats().capturedBytes > 0 && s[1].stats().state === 'streaming') { console.log('streaming'); process.exit(0); }
        else if (Date.now() - t0 > 15000) { console.log('never streamed', JSON.stringify(s.map((x) => x.stats()))); process.exit(3); }
        else setTimeout(tick, 20);
      };
      tick();
    `);
    expect(r, r.out).toMatchObject({ code: 0, signal: null });
    expect(r.out).toContain('streaming');
  });

  it('streams dropped without close() are finalized by the garbage collector', async () => {
    const r = await runChild(`
      for (let i = 0; i < 5; i++) open();
      let n = 0;
      const again = () => { global.gc(); if (++n < 20) setTimeout(again, 50); else console.log('done'); };
      again();
    `);
    expect(r, r.out).toMatchObject({ code: 0, signal: null });
    expect(r.out).toContain('done');
  });

  it('an open microphone does not keep Node alive on its own', async () => {
    const r = await runChild(`open(); console.log('opened');`, 20_000);
    expect(r, r.out).toMatchObject({ code: 0, signal: null });
  });
});
