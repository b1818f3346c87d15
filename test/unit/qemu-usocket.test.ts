// usocket's close-then-GC use-after-free (see src/qemu/usocket.ts), reproduced in a child process
// with a forced garbage collection right after sockets are closed. The raw library aborts in
// libuv; through our module it must survive, and every held wrap must be let go afterwards.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleScript } from '../harness/cli';
import { waitFor } from '../harness/procs';
import { nativeWrapClasses, USocket, wrapsAwaitingClose } from '../../src/qemu/usocket';
import { native } from '../../src/native';

const ROOT = path.join(__dirname, '../..');

// MODE=gc: closes connected sockets and collects garbage before the loop iteration ends.
// MODE=pending: closes sockets and servers whose connect or listen is still running on the thread
// pool (with a forced GC too unless GC=0). 200 rounds; prints the rounds done and the wraps still
// held.
const child = (from: string): string => `
import { USocket, UServer } from '${from}';
import { native } from './src/native';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
declare const gc: () => void;
const pending = process.env.MODE === 'pending';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qdb-uaf-'));
const listening = path.join(dir, 'listening');
let rounds = 0;
function round(): void {
  for (let i = 0; i < 20; i++) {
    if (pending) {
      new USocket({ path: listening }).destroy(); // connect succeeds after the close
      new USocket({ path: path.join(dir, 'nobody') }).destroy(); // connect fails after the close
    } else {
      const [a, b] = native.socketpair();
      new USocket({ fd: a }).destroy();
      new USocket({ fd: b }).destroy();
    }
  }
  if (pending) {
    const s = new UServer();
    s.listen(path.join(dir, 'late-' + rounds), () => undefined);
    s.close();
  }
  if (process.env.GC !== '0') gc();
  if (++rounds < Number(process.env.ROUNDS)) setImmediate(round);
  else setTimeout(() => {
    const held = '${from}' === 'usocket' ? 0 : (require('./src/qemu/usocket').wrapsAwaitingClose() as number);
    console.log(JSON.stringify({ rounds, held }));
    process.exit(0);
  }, 200);
}
const server = new UServer();
server.on('connection', (s: USocket) => s.destroy());
server.listen(listening, round);
`;

const scripts: Record<'raw' | 'ours', string> = { raw: '', ours: '' };

beforeAll(() => {
  const dir = path.join(ROOT, '.cache', 'test-usocket', String(process.pid));
  fs.mkdirSync(dir, { recursive: true });
  scripts.raw = path.join(dir, 'raw.js');
  scripts.ours = path.join(dir, 'ours.js');
  bundleScript(child('usocket'), scripts.raw, ['usocket']);
  bundleScript(child('./src/qemu/usocket'), scripts.ours, ['usocket']);
});

const run = (script: string, mode: 'gc' | 'pending', gc = true, rounds = 200) =>
  spawnSync(process.execPath, ['--expose-gc', script], {
    encoding: 'utf8',
    timeout: 60_000,
    cwd: ROOT,
    env: { ...process.env, MODE: mode, GC: gc ? '1' : '0', ROUNDS: String(rounds) },
  });

