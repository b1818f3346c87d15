// libvirt domains as the bridge's target, against a REAL libvirt started here: the test user's
// qemu:///session daemon (spawned by libvirt on first use) and the qemu:///system daemon
// (virtlogd + libvirtd by PID), TCG domains that direct-boot the test guest with
// <graphics type='dbus'/>, a private PipeWire and gst. Checked: a session domain bridged by name
// as its non-root owner (typed keys reach the guest, tone reaches the sink, pattern reaches the
// camera); destroy + start three times, re-attached each time to the new bus without restarting
// the bridge; `virsh reboot` (ACPI power button, libvirt resets the same QEMU) keeps the bridge
// attached to the same bus with the tone flowing again, `virsh shutdown` + `start` re-attaches; a
// system domain whose bus belongs to libvirt's qemu user gives one line naming who
// may connect and exit 3, without retrying; a p2p='yes' domain attached through
// virDomainOpenGraphics (camera; QEMU 7.2's audio refusal logged once); doctor on a domain
// without <audio type='dbus'/> names the XML to add. Domains are undefined and daemons stopped
// by PID at the end.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cameraNodeName } from '../../src/camera/sinks/pipewire';
import { EventScript, writeEvents } from '../../src/input/replay-writer';
import { channel, dominantFrequency, recordSinkMonitor, rms } from '../harness/audio-capture';
import { startBridgeProcess, type BridgeProcess } from '../harness/bridge-process';
import { bundleCli } from '../harness/cli';
import { captureCameraFrames, colorDistance, decodePng, meanColor } from '../harness/gst';
import { defineDomain, startSystemLibvirt, stopSessionLibvirt, testUser, waitForDomainSerial, type SystemLibvirt, type TestDomain, type TestUser } from '../harness/libvirt';
import { startPipeWire, type PipeWire } from '../harness/pipewire';
import { sleep, waitFor } from '../harness/procs';
import { parseInputEvents } from '../harness/qemu';

const KEY_H = 35;
const KEY_I = 23;
const SESSION = 'qemu:///session';
const SYSTEM = 'qemu:///system';

let cli: string;
let pw: PipeWire;
let user: TestUser;
let system: SystemLibvirt | undefined;
const domains: TestDomain[] = [];
const t0 = Date.now();

type Bridge = BridgeProcess;

/** `run` as a child process, as the test user (bus mode) or as root. */
function startBridge(args: string[], as?: TestUser): Bridge {
  return startBridgeProcess(['run', ...args, '--log-format', 'json', '--log-level', 'debug'], {
    cli,
    cleanEnv: true,
    env: { ...(as ? as.env : process.env), PIPEWIRE_REMOTE: pw.env.PIPEWIRE_REMOTE },
    wrap: as ? (cmd, argv) => as.as(cmd, argv) : undefined,
  });
}

async function stopBridge(b: Bridge): Promise<void> {
  await b.stop(5000);
}

