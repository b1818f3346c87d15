#!/usr/bin/python3
"""A V4L2 capture consumer that opens the device BEFORE any producer exists and keeps it open
(what a video app that was started first does), for the kernel tier's v4l2 group (stdlib only).

Usage: v4l2_consumer.py DEVICE OUTFILE
Opens DEVICE, prints `OPENED caps=0x..`, then polls VIDIOC_QUERYCAP on that same fd until the
device offers VIDEO_CAPTURE (a producer set it up), prints `CAPTURE WxH FOURCC sizeimage`, waits
for a `go` line on stdin, then streams with mmap buffers and, for every frame, rewrites OUTFILE
(write + rename: always one whole frame) and prints `FRAME n bytesused`. Ends on stdin EOF:
STREAMOFF, close, `CLOSED`.
The `go` exists because v4l2loopback 0.12.7 shares its buffers between readers: another reader's
VIDIOC_REQBUFS (v4l2-ctl, GStreamer) clears the MAPPED flag of every buffer, and this reader's
next DQBUF fails with EINVAL. The test starts other readers only while this one is not streaming.
Errors: `ERROR <what>: <reason>` and exit 1."""
import errno
import fcntl
import mmap
import os
import select
import struct
import sys
import time

# ioctl numbers of <linux/videodev2.h> on x86_64
VIDIOC_QUERYCAP = 0x80685600   # struct v4l2_capability, 104 bytes
VIDIOC_G_FMT = 0xC0D05604      # struct v4l2_format, 208 bytes
VIDIOC_REQBUFS = 0xC0145608    # struct v4l2_requestbuffers, 20 bytes
VIDIOC_QUERYBUF = 0xC0585609   # struct v4l2_buffer, 88 bytes
VIDIOC_QBUF = 0xC058560F
VIDIOC_DQBUF = 0xC0585611
VIDIOC_STREAMON = 0x40045612
VIDIOC_STREAMOFF = 0x40045613
CAPTURE = 1
MMAP = 1
CAP_VIDEO_CAPTURE = 0x1
CAP_DEVICE_CAPS = 0x80000000


def out(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def querycap(fd):
    b = bytearray(104)
    fcntl.ioctl(fd, VIDIOC_QUERYCAP, b)
    caps, dcaps = struct.unpack_from('II', b, 84)
    return dcaps if caps & CAP_DEVICE_CAPS else caps


def buffer_struct(index):
    b = bytearray(88)
    struct.pack_into('II', b, 0, index, CAPTURE)
    struct.pack_into('I', b, 60, MMAP)
    return b


def main():
    dev, outfile = sys.argv[1], sys.argv[2]
    fd = os.open(dev, os.O_RDWR | os.O_NONBLOCK)
    out('OPENED caps=0x%x' % querycap(fd))

    def stdin_closed():
        r, _, _ = select.select([sys.stdin], [], [], 0)
        return bool(r) and sys.stdin.buffer.read1(4096) == b''

    while not querycap(fd) & CAP_VIDEO_CAPTURE:
        if stdin_closed():
            os.close(fd)
            out('CLOSED')
            return
        time.sleep(0.05)
    fmt = bytearray(208)
    struct.pack_into('I', fmt, 0, CAPTURE)
    fcntl.ioctl(fd, VIDIOC_G_FMT, fmt)
    width, height, fourcc, _field, _bpl, sizeimage = struct.unpack_from('6I', fmt, 8)
    out('CAPTURE %dx%d %s %d' % (width, height, struct.pack('<I', fourcc).decode('ascii', 'replace'), sizeimage))
    if sys.stdin.readline().strip() != 'go':
        os.close(fd)
        out('CLOSED')
        return
    req = bytearray(struct.pack('III', 4, CAPTURE, MMAP) + bytes(8))
    fcntl.ioctl(fd, VIDIOC_REQBUFS, req)
    count = struct.unpack_from('I', req, 0)[0]
    maps = []
    for i in range(count):
        b = buffer_struct(i)
        fcntl.ioctl(fd, VIDIOC_QUERYBUF, b)
        offset, length = struct.unpack_from('I', b, 64)[0], struct.unpack_from('I', b, 72)[0]
        maps.append(mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ, offset=offset))
        fcntl.ioctl(fd, VIDIOC_QBUF, b)
    fcntl.ioctl(fd, VIDIOC_STREAMON, struct.pack('I', CAPTURE))
    n = 0
    tmp = outfile + '.tmp'
    while True:
        r, _, _ = select.select([fd, sys.stdin], [], [], 1.0)
        if sys.stdin in r and sys.stdin.buffer.read1(4096) == b'':
            break
        if fd not in r:
            continue
        b = buffer_struct(0)
        try:
            fcntl.ioctl(fd, VIDIOC_DQBUF, b)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                continue
            raise
        index, bytesused = struct.unpack_from('I', b, 0)[0], struct.unpack_from('I', b, 8)[0]
        with open(tmp, 'wb') as f:
            f.write(maps[index][:bytesused])
        os.rename(tmp, outfile)
        n += 1
        out('FRAME %d %d' % (n, bytesused))
        fcntl.ioctl(fd, VIDIOC_QBUF, b)
    fcntl.ioctl(fd, VIDIOC_STREAMOFF, struct.pack('I', CAPTURE))
    for m in maps:
        m.close()
    os.close(fd)
    out('CLOSED')


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # one line for the test's failure message
        out('ERROR %s: %s' % (type(e).__name__, e))
        sys.exit(1)
