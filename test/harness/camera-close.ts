// Closes PipeWire camera nodes while a consumer (gst-launch-1.0 pipewiresrc) takes their frames,
// many times over: what the bridge does at stop, or when the node failed. Run as a child process
// (a crash must fail the test, not take vitest down): test/integration/pw-close-while-running.test.ts.
//
//   node camera-close.js --remote SOCKET --rounds N [--addon FILE]
//
// Prints one JSON line {rounds, streamed} and exits 0; a crash is the caller's to see (exit
// signal). --addon loads that .node file instead of the project's build (to run an older build).
import { native } from '../../src/native';
import type { PwCameraHandle, PwCameraOptions } from '../../src/native-api/video';
import { clientEnv } from './audio-tools';
import { spawnManaged, sleep, tempDir } from './procs';
import * as path from 'path';

const W = 64;
const H = 48;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const remote = arg('remote');
  const rounds = Number(arg('rounds') ?? '20');
  if (!remote || !(rounds > 0)) throw new Error('usage: camera-close.js --remote SOCKET --rounds N [--addon FILE]');
  const addon = arg('addon');
  const Ctor = addon ? (require(addon) as { PwCamera?: new (o: PwCameraOptions) => PwCameraHandle }).PwCamera : native.PwCamera;
  if (!Ctor) throw new Error('the addon lacks PwCamera: build it with bash scripts/build-native.sh');
  const dir = tempDir('camera-close');
  const frame = new Uint8Array(W * H * 2).fill(0x80);
  let streamed = 0;
  for (let r = 0; r < rounds; r++) {
    const name = `qdb-camera-close-${process.pid}-${r}`;
    const cam = new Ctor({ streamName: name, props: { 'node.name': name, 'media.class': 'Video/Source', 'media.role': 'Camera' }, width: W, height: H, fps: 120, formats: ['YUY2'], remote });
    cam.push(frame, 'YUY2');
    await sleep(300); // the node registered: pipewiresrc waits forever for a missing one
    const args = ['-q', 'pipewiresrc', `target-object=${name}`, '!', 'video/x-raw,format=YUY2,colorimetry=bt601', '!', 'fakesink'];
    const gst = spawnManaged('gst-launch-1.0', 'gst-launch-1.0', args, { env: clientEnv({ PIPEWIRE_REMOTE: remote }), logFile: path.join(dir, 'gst.log') });
    const until = Date.now() + 10_000;
    while (Date.now() < until && cam.stats().sent <= 20) {
      cam.push(frame, 'YUY2');
      await sleep(5);
    }
    if (cam.stats().sent > 20) streamed++;
    // Closed at a random moment while frames flow (the timer triggers every 8 ms).
    const closeAt = Date.now() + Math.random() * 30;
    while (Date.now() < closeAt) {
      cam.push(frame, 'YUY2');
      await sleep(1);
    }
    cam.close();
    gst.kill('SIGKILL');
    await gst.exited;
    await sleep(10);
  }
  console.log(JSON.stringify({ rounds, streamed }));
}

main().catch((e: Error) => {
  console.error(`camera-close: ${e.message}`);
  process.exit(1);
});
