// Bus-less mode against the real QEMU 7.2 and 10.0: -display dbus,p2p=yes, connection handed over
// through QMP getfd + add_client. 7.2 breaks audio listeners on that connection: we must refuse
// clearly; 8.0+ fixed it, and there the audio listener must work (Init and the tone's Writes).
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { QEMU_MATRIX } from '../harness/qemu-targets';
import { QemuDbusError, QemuVm } from '../../src/qemu';
import { RecordingAudioOutHandler, RecordingConsoleHandler } from '../fakes/recording-handlers';

describe.each(QEMU_MATRIX)('QEMU %s bus-less (p2p=yes) through QMP', (version, qemu) => {
  let guest: Guest;
  let vm: QemuVm;

  beforeAll(async () => {
    const scenario = version === '7.2' ? 'idle' : 'tone';
    guest = await startGuest({ qemu, scenario, p2p: true, name: `qdb-p2p-${process.pid}`, params: { tone_ms: 3000 } });
  });
  afterAll(async () => {
    await vm?.close();
    await guest?.stop();
  });

  it('attaches over the QMP socket, lists the VM, its console size, and releases QMP for others', async () => {
    vm = await QemuVm.connect({ qmpPath: guest.qmpPath });
    vm.on('error', () => undefined);
    expect(vm.info).toMatchObject({ name: guest.name, uuid: guest.uuid, p2p: true, uniqueName: undefined });
    const size = await vm.console().size();
    expect(size.width).toBeGreaterThan(0);
    expect(size.height).toBeGreaterThan(0);
    // QEMU serves one QMP client at a time: our hand-over must not keep the socket.
    const status = (await guest.qmp('query-status')) as { status: string };
    expect(status.status).toBe('running');
  });

  it('serves a display listener on the p2p connection (Scanout arrives)', async () => {
    const display = new RecordingConsoleHandler();
    const h = await vm.addConsoleListener(display);
    await waitFor('Scanout over p2p', 30_000, () => display.scanouts.length > 0);
    expect(display.scanouts[0].format).toBe(0x20020888);
    await h.remove();
  });

  // Each version registers only the audio test that applies to it (no skipped twin).
  if (version === '7.2') it('refuses audio listeners on 7.2 p2p with EP2P_AUDIO and the fix, leaving QEMU running', async () => {
    expect(vm.capabilities.p2pAudioBroken).toBe(true);
    const err = await vm.addAudioOutListener(new RecordingAudioOutHandler()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(QemuDbusError);
    expect((err as QemuDbusError).code).toBe('EP2P_AUDIO');
    expect((err as QemuDbusError).fix).toMatch(/bus mode/);
    expect(guest.isRunning()).toBe(true);
    expect(vm.attached).toBe(true);
  });

  else it(`serves the audio-out listener on the p2p connection (${version}: Init and the tone's Writes)`, async () => {
    expect(vm.capabilities.p2pAudioBroken).toBe(false);
    const audio = new RecordingAudioOutHandler();
    const h = await vm.addAudioOutListener(audio);
    await waitFor('Init over p2p', 30_000, () => audio.inits.length > 0);
    await guest.waitForSerial(/MARK play-start/, 120_000);
    await waitFor('tone Writes with signal over p2p', 60_000, () => audio.writes >= 10 && audio.nonZeroBytes > 0);
    expect(guest.isRunning()).toBe(true);
    await h.remove();
  });
});

describe('QEMU 7.2 bus-less: restart on the same QMP socket path', () => {
  it('re-attaches over QMP when a QEMU with the same name comes back, and re-registers the display listener', async () => {
    const dir = tempDir('p2pq');
    const qmp = path.join(dir, 'q.sock');
    const extraArgs = ['-qmp', `unix:${qmp},server=on,wait=off`];
    const name = `qdb-p2p-re-${process.pid}`;
    // The identity a re-attach matches: the UUID when QEMU has a real one (else the name).
    const uuid = '5a3e1c2d-0000-4000-8000-00000000b002';
    let g = await startGuest({ scenario: 'idle', p2p: true, name, uuid, extraArgs });
    const vm = await QemuVm.connect({ qmpPath: qmp, reattachPollMs: 200 });
    vm.on('error', () => undefined);
    try {
      const display = new RecordingConsoleHandler();
      const h = await vm.addConsoleListener(display);
      await waitFor('Scanout', 30_000, () => display.scanouts.length > 0);
      const gone = new Promise<void>((r) => vm.once('vm-gone', () => r()));
      g.kill('SIGKILL');
      await g.exited;
      await gone;
      fs.rmSync(qmp, { force: true });
      const back = new Promise<void>((r) => vm.once('reattached', () => r()));
      g = await startGuest({ scenario: 'idle', p2p: true, name, uuid, extraArgs });
      await back;
      expect(vm.info).toMatchObject({ name, uuid, p2p: true });
      expect(h.registrations).toBe(2);
      await waitFor('Scanout on the new QEMU', 30_000, () => display.scanouts.length > 1);
    } finally {
      await vm.close();
      await g.stop();
    }
  });
});
