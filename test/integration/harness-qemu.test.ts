// Smoke tests of the QEMU harness and the test guest against the real QEMU 7.2 (TCG) and dbus-daemon.
// Each boot costs ~10 s of CPU on a shared 2-core box, so one boot checks several things at once.
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { UServer, USocket } from '../../src/qemu/usocket';
import { dbusSend, listNames, startDbusDaemon } from '../harness/dbus';
import { buildGuest, guestArgs, keepLogsIfFailed, parseInputEvents, parseMarks, startGuest, type Guest } from '../harness/qemu';
import { tempDir } from '../harness/procs';

const running: Guest[] = [];
async function track(p: Promise<Guest>): Promise<Guest> {
  const g = await p;
  running.push(g);
  return g;
}

afterEach(async (ctx: TestContext) => {
  const guests = running.splice(0);
  keepLogsIfFailed(ctx, ...guests);
  for (const g of guests) await g.stop();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function vmProperty(address: string, prop: string): Promise<string> {
  const out = await dbusSend(address, [
    '--dest=org.qemu',
    '/org/qemu/Display1/VM',
    'org.freedesktop.DBus.Properties.Get',
    'string:org.qemu.Display1.VM',
    `string:${prop}`,
  ]);
  const m = /variant\s+string "([^"]*)"/.exec(out);
  if (!m) throw new Error(`unexpected reply to Get(${prop}): ${out}`);
  return m[1];
}

interface Ppm {
  width: number;
  height: number;
  rgb(x: number, y: number): string;
}
/** QMP screendump writes binary PPM (P6, maxval 255). */
function readPpm(file: string): Ppm {
  const buf = fs.readFileSync(file);
  const header = /^P6\s+(\d+)\s+(\d+)\s+255\s/.exec(buf.subarray(0, 64).toString('latin1'));
  if (!header) throw new Error(`${file}: not a binary PPM`);
  const width = Number(header[1]);
  const height = Number(header[2]);
  const data = buf.subarray(header[0].length);
  return {
    width,
    height,
    rgb: (x, y) => {
      const o = (y * width + x) * 3;
      return [data[o], data[o + 1], data[o + 2]].map((v) => v.toString(16).padStart(2, '0')).join('');
    },
  };
}

