// Host inventory for `devices` and `doctor` on a fake /sys + /dev tree and canned tool output:
// device kinds from capability bitmaps, by-id names, v4l2loopback detection and the checks'
// verdicts and fixes.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { cameraCheck, inputCheck, qemuChecks, qemuModulesCheck, soundCheck } from '../../src/cli/commands/doctor';
import { Host, audioInventory, inputDevices, loopbackDevices } from '../../src/cli/host';
import { describeDevice, sysfsDeviceInfo } from '../../src/input/devices';
import { ruleMatches } from '../../src/input/selection';
import { tempDir } from '../harness/procs';

function fakeHost(exec: Host['exec'] = () => Promise.resolve({ code: 127, stdout: '', stderr: 'not installed' })): Host {
  return { root: tempDir('host'), env: { USER: 'alice' }, exec };
}

function addInput(h: Host, n: number, name: string, caps: { key?: string; rel?: string; abs?: string }, byId?: string, mode = 0o660): void {
  const sys = path.join(h.root, `sys/class/input/event${n}/device`);
  fs.mkdirSync(path.join(sys, 'capabilities'), { recursive: true });
  fs.writeFileSync(path.join(sys, 'name'), name + '\n');
  for (const [k, v] of Object.entries(caps)) fs.writeFileSync(path.join(sys, 'capabilities', k), v + '\n');
  fs.mkdirSync(path.join(h.root, 'dev/input/by-id'), { recursive: true });
  fs.writeFileSync(path.join(h.root, `dev/input/event${n}`), '', { mode });
  if (byId) fs.symlinkSync(`../event${n}`, path.join(h.root, 'dev/input/by-id', byId));
}

// KEY_A is bit 30 of the lowest word; BTN_LEFT is bit 0x110 = word 4 (64-bit words: word 4 of 64 -> bit 16 of word 4).
const KEYBOARD_KEYS = 'fffffffffffffffe';
const MOUSE_KEYS = '1f0000 0 0 0 0';
const REL_XY = '143';
const ABS_XY = '3';

