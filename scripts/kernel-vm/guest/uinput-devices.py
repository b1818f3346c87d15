#!/usr/bin/python3
"""uinput device factory for the kernel-device tier (runs in the guest as root; stdlib only).

Commands, one per line on stdin; answers on stdout:
  create ID KIND NAME VID PID   KIND: keyboard | mouse | hires-mouse | tablet | combo; NAME without spaces
                                (underscores become spaces). -> CREATED ID /dev/input/eventN
  destroy ID                    -> DESTROYED ID
  ev ID T C V [T C V ...]       write the events, then SYN_REPORT -> OK ev ID
  flood ID N                    N KEY_A press/release frames, then KEY_A pressed and held -> FLOODED ID N
  quit
Asynchronously: `LED ID CODE VALUE` for every EV_LED the kernel hands a keyboard's uinput fd, i.e.
what a client (the bridge, the console keyboard handler) wrote to the device's LEDs.
Errors: `ERROR <command>: <reason>` (the factory keeps going)."""
import fcntl
import os
import select
import struct
import sys
import threading
import time

EV_SYN, EV_KEY, EV_REL, EV_ABS, EV_LED, EV_REP = 0, 1, 2, 3, 0x11, 0x14
# ioctls from <linux/uinput.h> (x86_64)
UI_DEV_CREATE, UI_DEV_DESTROY = 0x5501, 0x5502
UI_DEV_SETUP = 0x405C5503          # struct uinput_setup (92 bytes)
UI_ABS_SETUP = 0x401C5504          # struct uinput_abs_setup (28 bytes)
UI_SET_EVBIT, UI_SET_KEYBIT, UI_SET_RELBIT = 0x40045564, 0x40045565, 0x40045566
UI_SET_ABSBIT, UI_SET_LEDBIT, UI_SET_PROPBIT = 0x40045567, 0x40045569, 0x4004556E
UI_SET_PHYS = 0x4008556C
UI_GET_SYSNAME_64 = 0x8040552C
INPUT_PROP_DIRECT = 1
BUS_USB = 0x03
EVFMT = 'llHHi'  # struct input_event on x86_64 (24 bytes)
EVSZ = struct.calcsize(EVFMT)
out_lock = threading.Lock()


def say(*a):
    with out_lock:
        print(*a, flush=True)


# KIND -> (evbits, keys, rels, abs {code: (min, max, resolution)}, leds, props)
KEYBOARD_KEYS = list(range(1, 249))
KINDS = {
    'keyboard': ([EV_KEY, EV_LED, EV_REP], KEYBOARD_KEYS, [], {}, [0, 1, 2], []),
    # REL_X, REL_Y, REL_WHEEL (8); BTN_LEFT/RIGHT/MIDDLE/SIDE/EXTRA
    'mouse': ([EV_KEY, EV_REL], [0x110, 0x111, 0x112, 0x113, 0x114], [0, 1, 8], {}, [], []),
    # + REL_HWHEEL (6), REL_WHEEL_HI_RES (11), REL_HWHEEL_HI_RES (12): a hi-res wheel mouse
    'hires-mouse': ([EV_KEY, EV_REL], [0x110, 0x111, 0x112], [0, 1, 6, 8, 11, 12], {}, [], []),
    # a pen tablet: ABS_X 0..15199, ABS_Y 0..9499 (resolution 100 units/mm), BTN_TOUCH, BTN_STYLUS
    'tablet': ([EV_KEY, EV_ABS], [0x14A, 0x14B], [], {0: (0, 15199, 100), 1: (0, 9499, 100)}, [], [INPUT_PROP_DIRECT]),
    # keyboard (LEDs, no autorepeat: a press held across a slow TCG moment must stay one press)
    # and plain mouse in one device, as a stream replay may mix both: the input source contract's
    'combo': ([EV_KEY, EV_REL, EV_LED], KEYBOARD_KEYS + [0x110, 0x111, 0x112], [0, 1, 8], {}, [0, 1, 2], []),
}


