// `list` and `doctor` through the real CLI entry against real QEMU guests on a private bus:
// one 7.2 with audio wired to the display, one without (-audiodev none), one 10.0: list shows them
// with their consoles, doctor passes the first, names the fix for the second, and tells the
// features each QEMU offers.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { startPipeWire } from '../harness/pipewire';
import { startGuest, type Guest } from '../harness/qemu';
import { bundleCli } from '../harness/cli';
import { QEMU_TARGETS } from '../harness/qemu-targets';

let cli: string;
let bus: DbusDaemon;
let withAudio: Guest;
let noAudio: Guest;
let q10: Guest | undefined;
const qemu10 = QEMU_TARGETS.find((t) => t.version === '10.0');

beforeAll(async () => {
  cli = bundleCli('list');
  bus = await startDbusDaemon();
  withAudio = await startGuest({ scenario: 'idle', busAddress: bus.address, name: 'list-audio', uuid: '11111111-2222-3333-4444-555555555555' });
  noAudio = await startGuest({ scenario: 'idle', busAddress: bus.address, name: 'list-silent', audiodev: 'none' });
}, 240_000);

afterAll(async () => {
  await withAudio?.stop();
  await noAudio?.stop();
  await q10?.stop();
  await bus?.stop();
  fs.rmSync(path.dirname(cli), { recursive: true, force: true });
});

function runCli(args: string[], env: NodeJS.ProcessEnv = { XDG_RUNTIME_DIR: '/nonexistent' }) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('list and doctor on a real bus', () => {
  it('list --json shows both VMs with name, UUID, console size and audio', () => {
    const r = runCli(['list', '--address', bus.address, '--json']);
    expect(r.code, r.err).toBe(0);
    const vms = JSON.parse(r.out) as Array<{ name: string; uuid: string; audio: boolean; consoles: Array<{ id: number; type: string; width: number; height: number; interfaces: string[] }> }>;
    const a = vms.find((v) => v.name === 'list-audio');
    const s = vms.find((v) => v.name === 'list-silent');
    expect(a?.uuid).toBe('11111111-2222-3333-4444-555555555555');
    expect(a?.audio).toBe(true);
    expect(s?.audio).toBe(false);
    expect(a?.consoles[0]).toMatchObject({ id: 0, type: 'Graphic' });
    expect(a!.consoles[0].width).toBeGreaterThan(0);
    expect(a!.consoles[0].interfaces).toEqual(expect.arrayContaining(['org.qemu.Display1.Keyboard', 'org.qemu.Display1.Mouse']));
  });

  it('list (text) prints one block per VM', () => {
    const r = runCli(['list', '--address', bus.address]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^list-audio {2}11111111-2222-3333-4444-555555555555/m);
    expect(r.out).toMatch(/console 0: Graphic \d+x\d+/);
    expect(r.out).toContain('audio: no (add audiodev= to -display dbus)');
  });

  it('doctor passes the VM with audio and gives the fix for the one without', () => {
    const ok = runCli(['doctor', '--address', bus.address, '--vm', 'list-audio']);
    expect(ok.out).toMatch(/\[ok {2}\] VM 'list-audio' audio: audio wired/);
    const bad = runCli(['doctor', '--address', bus.address, '--vm', 'list-silent']);
    expect(bad.out).toMatch(/\[FAIL\] VM 'list-silent' audio: no org\.qemu\.Display1\.Audio/);
    expect(bad.out).toMatch(/fix: add audiodev= to -display: -display dbus,audiodev=snd0 -audiodev dbus,id=snd0/);
    expect(bad.code).toBe(1);
    const missing = runCli(['doctor', '--address', bus.address, '--vm', 'nope']);
    expect(missing.out).toMatch(/\[FAIL\] QEMU on the bus: no VM 'nope' on .* \(found: .*list-audio/);
    // sound server: none in this environment -> FAIL with the command that starts one
    expect(missing.out).toMatch(/\[FAIL\] sound server: .*\n\s+fix: systemctl --user start pipewire/);
  });

  it('doctor tells the QEMU features each VM offers: 7.2 without Interfaces and 1024-frame blocks, 10.0 with them and 480', async () => {
    q10 = await startGuest({ qemu: qemu10 ?? { version: '10.0', banner: '', problem: 'QEMU 10.0 is not among the targets (QDB_QEMU)' }, scenario: 'idle', busAddress: bus.address, name: 'list-q10' });
    const old = runCli(['doctor', '--address', bus.address, '--vm', 'list-audio']);
    expect(old.out).toContain("[ok  ] VM 'list-audio' QEMU features: Interfaces (8.1+): no; p2p audio (8.0+): not known fixed (refused over --qmp); MultiTouch (8.1+): no;");
    expect(old.out).toContain('audio block: 1024 frames (fixed before 10.0) (tested: QEMU 7.2 and 10.0)');
    const r = runCli(['doctor', '--address', bus.address, '--vm', 'list-q10']);
    expect(r.out).toContain("[ok  ] VM 'list-q10' QEMU features: Interfaces (8.1+): yes; p2p audio (8.0+): yes; MultiTouch (8.1+): yes;");
    expect(r.out).toContain('audio block: 480 frames (Audio.NSamples, 10.0+)');
    expect(r.out).toMatch(/\[ok {2}\] QEMU D-Bus modules: /);
  });

  it('list --qmp shows the VM behind that QMP socket (bus-less p2p=yes), not the session bus', async () => {
    const p2p = await startGuest({ scenario: 'idle', p2p: true, name: 'list-p2p' });
    try {
      const r = runCli(['list', '--qmp', p2p.qmpPath, '--json']);
      expect(r.code, r.err).toBe(0);
      const vms = JSON.parse(r.out) as Array<{ name: string; owner: string; consoles: Array<{ id: number; type: string }> }>;
      expect(vms).toHaveLength(1);
      expect(vms[0]).toMatchObject({ name: 'list-p2p', owner: `QMP ${p2p.qmpPath}` });
      expect(vms[0].consoles[0]).toMatchObject({ id: 0, type: 'Graphic' });
    } finally {
      await p2p.stop();
    }
  });

  it('list on an unreachable bus is a runtime error (exit 1) naming the address', () => {
    const r = runCli(['list', '--address', 'unix:path=/nonexistent/bus']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('unix:path=/nonexistent/bus');
  });

  it('devices and doctor see a real PipeWire: its sink and source, and the sound check passes', async () => {
    const pw = await startPipeWire();
    try {
      const d = runCli(['devices', '--json'], pw.env);
      expect(d.code, d.err).toBe(0);
      const inv = JSON.parse(d.out) as { audio: { pipewire: { reachable: boolean; nodes: Array<{ direction: string; name: string }> } } };
      expect(inv.audio.pipewire.reachable).toBe(true);
      expect(inv.audio.pipewire.nodes).toEqual(expect.arrayContaining([{ server: 'pipewire', direction: 'sink', name: 'vm-sink', description: expect.any(String) }]));
      expect(inv.audio.pipewire.nodes.some((n) => n.direction === 'source' && n.name === 'vm-mic')).toBe(true);
      const text = runCli(['devices'], pw.env);
      expect(text.out).toMatch(/PipeWire sinks \(--audio-sink\):\n(.*\n)*\s+vm-sink/);
      const doc = runCli(['doctor', '--address', bus.address, '--vm', 'list-audio'], pw.env);
      expect(doc.out).toMatch(/\[ok {2}\] sound server: PipeWire reachable/);
      expect(doc.out).toContain('all prerequisites met');
      expect(doc.code).toBe(0);
    } finally {
      await pw.stop();
    }
  });
});
