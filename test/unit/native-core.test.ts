import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { describe, expect, it } from 'vitest';
import { ADDON_EXPORTS, native, sdNotify, socketpair } from '../../src/native';
import { bundleScript } from '../harness/cli';

describe('native core', () => {
  // Each addon links one library (binding.gyp, native/addon.cc): reading an export maps its own
  // library and no other, so a bridge maps only what its configuration uses.
  it('each addon is loaded at the first read of one of its exports, mapping its own library only', () => {
    const script = path.join(__dirname, '../../.cache/test-cli', `lazy-addons-${process.pid}`, 'script.js');
    bundleScript(
      `import * as fs from 'fs';
       import { native } from './src/native';
       const LIBS = ['/libpipewire-0.3.so', '/libpulse.so', '/libyuv.so', '/libevdev.so', '/libvirt.so'];
       const mapped = () => { const maps = fs.readFileSync('/proc/self/maps', 'utf8'); return LIBS.filter((l) => maps.includes(l)).map((l) => l.slice(1, l.indexOf('.'))); };
       const steps: Record<string, string[]> = { start: mapped() };
       native.socketpair();
       steps.socketpair = mapped();
       void native.PwPlayback;
       steps.PwPlayback = mapped();
       void native.PulsePlayback;
       steps.PulsePlayback = mapped();
       void native.yuvCompose;
       steps.yuvCompose = mapped();
       void native.EvdevDevice;
       steps.EvdevDevice = mapped();
       const isClass = typeof native.LibvirtConnection === 'function';
       steps.LibvirtConnection = mapped();
       console.log(JSON.stringify({ steps, isClass }));`,
      script,
    );
    try {
      const r = spawnSync(process.execPath, [script], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        isClass: true,
        steps: {
          start: [],
          socketpair: [],
          PwPlayback: ['libpipewire-0'],
          PulsePlayback: ['libpipewire-0', 'libpulse'],
          yuvCompose: ['libpipewire-0', 'libpulse', 'libyuv'],
          EvdevDevice: ['libpipewire-0', 'libpulse', 'libyuv', 'libevdev'],
          LibvirtConnection: ['libpipewire-0', 'libpulse', 'libyuv', 'libevdev', 'libvirt'],
        },
      });
    } finally {
      fs.rmSync(path.dirname(script), { recursive: true, force: true });
    }
  });

  it('every addon binding.gyp builds exports exactly what src/native.ts lists for it', () => {
    const gyp = JSON.parse(fs.readFileSync(path.join(__dirname, '../../binding.gyp'), 'utf8')) as { targets: { target_name: string }[] };
    expect(gyp.targets.map((t) => t.target_name).sort()).toEqual(Object.keys(ADDON_EXPORTS).sort());
    for (const [name, keys] of Object.entries(ADDON_EXPORTS)) {
      const addon = require(path.join(__dirname, '../../build/Release', `${name}.node`)) as Record<string, unknown>;
      expect({ name, keys: Object.keys(addon).sort() }).toEqual({ name, keys: [...keys].sort() });
    }
  });

  it('socketpair returns two connected CLOEXEC stream sockets', async () => {
    const [a, b] = socketpair();
    expect(a).toBeGreaterThan(2);
    expect(b).toBeGreaterThan(2);
    expect(a).not.toBe(b);
    // FD_CLOEXEC is visible in /proc/self/fdinfo as octal flags 02000000
    const flags = parseInt(/flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${a}`, 'utf8'))![1], 8);
    expect(flags & 0o2000000).toBe(0o2000000);
    expect(fs.readlinkSync(`/proc/self/fd/${a}`)).toMatch(/^socket:/);
    const sa = new net.Socket({ fd: a, readable: true, writable: true });
    const sb = new net.Socket({ fd: b, readable: true, writable: true });
    const got = new Promise<string>((res) => sb.once('data', (d) => res(d.toString())));
    sa.write('ping');
    expect(await got).toBe('ping');
    sa.destroy();
    sb.destroy();
  });

  it('sdNotify is a no-op without NOTIFY_SOCKET', () => {
    const saved = process.env.NOTIFY_SOCKET;
    delete process.env.NOTIFY_SOCKET;
    try {
      expect(sdNotify('READY=1')).toBe(false);
    } finally {
      if (saved !== undefined) process.env.NOTIFY_SOCKET = saved;
    }
  });

  it('sdNotify sends one datagram to NOTIFY_SOCKET', () => {
    // A real AF_UNIX datagram receiver (python3: Node has no unix datagram sockets).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qdb-notify-'));
    const sock = path.join(dir, 'notify');
    const script = `
import socket,sys,subprocess,os
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(10)
env=dict(os.environ, NOTIFY_SOCKET=sys.argv[1])
p=subprocess.Popen([sys.argv[2], '-e', "const {sdNotify}=require(process.argv[1]); process.exit(sdNotify('READY=1\\\\nSTATUS=hello')?0:3)", sys.argv[3]], env=env)
print(s.recv(4096).decode().replace('\\n','|')); sys.exit(p.wait())
`;
    const r = spawnSync('python3', ['-c', script, sock, process.execPath, require.resolve('../../dist/src/native.js')], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('READY=1|STATUS=hello');
  });

  it('sdNotify reports an unreachable socket as an Error with a code', () => {
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = '/nonexistent/qdb/notify';
    try {
      expect(() => sdNotify('READY=1')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
  });

  it('rejects wrong argument types with code EINVAL instead of crashing', () => {
    expect(() => (native.sdNotify as unknown as (x: unknown) => boolean)(42)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/sdNotify: text must be a string/) }));
  });
});

describe('dependencies', () => {
  it('usocket (fd passing) is installed and loads on this Node', () => {
    // npm silently drops usocket when its build fails (docs: dbus.md, Traps): fail loudly here.
    const { USocket } = require('usocket');
    expect(typeof USocket).toBe('function');
  });

  it('dbus-native is pinned to an exact version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../package.json'), 'utf8'));
    expect(pkg.dependencies['dbus-native']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(require('dbus-native/package.json').version).toBe(pkg.dependencies['dbus-native']);
  });
});