describe('usocket close + garbage collection', () => {
  it('the raw library aborts in libuv when a GC follows close() (the reproduction finds bug 1)', () => {
    const r = run(scripts.raw, 'gc');
    expect(r.signal, `stdout ${r.stdout} stderr ${r.stderr}`).toBe('SIGABRT');
    expect(r.stderr).toMatch(/uv__finish_close/);
  });

  it('the raw library crashes when a connecting socket is closed, GC or not (the reproduction finds bug 2)', () => {
    const r = run(scripts.raw, 'pending', false, 1); // one round: too little garbage for a GC
    expect(r.signal, `stdout ${r.stdout} stderr ${r.stderr}`).toBe('SIGSEGV');
  });

  for (const mode of ['gc', 'pending'] as const) {
    it(`through src/qemu/usocket (${mode}): survives 200 rounds and lets every closed wrap go`, () => {
      const r = run(scripts.ours, mode);
      expect(r.status, `signal ${r.signal} stderr ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout.trim())).toEqual({ rounds: 200, held: 0 });
    });
  }

  it('patches the classes usocket really uses, and holds a wrap only until libuv is done with it', async () => {
    const [a, b] = native.socketpair();
    const s = new USocket({ fd: a });
    const wrap = (s as unknown as { _wrap: object })._wrap;
    expect(wrap).toBeInstanceOf(nativeWrapClasses.USocketWrap);
    const before = wrapsAwaitingClose();
    s.destroy();
    expect(wrapsAwaitingClose()).toBe(before + 1);
    await new Promise((r) => setImmediate(() => setImmediate(() => setImmediate(r))));
    expect(wrapsAwaitingClose()).toBe(before);
    fs.closeSync(b);
  });
});

describe('usocket writes with descriptors on a full socket', () => {
  it('the descriptors still arrive when the first sendmsg of the write finds the socket full (bug 3)', async () => {
    const [a, b] = native.socketpair();
    const sender = new USocket({ fd: a });
    // Fill the socket to EAGAIN (usocket made the fd non-blocking), so the next write starts full.
    const block = Buffer.alloc(65536, 1);
    let filled = 0;
    for (;;) {
      try {
        filled += fs.writeSync(a, block);
      } catch (e) {
        expect((e as { code?: string }).code).toBe('EAGAIN');
        break;
      }
    }
    const passed = fs.openSync(__filename, 'r');
    sender.write({ data: Buffer.from('with-fd'), fds: [passed] });
    const receiver = new USocket({ fd: b });
    const got: number[] = [];
    let bytes = 0;
    receiver.on('fds', (fds: number[]) => got.push(...fds));
    receiver.on('data', (d: Buffer) => (bytes += d.length));
    try {
      await waitFor('everything read', 10_000, () => bytes === filled + 7);
      expect(got).toHaveLength(1);
      expect(fs.fstatSync(got[0]).ino).toBe(fs.fstatSync(passed).ino);
    } finally {
      for (const fd of [passed, ...got]) fs.closeSync(fd);
      sender.destroy();
      receiver.destroy();
    }
  });
});

// Bug 4 (src/qemu/usocket.ts): a write that fails because the peer closed (EPIPE) makes Node's
// stream code call destroy(), which usocket overrides with one that emits nothing; an EOF read in
// the same wake-up then never becomes 'end' (read() returns null once the wrap is gone). The owner
// (dbus-native) never learns the connection died: the fake QEMU's listener looked open forever
// after the bridge closed it (test/unit/qemu-dead-man.test.ts, about 1 run in 5 under load).
describe("usocket destroy() tells the owner: one 'close' (bug 4)", () => {
  it("a write that fails with EPIPE (Node then calls destroy()) emits 'close' exactly once", async () => {
    const [a, b] = native.socketpair();
    const s = new USocket({ fd: a });
    let closes = 0;
    let writeError: Error | null | undefined;
    s.on('close', () => closes++);
    s.on('error', () => undefined);
    fs.closeSync(b);
    // Nobody reads, so usocket polls nothing: only the failed write can tell it the peer is gone.
    s.write(Buffer.from('to nobody'), (e?: Error | null) => (writeError = e));
    await waitFor("'close' after the failed write", 5000, () => closes > 0);
    expect((writeError as { code?: string } | undefined)?.code).toBe('EPIPE');
    s.destroy();
    await new Promise((r) => setImmediate(() => setImmediate(r)));
    expect(closes).toBe(1);
  });

  it("destroy() by the owner emits 'close' once, and so does a clean end in both directions", async () => {
    const [a, b] = native.socketpair();
    const s = new USocket({ fd: a });
    let closes = 0;
    s.on('close', () => closes++);
    s.destroy();
    s.destroy();
    await new Promise((r) => setImmediate(() => setImmediate(r)));
    expect(closes).toBe(1);
    fs.closeSync(b);

    const [c, d] = native.socketpair();
    const x = new USocket({ fd: c });
    const y = new USocket({ fd: d });
    let xCloses = 0;
    x.on('close', () => xCloses++);
    x.resume();
    y.resume();
    y.on('end', () => y.end());
    x.end();
    await waitFor("x's 'close' after both directions ended", 5000, () => xCloses > 0);
    await new Promise((r) => setImmediate(() => setImmediate(r)));
    expect(xCloses).toBe(1);
    y.destroy();
  });
});