describe('harness: QEMU guest', () => {
  it('maps options to the QEMU command line', () => {
    const image = { kernel: '/k', initrd: '/i', dir: '/' };
    const base = { name: 'n', uuid: 'u', dir: '/d', busAddress: 'unix:path=/b,guid=1' };
    const dflt = guestArgs(image, { ...base, scenario: ['tone', 'record'], params: { tone_hz: 440 }, appendKernelArgs: ['x=1'] });
    const arg = (args: string[], opt: string) => args[args.indexOf(opt) + 1];
    expect(arg(dflt, '-display')).toBe('dbus,addr=unix:path=/b,,guid=1,audiodev=snd0');
    expect(arg(dflt, '-audiodev')).toBe('dbus,id=snd0');
    expect(arg(dflt, '-append')).toMatch(/^console=ttyS0 .*bridge\.scenario=tone,record bridge\.tone_hz=440 x=1$/);
    expect(dflt).toContain('virtio-tablet-pci');
    expect(arg(dflt, '-machine')).toBe(`pc,accel=${process.env.QDB_ACCEL ?? 'tcg'}`);

    const other = guestArgs(image, { ...base, scenario: 'idle', p2p: true, pointer: 'mouse', audiodev: { pa: 'unix:/p' }, accel: 'kvm' });
    expect(arg(other, '-display')).toBe('dbus,p2p=yes');
    expect(arg(other, '-audiodev')).toBe('pa,id=snd0,server=unix:/p');
    expect(other).toContain('virtio-mouse-pci');
    expect(arg(other, '-cpu')).toBe('host');
    expect(arg(guestArgs(image, { ...base, scenario: 'idle', audiodev: 'none' }), '-audiodev')).toBe('none,id=snd0');
  });

  it('builds the guest once per input set (second build is a cache hit)', async () => {
    const a = await buildGuest();
    const b = await buildGuest();
    expect(b).toEqual(a);
    expect(fs.statSync(a.kernel).size).toBeGreaterThan(1_000_000);
    expect(fs.statSync(a.initrd).size).toBeGreaterThan(1_000_000);
    expect(path.dirname(a.initrd)).toBe(a.dir);
  });

  it('boots on a private bus: org.qemu with our Name/UUID, scenarios report on serial, QMP works', async () => {
    const g = await track(
      startGuest({
        scenario: ['pattern', 'keys', 'tone', 'record'],
        name: 'qdb-smoke-private',
        params: { rec_ms: 300, tone_ms: 300, tone_hz: 440 },
      }),
    );
    expect(g.bus).toBeDefined();
    expect(g.busAddress).toBe(g.bus?.address);

    // QEMU owns org.qemu on the private bus as soon as it runs (long before the guest boots).
    expect(await listNames(g.busAddress)).toContain('org.qemu');
    expect(await vmProperty(g.busAddress, 'Name')).toBe('qdb-smoke-private');
    expect(await vmProperty(g.busAddress, 'UUID')).toBe(g.uuid);

    await g.waitForSerial(/GUEST\[[\d.]+\] MARK ready/);
    expect(g.serial()).toMatch(/input event\d+ name='QEMU Virtio Keyboard'/);
    expect(g.serial()).toMatch(/input event\d+ name='QEMU Virtio Tablet'/);

    // pattern: the guest's framebuffer, read back by QEMU itself
    const drawn = await g.waitForSerial(/MARK pattern-drawn w=(\d+) h=(\d+) stride=\d+ bpp=32 .*border=(\d+)/);
    const [w, h, border] = [Number(drawn[1]), Number(drawn[2]), Number(drawn[3])];
    const shot = path.join(tempDir('shot'), 'screen.ppm');
    await g.qmp('screendump', { filename: shot });
    const ppm = readPpm(shot);
    expect([ppm.width, ppm.height]).toEqual([w, h]);
    expect(ppm.rgb(w / 4, h / 4)).toBe('ff0000');
    expect(ppm.rgb((3 * w) / 4, h / 4)).toBe('00ff00');
    expect(ppm.rgb(w / 4, (3 * h) / 4)).toBe('0000ff');
    expect(ppm.rgb((3 * w) / 4, (3 * h) / 4)).toBe('ffffff');
    expect(ppm.rgb(border / 2, border / 2)).toBe('000000');
    expect(ppm.rgb(w - 1, h - 1)).toBe('000000');

    // keys: a key sent through QMP reaches the guest's evdev loggers as press + release of KEY_A (30)
    await g.waitForSerial(/MARK keys-ready/);
    await g.qmp('send-key', { keys: [{ type: 'qcode', data: 'a' }] });
    await g.waitForSerial(/EV event\d+ type=1 code=30 value=1 /);
    await g.waitForSerial(/EV event\d+ type=1 code=30 value=0 /);
    const keyA = parseInputEvents(g.serial()).filter((e) => e.type === 1 && e.code === 30);
    expect(keyA.map((e) => e.value)).toEqual([1, 0]);

    // tone: played to the end even with nobody listening on D-Bus
    await g.waitForSerial(/MARK play-start hz=440 ms=300 rate=44100 channels=2 format=S16_LE amplitude=0\.5 bytes=52920/);
    await g.waitForSerial(/MARK play-done/);

    // record: 300 ms of S16 stereo at 44.1 kHz, with checksum and analysis fields
    const rec = await g.waitForSerial(/MARK rec-done bytes=(\d+) md5=([0-9a-f]{32}) freq=(\d+) rms=(\d+) zeros=(\d+)/);
    expect(Number(rec[1])).toBe(Math.round(44100 * 0.3) * 4);
    await g.waitForSerial(/MARK scenario-done/);
    const [recDone] = parseMarks(g.serial(), 'rec-done');
    expect(recDone.fields).toMatchObject({ bytes: rec[1], md5: rec[2], frames: String(Math.round(44100 * 0.3)) });
    expect(parseMarks(g.serial()).map((m) => m.name)).toEqual(
      expect.arrayContaining(['init-start', 'modules-loaded', 'ready', 'pattern-drawn', 'keys-ready', 'play-done', 'rec-done', 'scenario-done']),
    );
    expect(parseMarks(g.serial()).filter((m) => m.name === 'warn' || m.name === 'error')).toEqual([]);

    expect(await g.qmp('query-status')).toMatchObject({ status: 'running' });
    const bus = g.bus!;
    await g.stop();
    expect(alive(g.pid)).toBe(false);
    expect(alive(bus.pid)).toBe(false);
    expect(await g.exited).toBe(0);
  });

  it('runs two guests on one bus: the second queues for org.qemu and takes over when the first stops', async () => {
    const bus = await startDbusDaemon();
    try {
      const first = await track(startGuest({ scenario: 'idle', busAddress: bus.address, name: 'qdb-smoke-first' }));
      const second = await track(startGuest({ scenario: 'idle', busAddress: bus.address, name: 'qdb-smoke-second' }));
      expect(first.bus).toBeUndefined();
      expect(await vmProperty(bus.address, 'Name')).toBe('qdb-smoke-first');
      const queued = await dbusSend(bus.address, [
        '--dest=org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus.ListQueuedOwners',
        'string:org.qemu',
      ]);
      expect([...queued.matchAll(/string ":[\d.]+"/g)]).toHaveLength(2);

      await first.stop();
      expect(alive(bus.pid)).toBe(true); // a bus the test passed in is the test's to stop
      let name = '';
      for (let i = 0; i < 50 && name !== 'qdb-smoke-second'; i++) {
        name = await vmProperty(bus.address, 'Name').catch(() => '');
        if (name !== 'qdb-smoke-second') await new Promise((r) => setTimeout(r, 100));
      }
      expect(name).toBe('qdb-smoke-second');
      await second.stop();
    } finally {
      await bus.stop();
    }
  });

  it('p2p=yes: no bus, QMP socket, and a D-Bus client fd handed over with getfd + add_client', async () => {
    const g = await track(startGuest({ scenario: 'idle', p2p: true }));
    expect(g.busAddress).toBe('');
    expect(g.bus).toBeUndefined();
    expect(fs.statSync(g.qmpPath).isSocket()).toBe(true);

    // A connected AF_UNIX pair: Node cannot make a socketpair, a listening usocket can.
    const dir = tempDir('p2p');
    const server = new UServer();
    const sockPath = path.join(dir, 's');
    await new Promise<void>((resolve) => server.listen(sockPath, () => resolve()));
    const accepted = new Promise<USocket>((resolve) => server.on('connection', (s: USocket) => resolve(s)));
    const theirs = await new Promise<USocket>((resolve) => {
      const s: USocket = new USocket({ path: sockPath }, () => resolve(s));
    });
    const ours = await accepted;
    server.close();
    await g.addClient(theirs.fd!);
    theirs.destroy(); // QEMU holds its own copy now

    // QEMU is the D-Bus auth server on that connection: EXTERNAL auth as uid 0/ours must get OK <guid>.
    const uidHex = Buffer.from(String(process.getuid?.() ?? 0)).toString('hex');
    const reply = await new Promise<string>((resolve, reject) => {
      let got = '';
      const t = setTimeout(() => reject(new Error(`no auth reply from QEMU, got ${JSON.stringify(got)}`)), 20_000);
      ours.on('data', (chunk: Buffer) => {
        got += chunk.toString();
        if (got.includes('\r\n')) {
          clearTimeout(t);
          resolve(got);
        }
      });
      ours.write(Buffer.from(`\0AUTH EXTERNAL ${uidHex}\r\n`));
    });
    expect(reply).toMatch(/^OK [0-9a-f]{32}\r\n/);
    ours.destroy();
  });

  it('rejects a bad QEMU option with QEMU\'s own message and leaves nothing running', async () => {
    let err: (Error & { code?: string; stderr?: string }) | undefined;
    try {
      await track(startGuest({ scenario: 'idle', extraArgs: ['-device', 'qdb-no-such-device'] }));
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('EQEMUSTART');
    expect(err?.message).toMatch(/'qdb-no-such-device' is not a valid device model name/);
  });
});
