// Kernel tier, v4l2 group: ONE guest boot (script mode) runs test/kernel/guest/v4l2.guest.ts: the
// bridge's camera route on a real v4l2loopback 0.12.7 /dev/video10 (exclusive_caps=1), read by
// v4l2-ctl, GStreamer v4l2src and a consumer opened before the bridge; YUYV, I420, NV12 (two
// bridge restarts), a second producer, the DISPLAY OFF picture, and the camera sink contract on the
// real device (test/contracts/camera-sink.contract.ts). Each in-guest check is one test here.
import { guestGroupSuite } from '../harness/kernel-vm';

guestGroupSuite(
  'kernel tier: v4l2loopback with real consumers',
  { name: 'v4l2', mode: 'script', vitest: ['test/kernel/guest/v4l2.guest.ts'], timeoutS: 400 },
  ['YUYV', 'I420', 'NV12', 'second producer', 'DISPLAY OFF', 'OUTPUT again', 'camera sink contract'],
);
