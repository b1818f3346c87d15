// What a process may do, as one line of JSON: run once as a plain process of the user and once
// inside a user unit carrying the bridge's hardening block (systemd.guest.ts), so the difference
// is what the user manager really enforces. Each probe is something the user CAN do without the
// hardening (a world-writable dir, its own home, an AF_INET socket, lowering its priority...).
// Usage: node hardening-probe.js EVDEV_NODE
'use strict';
const fs = require('fs');
const net = require('net');
const os = require('os');

const [evdev] = process.argv.slice(2);
const code = (fn) => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    // os.setPriority wraps the errno: ERR_SYSTEM_ERROR with info.code
    return (e.info && e.info.code) || e.code || String(e.message);
  }
};
const openRw = (p) => code(() => fs.closeSync(fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)));
const status = fs.readFileSync('/proc/self/status', 'utf8');
const field = (name) => (new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status) || [])[1];
const ns = (kind) => code(() => fs.readlinkSync(`/proc/self/ns/${kind}`)) === 'ok' ? fs.readlinkSync(`/proc/self/ns/${kind}`) : 'unreadable';

const r = {
  userns: ns('user'),
  netns: ns('net'),
  ipcns: ns('ipc'),
  utsns: ns('uts'),
  evdev: openRw(evdev),
  video: openRw('/dev/video10'),
  uinput: openRw('/dev/uinput'),
  writeSrv: code(() => fs.writeFileSync(`/srv/qdb-probe/w-${process.pid}`, 'x')),
  writeHome: code(() => fs.writeFileSync(`${os.homedir()}/qdb-probe-w-${process.pid}`, 'x')),
  tmpMarker: fs.existsSync('/tmp/qdb-outside-marker') ? 'visible' : 'hidden',
  setpriority: code(() => os.setPriority(0, 5)),
  pid1: fs.existsSync('/proc/1/status') ? 'visible' : 'hidden',
  noNewPrivs: field('NoNewPrivs'),
  seccomp: field('Seccomp'),
  capBnd: field('CapBnd'),
  umask: process.umask().toString(8).padStart(4, '0'),
};
const server = net.createServer();
server.once('error', (e) => {
  r.inet = e.code || String(e.message);
  console.log(JSON.stringify(r));
});
server.listen(0, '127.0.0.1', () => {
  r.inet = 'ok';
  server.close();
  console.log(JSON.stringify(r));
});