describe('host inventory', () => {
  it('classifies keyboards, mice and tablets and prefers the by-id path', () => {
    const h = fakeHost();
    addInput(h, 3, 'Logitech USB Keyboard', { key: KEYBOARD_KEYS }, 'usb-Logitech_USB_Keyboard-event-kbd');
    addInput(h, 4, 'Logitech USB Optical Mouse', { key: MOUSE_KEYS, rel: REL_XY }, 'usb-Logitech_Mouse-event-mouse');
    addInput(h, 5, 'QEMU Tablet', { key: MOUSE_KEYS, abs: ABS_XY });
    addInput(h, 6, 'Power Button', { key: '10000000000000 0' });
    const d = inputDevices(h);
    expect(d.map((x) => [x.node, x.kind, x.byId ?? null])).toEqual([
      ['/dev/input/event3', 'keyboard', '/dev/input/by-id/usb-Logitech_USB_Keyboard-event-kbd'],
      ['/dev/input/event4', 'mouse', '/dev/input/by-id/usb-Logitech_Mouse-event-mouse'],
      ['/dev/input/event5', 'tablet', null],
      ['/dev/input/event6', 'other', null],
    ]);
    expect(d[0].name).toBe('Logitech USB Keyboard');
  });

  it("kinds follow the forwarder's rule: KEY_A alone is no keyboard, and all-keyboards picks exactly what the listing calls keyboard", () => {
    const h = fakeHost();
    addInput(h, 3, 'Logitech USB Keyboard', { key: KEYBOARD_KEYS });
    addInput(h, 7, 'Macro Pad', { key: '40000000' }); // KEY_A (bit 30) only: no KEY_Z, no KEY_ENTER
    addInput(h, 8, 'Gamepad', { key: '1000000000000 0 0 0 0' }); // BTN_GAMEPAD (0x130 = word 4, bit 48)
    expect(inputDevices(h).map((d) => [d.node, d.kind])).toEqual([
      ['/dev/input/event3', 'keyboard'],
      ['/dev/input/event7', 'other'],
      ['/dev/input/event8', 'joystick'],
    ]);
    const picked = ['event3', 'event7', 'event8'].filter((e) => ruleMatches({ kind: 'all-keyboards' }, `/dev/input/${e}`, describeDevice(sysfsDeviceInfo(h.root, e))));
    expect(picked).toEqual(['event3']);
  });

  it('finds v4l2loopback devices and checks exclusive_caps', () => {
    const h = fakeHost();
    expect(cameraCheck(h)).toMatchObject({ state: 'warn', detail: expect.stringContaining('not loaded') });
    fs.mkdirSync(path.join(h.root, 'sys/module/v4l2loopback/parameters'), { recursive: true });
    fs.writeFileSync(path.join(h.root, 'sys/module/v4l2loopback/parameters/exclusive_caps'), 'N,N\n');
    expect(cameraCheck(h)).toMatchObject({ state: 'fail', fix: expect.stringContaining('exclusive_caps=1') });
    fs.writeFileSync(path.join(h.root, 'sys/module/v4l2loopback/parameters/exclusive_caps'), 'Y,N\n');
    expect(cameraCheck(h).state).toBe('ok');
    fs.mkdirSync(path.join(h.root, 'sys/devices/virtual/video4linux/video10'), { recursive: true });
    fs.writeFileSync(path.join(h.root, 'sys/devices/virtual/video4linux/video10/name'), 'VM camera\n');
    expect(loopbackDevices(h)).toEqual([{ node: '/dev/video10', name: 'VM camera' }]);
  });

  it('input check: none, unreadable (with the group fix), readable', () => {
    const h = fakeHost();
    expect(inputCheck(h).state).toBe('warn');
    addInput(h, 3, 'kbd', { key: KEYBOARD_KEYS }, undefined, 0o000);
    // root reads everything: only judge the unreadable case when not root
    if (process.getuid?.() !== 0) expect(inputCheck(h)).toMatchObject({ state: 'fail', fix: expect.stringContaining('usermod -aG input alice') });
    fs.chmodSync(path.join(h.root, 'dev/input/event3'), 0o644);
    expect(inputCheck(h)).toMatchObject({ state: 'ok', detail: expect.stringContaining('1 keyboards') });
  });

  it('parses pw-dump and pactl output; sound check says which server answered', async () => {
    const pwDump = JSON.stringify([
      { type: 'PipeWire:Interface:Node', info: { props: { 'media.class': 'Audio/Sink', 'node.name': 'alsa_output.usb', 'node.description': 'USB Audio' } } },
      { type: 'PipeWire:Interface:Node', info: { props: { 'media.class': 'Audio/Source', 'node.name': 'alsa_input.usb', 'node.description': 'USB Mic' } } },
      { type: 'PipeWire:Interface:Node', info: { props: { 'media.class': 'Video/Source', 'node.name': 'cam' } } },
    ]);
    const h = fakeHost((cmd, args) => {
      if (cmd === 'pw-dump') return Promise.resolve({ code: 0, stdout: pwDump, stderr: '' });
      if (cmd === 'pactl' && args[0] === 'info') return Promise.resolve({ code: 0, stdout: 'Server Name: PulseAudio (on PipeWire 0.3.65)\n', stderr: '' });
      if (cmd === 'pactl' && args[2] === 'sinks') return Promise.resolve({ code: 0, stdout: '47\talsa_output.usb\tPipeWire\ts16le 2ch 48000Hz\tRUNNING\n', stderr: '' });
      if (cmd === 'pactl' && args[2] === 'sources')
        return Promise.resolve({ code: 0, stdout: '47\talsa_output.usb.monitor\tPipeWire\ts16le\tIDLE\n48\talsa_input.usb\tPipeWire\ts16le\tIDLE\n', stderr: '' });
      return Promise.resolve({ code: 1, stdout: '', stderr: 'unexpected' });
    });
    const inv = await audioInventory(h);
    expect(inv.pipewire.nodes.map((n) => `${n.direction}:${n.name}`)).toEqual(['sink:alsa_output.usb', 'source:alsa_input.usb']);
    expect(inv.pulse.nodes.map((n) => `${n.direction}:${n.name}`)).toEqual(['sink:alsa_output.usb', 'source:alsa_input.usb']);
    expect(inv.pulse.serverName).toBe('PulseAudio (on PipeWire 0.3.65)');
    expect(await soundCheck(h)).toMatchObject({ state: 'ok', detail: 'PipeWire reachable (2 audio nodes)' });
    const none = await soundCheck(fakeHost());
    expect(none).toMatchObject({ state: 'fail', fix: expect.stringContaining('systemctl --user start pipewire') });
  });

  it('QEMU checks: bus error, VM missing, audio not wired', () => {
    expect(qemuChecks(new Error('Connection refused'), 'unix:path=/x')[0]).toMatchObject({ state: 'fail', detail: expect.stringContaining('unix:path=/x') });
    expect(qemuChecks([], 'unix:path=/x', 'win11')[0]).toMatchObject({ state: 'fail', fix: expect.stringContaining('-display dbus,audiodev=snd0') });
    const vm = { owner: ':1.1', name: 'win11', uuid: 'u', consoles: [], audio: false, clipboard: true, chardevs: [], features: { interfaces: false, multiTouch: false, audioNSamples: null } };
    const checks = qemuChecks([vm], 'unix:path=/x', 'win11');
    expect(checks.map((c) => c.state)).toEqual(['ok', 'ok', 'fail']);
  });

  it('QEMU features: each one with the version that brought it, and the tested versions', () => {
    const vm = { owner: ':1.1', name: 'v', uuid: 'u', consoles: [], audio: true, clipboard: true, chardevs: [], features: { interfaces: true, multiTouch: true, audioNSamples: 480 } };
    const line = qemuChecks([vm], 'unix:path=/x', 'v')[1];
    expect(line).toMatchObject({ name: "VM 'v' QEMU features", state: 'ok' });
    expect(line.detail).toBe(
      'Interfaces (8.1+): yes; p2p audio (8.0+): yes; MultiTouch (8.1+): yes; shared-memory scanouts, Listener.Unix.Map (9.2+): offered by the bridge, used if this QEMU knows it; audio block: 480 frames (Audio.NSamples, 10.0+) (tested: QEMU 7.2 and 10.0)',
    );
  });

  it('QEMU modules: a module dir without ui-dbus.so/audio-dbus.so fails and names the split package', () => {
    const root = tempDir('mods');
    const dir = path.join(root, 'usr/lib/x86_64-linux-gnu/qemu');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'audio-dbus.so'), '');
    const h = { ...fakeHost(), root, env: {} };
    expect(qemuModulesCheck(h)).toMatchObject({ state: 'fail', detail: 'ui-dbus.so missing from /usr/lib/x86_64-linux-gnu/qemu: -display dbus / -audiodev dbus will not start' });
    expect(qemuModulesCheck(h).fix).toContain('sudo apt-get install qemu-system-modules-opengl');
    fs.writeFileSync(path.join(dir, 'ui-dbus.so'), '');
    expect(qemuModulesCheck(h).state).toBe('ok');
    expect(qemuModulesCheck({ ...h, root: path.join(root, 'empty') }).state).toBe('ok'); // no module dir: nothing to say
  });
});