/** JSON log lines of the bridge. */
function logLines(b: Bridge): Array<{ msg?: string; message?: string; level?: string; code?: string } & Record<string, unknown>> {
  return b
    .log()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
const text = (b: Bridge): string[] => logLines(b).map((l) => String(l.msg ?? l.message ?? ''));

async function waitForTone(what: string): Promise<{ hz: number; level: number }> {
  let last = { hz: 0, level: 0 };
  try {
    await waitFor(what, 90_000, async () => {
      const rec = recordSinkMonitor(pw, { sink: 'vm-sink', rate: 48000, channels: 2 });
      await rec.ready;
      await sleep(1500);
      const r = await rec.stop();
      last = { hz: dominantFrequency(r.samples, r.rate, { channels: r.channels }), level: rms(channel(r.samples, r.channels, 0)) };
      return Math.abs(last.hz - 1000) <= 20 && last.level > 0.05;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; last measured ${JSON.stringify(last)}`);
  }
  return last;
}

async function expectPattern(vmName: string): Promise<void> {
  const files = await captureCameraFrames({ env: pw.env, target: cameraNodeName(vmName), count: 2, caps: 'video/x-raw,format=YUY2,colorimetry=bt601', timeoutMs: 60_000 });
  const img = decodePng(files[files.length - 1]);
  expect([img.width, img.height]).toEqual([1280, 720]);
  // std VGA 1280x800 letterboxed into 1280x720 (scale 0.9, 64 px bars): the four quadrant colours.
  const at = (gx: number, gy: number) => meanColor(img, { x: 64 + gx * 0.9 - 12, y: gy * 0.9 - 12, w: 24, h: 24 });
  expect(colorDistance(at(320, 200), { r: 255, g: 0, b: 0 })).toBeLessThanOrEqual(16);
  expect(colorDistance(at(960, 200), { r: 0, g: 255, b: 0 })).toBeLessThanOrEqual(16);
  expect(colorDistance(at(320, 600), { r: 0, g: 0, b: 255 })).toBeLessThanOrEqual(16);
  expect(colorDistance(at(960, 600), { r: 255, g: 255, b: 255 })).toBeLessThanOrEqual(16);
}

/** Runs body; on failure prints the bridge log and the guest's serial console. */
async function withLogs(b: Bridge, d: TestDomain | undefined, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    console.log(`bridge log:\n${b.log()}\n${d ? `serial of ${d.name}:\n${d.serial().slice(-3000)}` : ''}`);
    throw err;
  } finally {
    await stopBridge(b);
  }
}

const phase = (what: string): void => console.log(`libvirt test: ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);

beforeAll(async () => {
  user = testUser();
  cli = bundleCli('libvirt');
  pw = await startPipeWire();
  // The session-mode bridge runs as the test user: let it reach this PipeWire's socket (the
  // directories stay unreadable to others; only the socket path is traversable).
  for (const d of [pw.dir, pw.runtimeDir]) fs.chmodSync(d, 0o711);
  fs.chmodSync(pw.socketPath, 0o777);
  system = await startSystemLibvirt();
  phase(`ready (system libvirtd ${system.owned ? 'started here' : 'already running, reused'})`);
}, 180_000);

afterAll(async () => {
  for (const d of domains) await d.remove().catch((e: Error) => console.log(`cleanup ${d.name}: ${e.message}`));
  if (user) await stopSessionLibvirt(user);
  await system?.stop();
  await pw?.stop();
  if (cli) fs.rmSync(path.dirname(cli), { recursive: true, force: true });
  phase('cleaned up');
}, 120_000);

describe('a qemu:///session domain, bridged by name as its owner', () => {
  it('brings typed keys, the tone and the pattern across, re-attaches after destroy + start three times, stays attached across virsh reboot and re-attaches after virsh shutdown + start', async () => {
    const name = `qdb-lv-${process.pid}`;
    const d = await defineDomain(SESSION, { name, scenario: ['pattern', 'tone'], params: { tone_hz: 1000, tone_ms: 120_000 }, onReboot: 'restart' }, user);
    domains.push(d);
    await d.start();
    const fifoDir = fs.mkdtempSync('/tmp/qdb-lv-fifo-');
    fs.chmodSync(fifoDir, 0o755);
    const fifo = path.join(fifoDir, 'keys.fifo');
    spawnSync('mkfifo', ['-m', '0666', fifo]);
    // No --vm and no --libvirt-uri: the VM name is the domain's, and a non-root user gets qemu:///session.
    const b = startBridge(['--libvirt', name, '--audio', 'pipewire', '--audio-sink', 'vm-sink', '--camera', 'pipewire', '--input-replay', fifo], user);
    const writerP = fs.promises.open(fifo, 'w');
    let writer: fs.promises.FileHandle | undefined;
    try {
      await withLogs(b, d, async () => {
        await waitFor('bridge attached', 120_000, () => text(b).some((l) => l.startsWith(`attached to VM '${name}'`)));
        phase('session domain attached');
        await waitForDomainSerial(d, /MARK ready/, 180_000);
        writer = await writerP;
        writeEvents(writer.fd, new EventScript().typeText('hi'));
        await waitFor('guest saw h and i', 60_000, () => {
          const ev = parseInputEvents(d.serial()).filter((e) => e.type === 1);
          return ev.some((e) => e.code === KEY_H && e.value === 1) && ev.some((e) => e.code === KEY_I && e.value === 0);
        });
        phase('keys reached the guest');
        await waitForDomainSerial(d, /MARK pattern-drawn/, 180_000);
        await expectPattern(name);
        phase('pattern reached the camera');
        await waitForDomainSerial(d, /MARK play-start/, 180_000);
        const tone = await waitForTone('1000 Hz on vm-sink');
        phase(`tone reached the sink (${tone.hz} Hz, rms ${tone.level.toFixed(3)})`);
        // `list --libvirt` finds the same VM on the domain's current bus (as the user who owns it).
        const [lcmd, largv] = user.as(process.execPath, [cli, 'list', '--libvirt', name, '--json']);
        const list = spawnSync(lcmd, largv, { env: user.env, encoding: 'utf8', timeout: 60_000 });
        expect(list.status, list.stderr).toBe(0);
        expect(JSON.parse(list.stdout)).toMatchObject([{ name, audio: true }]);

        // Three restarts: each one must bring a re-attach on the new bus and the routes started on it
        // (audio listener registered with the new QEMU); the tone is measured after the last one
        // (each guest boot takes 20-30 s under TCG on a loaded machine).
        const buses = new Set<string>();
        const busLines = (): string[] => text(b).filter((l) => /D-Bus display on unix:path=/.test(l));
        const attaches = (): number => text(b).filter((l) => l.startsWith(`attached to VM '${name}'`)).length;
        const audioStarts = (): number => logLines(b).filter((l) => l.component === 'audio-out' && String(l.msg).startsWith('started:')).length;
        buses.add(busLines().at(-1)!);
        for (let i = 1; i <= 3; i++) {
          const [attachesBefore, startsBefore] = [attaches(), audioStarts()];
          await d.destroy();
          await d.start();
          await waitFor(`re-attached after restart #${i}`, 120_000, () => attaches() > attachesBefore);
          await waitFor(`audio route started again after restart #${i}`, 60_000, () => audioStarts() > startsBefore);
          buses.add(busLines().at(-1)!);
          phase(`restart #${i}: re-attached on ${busLines().at(-1)!.replace(/.*on /, '')}`);
        }
        await waitForDomainSerial(d, /MARK play-start/, 180_000);
        const t = await waitForTone('tone after the third restart');
        phase(`tone after the third restart: ${t.hz} Hz rms ${t.level.toFixed(3)}`);
        // Each start had its own bus path (the domain id is in it): the bridge followed all four.
        expect(buses.size).toBe(4);

        // `virsh reboot`: libvirt presses the ACPI power button, the guest powers off, and QEMU
        // (started with -no-shutdown) is reset and resumed by libvirt ("fake reboot"): the same
        // QEMU process, domain id and bus, so no "stopped"/"started" event and no re-attach —
        // the bridge's session simply carries on into the new boot.
        const qemuPid = (): string => fs.readFileSync(path.join(user.runtimeDir, 'libvirt', 'qemu', 'run', `${name}.pid`), 'utf8').trim();
        const boots = (): number => (d.serial().match(/MARK init-start/g) ?? []).length;
        const plays = (): number => (d.serial().match(/MARK play-start/g) ?? []).length;
        const drops = (): string[] => text(b).filter((l) => l.includes(`libvirt domain '${name}' stopped`) || l.includes(`libvirt domain '${name}' started again`));
        const [idBefore, pidBefore, bootsBefore, playsBefore, attachesBeforeReboot, dropsBeforeReboot] = [await d.id(), qemuPid(), boots(), plays(), attaches(), drops()];
        await d.reboot();
        await waitForDomainSerial(d, /MARK poweroff reason=acpi-power-button/, 60_000);
        await waitFor('the guest booted again after virsh reboot', 120_000, () => boots() > bootsBefore);
        await waitFor('the tone started again after virsh reboot', 180_000, () => plays() > playsBefore);
        const tr = await waitForTone('tone after virsh reboot');
        phase(`virsh reboot: id ${idBefore} -> ${await d.id()}, QEMU pid ${pidBefore} -> ${qemuPid()}; tone ${tr.hz} Hz rms ${tr.level.toFixed(3)}`);
        expect([await d.id(), qemuPid(), attaches()]).toEqual([idBefore, pidBefore, attachesBeforeReboot]);
        expect(drops()).toEqual(dropsBeforeReboot);

        // `virsh shutdown` (ACPI power button, on_poweroff destroy: QEMU exits) + `virsh start`:
        // a new QEMU on a new bus, re-attached like after destroy.
        const [attachesBeforeShutdown, startsBeforeShutdown] = [attaches(), audioStarts()];
        await d.shutdown();
        expect(d.serial()).toMatch(/MARK poweroff reason=acpi-power-button/);
        await d.start();
        await waitFor('re-attached after shutdown + start', 120_000, () => attaches() > attachesBeforeShutdown);
        await waitFor('audio route started again after shutdown + start', 60_000, () => audioStarts() > startsBeforeShutdown);
        buses.add(busLines().at(-1)!);
        expect(buses.size).toBe(5);
        await waitForDomainSerial(d, /MARK play-start/, 180_000);
        const ts = await waitForTone('tone after virsh shutdown + start');
        phase(`virsh shutdown + start: re-attached on ${busLines().at(-1)!.replace(/.*on /, '')}; tone ${ts.hz} Hz rms ${ts.level.toFixed(3)}`);
        expect(b.running).toBe(true);
      });
    } finally {
      await (writer ?? (await writerP.catch(() => undefined)))?.close();
      fs.rmSync(fifoDir, { recursive: true, force: true });
    }
  }, 360_000);
});

describe('a qemu:///system domain', () => {
  it("whose bus belongs to libvirt's qemu user: one line saying who may connect and the ways out, exit 3, no retries", async () => {
    const name = `qdb-lvs-${process.pid}`;
    const d = await defineDomain(SYSTEM, { name, scenario: 'idle' });
    domains.push(d);
    await d.start();
    const b = startBridge(['--libvirt', name, '--libvirt-uri', SYSTEM, '--audio', 'none', '--camera', 'none']);
    await withLogs(b, d, async () => {
      const { code } = await b.exited;
      expect(code).toBe(3);
      const stderrLast = b.log().trim().split('\n').at(-1)!;
      expect(stderrLast).toMatch(new RegExp(`^qemu-dbus-bridge: domain '${name}': its D-Bus \\(/run/libvirt/qemu/dbus/\\d+-[^)]*-dbus\\.sock\\) lets only libvirt-qemu \\(uid \\d+\\) connect, and the bridge runs as root \\[EBUS_PERMISSION\\]`));
      expect(stderrLast).toContain('run the bridge as libvirt-qemu');
      expect(stderrLast).toContain('--libvirt-uri qemu:///session');
      expect(stderrLast).toContain("p2p='yes'");
      // Explained once: no retry loop, no internal text.
      expect(b.log()).not.toMatch(/will keep trying|uwrap|USocket|--bus /);
      // `list` says the same: by domain, and by the bus address itself (busctl underneath).
      const socket = /its D-Bus \(([^)]+)\)/.exec(stderrLast)![1];
      for (const args of [['--libvirt', name, '--libvirt-uri', SYSTEM], ['--address', `unix:path=${socket}`]]) {
        const list = spawnSync(process.execPath, [cli, 'list', ...args], { encoding: 'utf8', timeout: 60_000 });
        expect(list.status, list.stderr).toBe(3);
        expect(list.stderr.trim().split('\n')).toHaveLength(1);
        expect(list.stderr).toMatch(/lets only libvirt-qemu \(uid \d+\) connect, and (the bridge runs as|this is) root \[EBUS_PERMISSION\]/);
      }
      phase('wrong uid explained');
    });
    await d.remove();
  }, 120_000);

  it("with p2p='yes': a non-root user attaches through virDomainOpenGraphics (camera), again after libvirtd and then the VM restarted; QEMU 7.2's audio refusal logged once", async () => {
    const name = `qdb-lvp-${process.pid}`;
    const d = await defineDomain(SYSTEM, { name, scenario: 'pattern', graphicsAttrs: "p2p='yes'" });
    domains.push(d);
    await d.start();
    // As the non-root test user (group libvirt): p2p works across uids, the socket comes from libvirt.
    const b = startBridge(['--libvirt', name, '--libvirt-uri', SYSTEM, '--audio', 'pipewire', '--audio-sink', 'vm-sink', '--camera', 'pipewire'], user);
    await withLogs(b, d, async () => {
      await waitFor('bridge attached', 120_000, () => text(b).some((l) => l.startsWith(`attached to VM '${name}'`)));
      await waitForDomainSerial(d, /MARK pattern-drawn/, 180_000);
      await expectPattern(name);
      phase('p2p camera');
      const attachesBefore = text(b).filter((l) => l.startsWith(`attached to VM '${name}'`)).length;
      // libvirtd itself restarts (the VM keeps running): the bridge's libvirt connection closes,
      // and the next VM start must still be seen and followed through a new connection.
      await system!.restartLibvirtd();
      await waitFor('the bridge noticed libvirtd went away', 30_000, () => text(b).some((l) => /connection to libvirt .* closed/.test(l)));
      phase('libvirtd restarted');
      await d.destroy();
      await d.start();
      await waitFor('re-attached after restart', 120_000, () => text(b).filter((l) => l.startsWith(`attached to VM '${name}'`)).length > attachesBefore);
      await waitForDomainSerial(d, /MARK pattern-drawn/, 180_000);
      await expectPattern(name);
      phase('p2p camera after restart');
      // Two attaches: each audio route says the refusal (which cannot change for this QEMU) once
      // per attach, and never retries it.
      const refusals = logLines(b).filter((l) => l.code === 'EP2P_AUDIO');
      const perRoute = new Map<string, number>();
      for (const l of refusals) perRoute.set(String(l.component), (perRoute.get(String(l.component)) ?? 0) + 1);
      expect([...perRoute.keys()].sort()).toEqual(['audio-in', 'audio-out']);
      expect([...perRoute.values()]).toEqual([2, 2]);
      expect(refusals.every((l) => String(l.msg).startsWith('cannot start on this VM: '))).toBe(true);
    });
  }, 180_000);

  it("doctor --libvirt on a domain without <audio type='dbus'/> names the XML to add", async () => {
    const name = `qdb-lvd-${process.pid}`;
    const d = await defineDomain(SYSTEM, { name, scenario: 'idle', noAudio: true });
    domains.push(d);
    const r = spawnSync(process.execPath, [cli, 'doctor', '--libvirt', name, '--libvirt-uri', SYSTEM], { encoding: 'utf8', env: { ...process.env, PIPEWIRE_REMOTE: pw.env.PIPEWIRE_REMOTE } });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/\[FAIL\] libvirt domain '.*' XML: no <audio type='dbus'\/>/);
    expect(r.stdout).toContain("add inside <devices>: <audio id='1' type='dbus'/>");
    expect(r.stdout).toMatch(/\[ok {2}\] libvirt domain '.*' XML: <graphics type='dbus'\/> present/);
  }, 60_000);
});
