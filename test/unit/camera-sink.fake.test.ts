// The camera sink contract (test/contracts/camera-sink.contract.ts) against the fakes: the
// in-memory sink the unit tests use, and the real V4l2Sink over the fake v4l2loopback backend.
// The same suite runs against the real sinks in test/integration/camera-sink.real.test.ts and
// against V4l2Sink on a real v4l2loopback device in the kernel tier (test/kernel/guest/v4l2.guest.ts).
import { silentLogger } from '../../src/log';
import { V4l2Sink } from '../../src/camera/sinks/v4l2';
import { sinkContract } from '../contracts/camera-sink.contract';
import { FakeSink } from '../fakes/camera-sink';
import { FakeV4l2Loopback } from '../fakes/v4l2-loopback';

sinkContract('in-memory fake', async () => ({ sink: new FakeSink({ width: 64, height: 48, fps: 30 }) }));

sinkContract('v4l2 over the fake v4l2loopback backend', async () => {
  const dev = new FakeV4l2Loopback();
  const sink = new V4l2Sink({ path: dev.path, width: 640, height: 480, fps: 30, format: 'YUY2', log: silentLogger }, dev);
  return { sink, received: async () => dev.frames };
});
