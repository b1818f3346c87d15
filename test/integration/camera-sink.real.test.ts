// The camera sink contract (test/contracts/camera-sink.contract.ts) against the real sinks of this
// host: the PipeWire camera node (private PipeWire + WirePlumber) with a GStreamer consumer, and
// the file sink on a regular file. The fakes run it in test/unit/camera-sink.fake.test.ts; the
// v4l2 sink on a real v4l2loopback device runs it in the kernel tier (test/kernel/v4l2.test.ts).
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll } from 'vitest';
import { FileSink } from '../../src/camera/sinks/file';
import { PipeWireSink } from '../../src/camera/sinks/pipewire';
import { frameBytes } from '../../src/camera/sinks/types';
import { sinkContract } from '../contracts/camera-sink.contract';
import { clientEnv } from '../harness/audio-tools';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { type Managed, spawnManaged, tempDir, waitFor } from '../harness/procs';

let pw: PipeWire;
let seq = 0;

beforeAll(async () => {
  pw = await startPipeWire();
});
afterAll(async () => {
  await pw?.stop();
});

sinkContract(
  'pipewire (real node)',
  async () => {
    const sink = new PipeWireSink({ vmName: `camsink${process.pid}x${++seq}`, width: 640, height: 360, fps: 30, remote: pw.env.PIPEWIRE_REMOTE });
    let consumer: Managed | undefined;
    return {
      sink,
      consume: async () => {
        // a consumer that keeps the node streaming until stopped
        const dir = tempDir('gstc');
        consumer = spawnManaged('gst-consumer', 'gst-launch-1.0', ['-q', 'pipewiresrc', `target-object=${sink.target}`, '!', 'video/x-raw,format=YUY2,colorimetry=bt601', '!', 'fakesink', 'sync=false'], {
          env: clientEnv(pw.env),
          logFile: path.join(dir, 'gst.log'),
        });
        await waitFor(`${sink.target} streaming to gst`, 30_000, () => {
          if (!consumer!.isRunning()) throw new Error(`gst consumer exited: ${consumer!.log().slice(-1500)}`);
          return sink.wantedFormat() !== null;
        });
      },
      cleanup: async () => {
        await consumer?.stop();
      },
    };
  },
  { timeoutMs: 60_000 },
);

sinkContract('file (regular file)', async () => {
  const dir = tempDir('sinkc');
  const file = path.join(dir, 'frames.raw');
  const sink = new FileSink({ path: file, width: 64, height: 48, fps: 30, format: 'NV12' });
  return {
    sink,
    received: async () => {
      const b = fs.readFileSync(file);
      const n = frameBytes('NV12', 64, 48);
      const frames: Buffer[] = [];
      for (let o = 0; o < b.length; o += n) frames.push(b.subarray(o, o + n));
      return frames;
    },
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});