class Device:
    def __init__(self, ident, kind, name, vid, pid):
        evbits, keys, rels, absinfo, leds, props = KINDS[kind]
        self.ident, self.kind = ident, kind
        self.fd = os.open('/dev/uinput', os.O_RDWR | os.O_NONBLOCK)
        for t in evbits:
            fcntl.ioctl(self.fd, UI_SET_EVBIT, t)
        for k in keys:
            fcntl.ioctl(self.fd, UI_SET_KEYBIT, k)
        for r in rels:
            fcntl.ioctl(self.fd, UI_SET_RELBIT, r)
        for l in leds:
            fcntl.ioctl(self.fd, UI_SET_LEDBIT, l)
        for p in props:
            fcntl.ioctl(self.fd, UI_SET_PROPBIT, p)
        for code, (lo, hi, res) in absinfo.items():
            fcntl.ioctl(self.fd, UI_SET_ABSBIT, code)
            # struct uinput_abs_setup { __u16 code; struct input_absinfo { value min max fuzz flat resolution } }
            fcntl.ioctl(self.fd, UI_ABS_SETUP, struct.pack('Hxxiiiiii', code, 0, lo, hi, 0, 0, res))
        fcntl.ioctl(self.fd, UI_SET_PHYS, ('kdev/%s' % ident).encode() + b'\0')
        fcntl.ioctl(self.fd, UI_DEV_SETUP, struct.pack('HHHH80sI', BUS_USB, vid, pid, 1, name.encode(), 0))
        fcntl.ioctl(self.fd, UI_DEV_CREATE)
        self.path = self._node()

    def _node(self):
        buf = bytearray(64)
        fcntl.ioctl(self.fd, UI_GET_SYSNAME_64, buf)
        base = '/sys/devices/virtual/input/' + bytes(buf).split(b'\0')[0].decode()
        for _ in range(200):  # evdev attaches, then devtmpfs creates the node
            for e in os.listdir(base):
                if e.startswith('event') and os.path.exists('/dev/input/' + e):
                    return '/dev/input/' + e
            time.sleep(0.025)
        raise RuntimeError('no event node under ' + base)

    def emit(self, t, c, v):
        os.write(self.fd, struct.pack(EVFMT, 0, 0, t, c, v))

    def destroy(self):
        fcntl.ioctl(self.fd, UI_DEV_DESTROY)
        os.close(self.fd)
        self.fd = -1


devices = {}
devices_lock = threading.Lock()


def led_reader():
    """EV_LED written to a device arrives on its uinput fd: report it (keyboards only)."""
    while True:
        with devices_lock:
            fds = {d.fd: d for d in devices.values() if d.kind in ('keyboard', 'combo') and d.fd >= 0}
        if not fds:
            time.sleep(0.02)
            continue
        r, _, _ = select.select(list(fds), [], [], 0.05)
        for fd in r:
            try:
                data = os.read(fd, EVSZ * 64)
            except OSError:
                continue
            for i in range(0, len(data) - EVSZ + 1, EVSZ):
                _, _, t, c, v = struct.unpack_from(EVFMT, data, i)
                if t == EV_LED:
                    say('LED', fds[fd].ident, c, v)


def main():
    threading.Thread(target=led_reader, daemon=True).start()
    say('READY')
    for line in sys.stdin:
        a = line.split()
        if not a:
            continue
        try:
            if a[0] == 'quit':
                break
            if a[0] == 'create':
                ident, kind, name, vid, pid = a[1], a[2], a[3].replace('_', ' '), int(a[4], 16), int(a[5], 16)
                d = Device(ident, kind, name, vid, pid)
                with devices_lock:
                    devices[ident] = d
                say('CREATED', ident, d.path)
            elif a[0] == 'destroy':
                with devices_lock:
                    d = devices.pop(a[1])
                d.destroy()
                say('DESTROYED', a[1])
            elif a[0] == 'ev':
                d = devices[a[1]]
                nums = [int(x) for x in a[2:]]
                for i in range(0, len(nums) - 2, 3):
                    d.emit(nums[i], nums[i + 1], nums[i + 2])
                d.emit(EV_SYN, 0, 0)
                say('OK ev', a[1])
            elif a[0] == 'flood':
                d, n = devices[a[1]], int(a[2])
                for i in range(n):
                    d.emit(EV_KEY, 30, 1)
                    d.emit(EV_SYN, 0, 0)
                    d.emit(EV_KEY, 30, 0)
                    d.emit(EV_SYN, 0, 0)
                d.emit(EV_KEY, 30, 1)
                d.emit(EV_SYN, 0, 0)
                say('FLOODED', a[1], n)
            else:
                say('ERROR %s: unknown command' % a[0])
        except Exception as e:  # keep serving: the test decides what a failure means
            say('ERROR %s: %s' % (a[0], e))
    with devices_lock:
        for d in devices.values():
            d.destroy()


if __name__ == '__main__':
    main()
