// Kernel tier, v4l2 group: ONE guest boot (script mode) runs test/kernel/guest/v4l2.guest.ts: the
// bridge's camera route on a real v4l2loopback 0.12.7 /dev/video10 (exclusive_caps=1), read by
// v4l2-ctl, GStreamer v4l2src and a consumer opened before the bridge; YUYV, I420, NV12 (two
// bridge restarts), a second producer, the DISPLAY OFF picture, and the camera sink contract on the
// real device (test/contracts/camera-sink.contract.ts); then v4l2-cameras.guest.ts: two
// [[camera]] entries of one bridge on /dev/video20 and /dev/video21, one per head of a two-head fake
// VM, each with its console's colour, its own format and size, and pin_resolution holding for both.
// Each in-guest check is one test here.
import { guestGroupSuite } from '../harness/kernel-vm';

guestGroupSuite(
  'kernel tier: v4l2loopback with real consumers',
  { name: 'v4l2', mode: 'script', vitest: ['test/kernel/guest/v4l2.guest.ts', 'test/kernel/guest/v4l2-cameras.guest.ts'], timeoutS: 500 },
  ['YUYV', 'I420', 'NV12', 'second producer', 'DISPLAY OFF', 'OUTPUT again', 'camera sink contract', "its own console's picture", 'pin_resolution holds'],
);
