// v4l2loopback sink. Without the kernel module on this machine: (1) the real ioctl path against
// real non-V4L2 files (regular file, FIFO, /dev/null, a missing /dev/videoN) must fail with the
// clear errors; (2) the sink's protocol against the fake loopback device (driver semantics from
// v4l2loopback 0.12.7); (3) the file/FIFO sink writes the exact bytes the device would get.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { cameraDevices, noDeviceHint } from '../../src/camera/devices';
import { CameraConsoleListener } from '../../src/camera/listener';
import { CameraPipeline } from '../../src/camera/pipeline';
import { FileSink } from '../../src/camera/sinks/file';
import { frameBytes } from '../../src/camera/sinks/types';
import { V4l2Sink, V4l2SinkOptions } from '../../src/camera/sinks/v4l2';
import { native } from '../../src/native';
import { tempDir, waitFor } from '../harness/procs';
import { FakeSink } from '../fakes/camera-sink';
import { FakeV4l2Loopback } from '../fakes/v4l2-loopback';
import { encodePixman } from '../harness/yuv';
import { silentLogger } from '../../src/log';

const base = { width: 640, height: 480, fps: 30, format: 'YUY2' as const, log: silentLogger };

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected an error');
}

describe('v4l2 ioctl path on files that are not V4L2 devices (real addon, real files)', () => {
  it('regular file: ECAMERA_NOTV4L2 naming the file kind, and the fd is closed', () => {
    const dir = tempDir('v4l2');
    const file = path.join(dir, 'not-a-device');
    fs.writeFileSync(file, '');
    const before = fs.readdirSync('/proc/self/fd').length;
    const e = errorOf(() => new V4l2Sink({ ...base, path: file }));
    expect(e.code).toBe('ECAMERA_NOTV4L2');
    expect(e.message).toMatch(/is not a V4L2 device \(a regular file; VIDIOC_QUERYCAP: ENOTTY\)/);
    expect(e.message).toMatch(/modprobe v4l2loopback exclusive_caps=1/);
    expect(fs.readdirSync('/proc/self/fd').length).toBe(before);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('FIFO: ECAMERA_NOTV4L2 (opening does not wait for a reader)', async () => {
    const dir = tempDir('v4l2');
    const fifo = path.join(dir, 'fifo');
    await new Promise<void>((resolve, reject) => spawn('mkfifo', [fifo]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`mkfifo ${c}`)))));
    const e = errorOf(() => new V4l2Sink({ ...base, path: fifo }));
    expect(e.code).toBe('ECAMERA_NOTV4L2');
    expect(e.message).toMatch(/a FIFO; VIDIOC_QUERYCAP: ENOTTY/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('/dev/null (a character device, but not V4L2): ECAMERA_NOTV4L2', () => {
    const e = errorOf(() => new V4l2Sink({ ...base, path: '/dev/null' }));
    expect(e.code).toBe('ECAMERA_NOTV4L2');
    expect(e.message).toMatch(/a character device; VIDIOC_QUERYCAP: ENOTTY/);
  });

  it('missing /dev/videoN: the module is not loaded, with the modprobe line for that number', () => {
    const e = errorOf(() => new V4l2Sink({ ...base, path: '/dev/video97' }));
    expect(e.code).toBe('ECAMERA_NODEVICE');
    expect(e.message).toContain('sudo modprobe v4l2loopback exclusive_caps=1 video_nr=97 card_label="VM Camera"');
  });

  it('the raw ioctls throw errno codes (S_FMT, S_PARM on /dev/null)', () => {
    const fd = fs.openSync('/dev/null', 'r+');
    try {
      expect(errorOf(() => native.v4l2QueryCap(fd)).code).toBe('ENOTTY');
      expect(errorOf(() => native.v4l2SetOutputFormat(fd, 640, 480, 0x56595559, 1280, 614400)).code).toBe('ENOTTY');
      expect(errorOf(() => native.v4l2SetOutputFps(fd, 30)).code).toBe('ENOTTY');
      expect(errorOf(() => native.v4l2StreamOn(fd)).code).toBe('ENOTTY');
      expect(errorOf(() => native.v4l2QueryCap(-1)).code).toBe('EBADF');
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('v4l2 sink protocol against the fake v4l2loopback device', () => {
  const open = (dev: FakeV4l2Loopback, o: Partial<V4l2SinkOptions> = {}) => new V4l2Sink({ ...base, path: dev.path, ...o }, dev);

  it('configures YUYV/YU12/NV12 with the right bytesperline and sizeimage, writes one frame per write()', () => {
    for (const [format, fourcc, bpl] of [
      ['YUY2', 0x56595559, 1280],
      ['I420', 0x32315559, 640],
      ['NV12', 0x3231564e, 640],
    ] as const) {
      const dev = new FakeV4l2Loopback();
      const sink = open(dev, { format });
      expect(dev.pixFormat).toMatchObject({ width: 640, height: 480, pixelformat: fourcc, bytesperline: bpl, sizeimage: frameBytes(format, 640, 480) });
      expect(sink.keptFrameInterval).toEqual({ numerator: 1, denominator: 30 });
      sink.writeFrame(Buffer.alloc(frameBytes(format, 640, 480), 7), format);
      expect(dev.frames).toHaveLength(1);
      expect(dev.frames[0].length).toBe(frameBytes(format, 640, 480));
      void sink.close();
      expect(dev.openFds.size).toBe(0);
    }
  });

  it('permission denied: names the group to join', () => {
    const e = errorOf(() => open(new FakeV4l2Loopback({ openError: 'EACCES' })));
    expect(e.code).toBe('ECAMERA_PERMISSION');
    expect(e.message).toMatch(/permission denied opening \/dev\/video10 .*usermod -aG/);
  });

  it('format refused: the driver kept another format (size over max_width)', () => {
    const dev = new FakeV4l2Loopback({ maxWidth: 1280, maxHeight: 720 });
    const e = errorOf(() => open(dev, { width: 1920, height: 1080 }));
    expect(e.code).toBe('ECAMERA_FORMAT');
    expect(e.message).toMatch(/refused YUYV 1920x1080: the driver kept YUYV 1280x720/);
    expect(dev.openFds.size).toBe(0);
  });

  it('format refused: another producer locked a different format', () => {
    const dev = new FakeV4l2Loopback({ exclusiveCaps: false });
    const first = open(dev, { format: 'I420' });
    const e = errorOf(() => open(dev, { format: 'YUY2' }));
    expect(e.code).toBe('ECAMERA_FORMAT');
    expect(e.message).toMatch(/the driver kept YU12 640x480/);
    void first.close();
  });

  it('exclusive_caps=1 with a producer already running: no output capability, said plainly', () => {
    const dev = new FakeV4l2Loopback();
    const first = open(dev);
    first.writeFrame(Buffer.alloc(frameBytes('YUY2', 640, 480)), 'YUY2');
    const e = errorOf(() => open(dev));
    expect(e.code).toBe('ECAMERA_NOTOUTPUT');
    expect(e.message).toMatch(/another producer is already writing/);
    void first.close();
  });

  it('the fake models v4l2loopback 0.12.7: a write()-only producer leaves the device with no capability once it closes', () => {
    const dev = new FakeV4l2Loopback();
    const fd = dev.open(dev.path);
    dev.setFormat(fd, 640, 480, 0x56595559, 1280, frameBytes('YUY2', 640, 480));
    dev.write(fd, Buffer.alloc(frameBytes('YUY2', 640, 480)));
    dev.close(fd);
    const fd2 = dev.open(dev.path);
    expect(dev.queryCap(fd2).deviceCaps & 0x3).toBe(0);
    dev.close(fd2);
  });

  it('the bridge restarted: a closed sink leaves the device with OUTPUT for the next producer', () => {
    const dev = new FakeV4l2Loopback();
    const first = open(dev);
    first.writeFrame(Buffer.alloc(frameBytes('YUY2', 640, 480), 1), 'YUY2');
    void first.close();
    const second = open(dev);
    second.writeFrame(Buffer.alloc(frameBytes('YUY2', 640, 480), 2), 'YUY2');
    expect(dev.frames.map((f) => f[0])).toEqual([1, 2]);
    void second.close();
    const fd = dev.open(dev.path);
    expect(dev.queryCap(fd).deviceCaps & 0x3).toBe(0x2);
    dev.close(fd);
  });

  it('STREAMON refused: ECAMERA_STREAMON with the reload command, and the fd is closed', () => {
    const dev = new FakeV4l2Loopback({ streamOnError: 'EIO' });
    const e = errorOf(() => open(dev));
    expect(e.code).toBe('ECAMERA_STREAMON');
    expect(e).toMatchObject({
      problem: expect.stringMatching(/refused to start its output queue \(VIDIOC_STREAMON: EIO\)$/),
      fix: expect.stringMatching(/^reload the module: sudo modprobe -r v4l2loopback; sudo modprobe v4l2loopback/),
    });
    expect(dev.openFds.size).toBe(0);
  });

  it('a real webcam (capture-only uvcvideo) is not a loopback device', () => {
    const e = errorOf(() => open(new FakeV4l2Loopback({ driver: 'uvcvideo', caps: 0x1 | 0x04000000 })));
    expect(e.code).toBe('ECAMERA_NOTOUTPUT');
    expect(e.message).toMatch(/"uvcvideo" device .* not a v4l2loopback device/);
  });

  it('the device gets exactly the bytes the file sink writes (same pipeline, same frames)', async () => {
    const dir = tempDir('v4l2');
    const file = path.join(dir, 'frames.yuv');
    const l = new CameraConsoleListener({ log: silentLogger });
    const src = encodePixman(0x20020888, 100, 60, (x, y) => ({ r: x * 2, g: y * 4, b: 128 }));
    l.scanout(100, 60, src.stride, 0x20020888, src.data);
    const dev = new FakeV4l2Loopback();
    const v4l2 = open(dev, { format: 'NV12', width: 320, height: 240 });
    const fileSink = new FileSink({ path: file, width: 320, height: 240, fps: 30, format: 'NV12' });
    const p1 = new CameraPipeline({ source: l, sink: v4l2 });
    const p2 = new CameraPipeline({ source: l, sink: fileSink });
    for (let i = 0; i < 3; i++) {
      p1.tick();
      p2.tick();
      // one write in flight at a time: wait for it so no frame is dropped on a loaded machine
      await waitFor(`file write ${i + 1}`, 10_000, () => fileSink.stats().written === i + 1, 2);
    }
    await fileSink.close();
    await v4l2.close();
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBe(3 * frameBytes('NV12', 320, 240));
    expect(bytes.equals(Buffer.concat(dev.frames))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('cameraDevices() listing', () => {
  it('this host has no /dev/video*: an empty list and the modprobe hint', () => {
    expect(cameraDevices().filter((d) => d.usable)).toEqual([]);
    expect(noDeviceHint()).toMatch(/modprobe v4l2loopback exclusive_caps=1/);
  });
  it('nodes that are not V4L2 are listed as unusable with the reason, in numeric order', () => {
    const dir = tempDir('devs');
    for (const n of ['video10', 'video2', 'other']) fs.writeFileSync(path.join(dir, n), '');
    expect(cameraDevices(dir)).toEqual([
      { path: path.join(dir, 'video2'), loopback: false, usable: false, reason: 'not a V4L2 device (ENOTTY)' },
      { path: path.join(dir, 'video10'), loopback: false, usable: false, reason: 'not a V4L2 device (ENOTTY)' },
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('file/FIFO sink: exact frame layout', () => {
  it('FIFO: a reader process receives whole frames, byte for byte', async () => {
    const dir = tempDir('fifo');
    const fifo = path.join(dir, 'cam.fifo');
    const out = path.join(dir, 'out.yuv');
    await new Promise<void>((resolve, reject) => spawn('mkfifo', [fifo]).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`mkfifo ${c}`)))));
    const n = frameBytes('I420', 64, 48);
    // a real reader: head -c reads exactly 4 frames then exits
    const reader = spawn('sh', ['-c', `head -c ${4 * n} < '${fifo}' > '${out}'`]);
    const done = new Promise<number | null>((r) => reader.on('exit', r));
    const sink = new FileSink({ path: fifo, width: 64, height: 48, fps: 30, format: 'I420' });
    const l = new CameraConsoleListener({ log: silentLogger });
    const fake = new FakeSink({ width: 64, height: 48, fps: 30, format: 'I420' });
    const pf = new CameraPipeline({ source: l, sink: fake });
    const p = new CameraPipeline({ source: l, sink });
    for (let i = 0; i < 4; i++) {
      const px = encodePixman(0x20020888, 64, 48, () => ({ r: 60 * i, g: 255 - 60 * i, b: 30 }));
      l.scanout(64, 48, px.stride, 0x20020888, px.data);
      p.tick();
      pf.tick();
      while (sink.stats().written < i + 1) await new Promise((r) => setTimeout(r, 5));
    }
    expect(await done).toBe(0);
    await sink.close();
    const got = fs.readFileSync(out);
    expect(got.length).toBe(4 * n);
    expect(got.equals(Buffer.concat(fake.frames.map((f) => f.data)))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
