// Finding the VM and the errors a user gets, against fake Display1 peers on a real private bus.
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { tempDir } from '../harness/procs';
import { openBus, QemuDbusError, QemuVm, unixPathOf, userName } from '../../src/qemu';
import { compareUniqueNames, discoverVms } from '../../src/qemu/discovery';
import { FakeQemuPeer } from '../fakes/qemu-peer';

async function connectError(p: Promise<unknown>): Promise<QemuDbusError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(QemuDbusError);
  const err = e as QemuDbusError;
  expect(err.message).not.toContain('\n');
  expect(err.message).toContain('Fix:');
  expect(err.fix.length).toBeGreaterThan(5);
  return err;
}

describe('bus errors', () => {
  it('EBUS_UNREACHABLE when nothing listens at the address', async () => {
    const dir = tempDir('nobus');
    const err = await connectError(QemuVm.connect({ busAddress: `unix:path=${path.join(dir, 'bus')}` }));
    expect(err.code).toBe('EBUS_UNREACHABLE');
    expect(err.message).toContain(dir);
  });

  it('EBUS_UNREACHABLE for an address without a socket path', () => {
    expect(() => unixPathOf('tcp:host=localhost,port=1')).toThrow(/no unix:path=/);
    expect(() => unixPathOf('unix:abstract=/tmp/dbus-x')).toThrow(expect.objectContaining({ code: 'EBUS_UNREACHABLE' }));
  });

  it('EBUS_PERMISSION when the bus rejects our authentication', async () => {
    const dir = tempDir('rejbus');
    const sock = path.join(dir, 'bus');
    const server = net.createServer((s) => {
      s.on('data', (d) => {
        for (const line of d.toString('latin1').split('\r\n')) if (/AUTH/.test(line)) s.write('REJECTED EXTERNAL\r\n');
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const err = await connectError(openBus(`unix:path=${sock}`, 3000));
      expect(err.code).toBe('EBUS_PERMISSION');
    } finally {
      server.close();
    }
  });
});

describe('a bus that belongs to another user', () => {
  // dbus-daemon lets in only its own uid: it accepts EXTERNAL and then drops the connection
  // before Hello is answered. A fake bus socket owned by "nobody" does the same.
  it('EBUS_PERMISSION naming the owner, permanent, the same code every time (no race with the close)', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test chowns a socket to another user: run it as root (CI does)');
    const dir = tempDir('foreignbus');
    fs.chmodSync(dir, 0o755);
    const sock = path.join(dir, 'bus');
    const server = net.createServer((s) => {
      s.on('data', (d) => {
        const t = d.toString('latin1');
        if (/AUTH EXTERNAL/.test(t)) s.write('OK 0123456789abcdef0123456789abcdef\r\n');
        if (/NEGOTIATE_UNIX_FD/.test(t)) s.write('AGREE_UNIX_FD\r\n');
        if (/BEGIN/.test(t)) s.destroy();
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(sock, r));
    fs.chownSync(sock, 65534, 65534);
    try {
      for (let i = 0; i < 3; i++) {
        const err = await connectError(openBus(`unix:path=${sock}`, 3000));
        expect(err.code).toBe('EBUS_PERMISSION');
        expect(err.permanent).toBe(true);
        expect(err.message).toContain(`lets only ${userName(65534)} (uid 65534) connect, and this is ${userName(0)}`);
        expect(err.fix).toBe(`run the bridge as ${userName(65534)}`);
      }
    } finally {
      server.close();
    }
  });
});

describe('the order of unique bus names', () => {
  it('compares each number by value, as the bus handed them out', () => {
    expect([':1.10', ':2.1', ':1.9', ':1.100', ':10.0'].sort(compareUniqueNames)).toEqual([':1.9', ':1.10', ':1.100', ':2.1', ':10.0']);
    expect(compareUniqueNames(':1.7', ':1.7')).toBe(0);
  });
});

describe('discovery on a bus with fake QEMUs', () => {
  let bus: DbusDaemon;
  const fakes: FakeQemuPeer[] = [];

  beforeAll(async () => {
    bus = await startDbusDaemon();
  });
  afterAll(async () => {
    for (const f of fakes) await f.stop();
    await bus?.stop();
  });

  it('ENO_QEMU when nobody owns org.qemu', async () => {
    const err = await connectError(QemuVm.connect({ busAddress: bus.address }));
    expect(err.code).toBe('ENO_QEMU');
    expect(err.fix).toContain('-display dbus');
  });

  it('several VMs: no name -> EVM_AMBIGUOUS naming them; unknown name -> EVM_UNKNOWN listing them; a name -> that unique name', async () => {
    fakes.push(await FakeQemuPeer.start({ busAddress: bus.address, name: 'alpha', uuid: '11111111-1111-4111-8111-111111111111' }));
    fakes.push(await FakeQemuPeer.start({ busAddress: bus.address, name: 'beta', uuid: '22222222-2222-4222-8222-222222222222' }));
    const amb = await connectError(QemuVm.connect({ busAddress: bus.address }));
    expect(amb.code).toBe('EVM_AMBIGUOUS');
    expect(amb.message).toContain('"alpha"');
    expect(amb.message).toContain('"beta"');

    const unk = await connectError(QemuVm.connect({ busAddress: bus.address, name: 'gamma' }));
    expect(unk.code).toBe('EVM_UNKNOWN');
    expect(unk.message).toMatch(/gamma.*found:.*alpha.*beta/);

    // beta is only queued on org.qemu (alpha owns it): we must still reach beta by its unique name.
    const vm = await QemuVm.connect({ busAddress: bus.address, name: 'beta', livenessIntervalMs: 0 });
    try {
      expect(vm.info.uniqueName).toBe(fakes[1].uniqueName);
      expect(vm.info.uuid).toBe('22222222-2222-4222-8222-222222222222');
    } finally {
      await vm.close();
    }
    const byUuid = await QemuVm.connect({ busAddress: bus.address, uuid: '11111111-1111-4111-8111-111111111111', livenessIntervalMs: 0 });
    expect(byUuid.info.name).toBe('alpha');
    await byUuid.close();
  });

  it('several VMs are listed in the order the bus named them, without ICU collation', async () => {
    // Two fakes at least (the test above started alpha and beta); sorting them must not reach
    // localeCompare, whose collation data is ~2 MB of resident memory per bridge (issue 17).
    expect(fakes.length).toBeGreaterThanOrEqual(2);
    const collate = vi.spyOn(String.prototype, 'localeCompare');
    const conn = await openBus(bus.address, 5000);
    try {
      const found = await discoverVms(conn.bus);
      expect(found.vms.map((v) => v.uniqueName)).toEqual([...fakes.map((f) => f.uniqueName)].sort(compareUniqueNames));
      expect(collate).not.toHaveBeenCalled();
    } finally {
      collate.mockRestore();
      await conn.close();
    }
  });

  it('EQEMU_UNSUPPORTED when the owner of org.qemu has no org.qemu.Display1.VM', async () => {
    const bus2 = await startDbusDaemon();
    const odd = await FakeQemuPeer.start({ busAddress: bus2.address, name: 'odd', vmInterface: false });
    try {
      const err = await connectError(QemuVm.connect({ busAddress: bus2.address }));
      expect(err.code).toBe('EQEMU_UNSUPPORTED');
    } finally {
      await odd.stop();
      await bus2.stop();
    }
  });

  it('ENO_AUDIO when QEMU exports no Audio object (audiodev= missing on -display dbus)', async () => {
    const bus3 = await startDbusDaemon();
    const mute = await FakeQemuPeer.start({ busAddress: bus3.address, name: 'mute', audio: false });
    const vm = await QemuVm.connect({ busAddress: bus3.address, livenessIntervalMs: 0 });
    try {
      expect(vm.capabilities.audio).toBe(false);
      const err = await connectError(vm.addAudioOutListener({ init() {}, fini() {}, setEnabled() {}, setVolume() {}, write() {} }));
      expect(err.code).toBe('ENO_AUDIO');
      expect(err.fix).toContain('audiodev=');
      expect(() => vm.audio()).toThrow(expect.objectContaining({ code: 'ENO_AUDIO' }));
    } finally {
      await vm.close();
      await mute.stop();
      await bus3.stop();
    }
  });
});
