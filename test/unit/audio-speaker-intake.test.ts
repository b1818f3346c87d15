// The speaker's intake thread (native/speaker_intake.h) over a real socketpair: it frames QEMU's
// bytes itself, takes exactly the Writes the dispatcher would run as handler.write() without a
// reply, and hands everything else, whole and in order, to PeerWire's parser (src/qemu/peer/wire.ts),
// which then delivers it exactly as it does without an intake. The real-QEMU proof is the guest
// tone through the intake (test/integration/audio-out-guest.test.ts).
import * as fs from 'fs';
import * as net from 'net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from 'dbus-native';
import { native, socketpair } from '../../src/native';
import type { NativeSpeakerCore, NativeSpeakerIntake } from '../../src/native-api/audio';
import { newStats, withIntake } from '../../src/qemu/peer/stats';
import { PeerWire } from '../../src/qemu/peer/wire';
import { openSpeakerCore } from '../fakes/playback';
import { OUT, VOICE, answerHandshake, bigEndianWrite, write } from '../harness/dbus-bytes';
import { waitFor } from '../harness/procs';

const { marshall, unmarshall } = require('dbus-native/lib/message') as { marshall: (m: Message) => Buffer; unmarshall: (b: Buffer, o: object) => Message };

const reference = (buf: Buffer): Message => unmarshall(buf, { ayBuffer: 'view' });

/** A core with VOICE (S16 stereo, no stream: every Write it takes is counted as dropped). */
function core(): NativeSpeakerCore {
  const c = openSpeakerCore({ runGapMs: 250, halfLifeMs: 600_000, maxMs: 120 });
  c.addVoice(VOICE, { format: 'S16LE', channels: 2, rate: 48000, convert: false, scheduled: true });
  return c;
}

const started: { stop(): void }[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const s of started.splice(0)) s.stop();
  for (const fd of fds.splice(0)) fs.closeSync(fd);
});

function intake(c: NativeSpeakerCore, fd: number, pending: Buffer, onEvent: (kind: 0 | 1 | 2 | 3, data: Buffer | string) => void): NativeSpeakerIntake {
  const Intake = native.PwSpeakerIntake;
  if (!Intake) throw new Error('the PipeWire addon has no PwSpeakerIntake: run npm run setup');
  const i = new Intake(c, fd, pending, onEvent);
  started.push(i);
  return i;
}

// Not taken natively, each for its own reason: a reply wanted, another member, big-endian, no
// INTERFACE field, another path, fds claimed.
const bytes = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
const STREAM: { msg: Buffer; native: boolean }[] = [
  { msg: marshall({ type: 1, serial: 1, flags: 1, ...OUT, member: 'SetEnabled', signature: 'tb', body: [VOICE, true] }), native: false },
  { msg: marshall(write(2, bytes)), native: true },
  { msg: marshall(write(3, bytes, { flags: 0 })), native: false },
  { msg: marshall(write(4, bytes.subarray(0, 8))), native: true },
  { msg: marshall({ ...write(5, bytes), interface: undefined }), native: false },
  { msg: marshall({ ...write(6, bytes), path: '/elsewhere' }), native: false },
  { msg: marshall(write(7, Buffer.alloc(0))), native: true },
];
STREAM.push({ msg: bigEndianWrite(8, bytes.subarray(0, 4)), native: false });

describe('speaker intake: framing', () => {
  it('takes exactly the well-formed no-reply Writes and hands every other message over whole and in order, wherever the bytes are cut', async () => {
    const all = Buffer.concat(STREAM.map((s) => s.msg));
    const handedWant = STREAM.filter((s) => !s.native).map((s) => s.msg);
    const takenFrames = (bytes.length + 8 + 0) / 4;
    // Every cut between what JS had read past the handshake (pending) and what the socket carries.
    for (let cut = 0; cut <= all.length; cut++) {
      const [mine, theirs] = socketpair();
      fds.push(mine, theirs);
      const c = core();
      const handed: Buffer[] = [];
      const i = intake(c, mine, all.subarray(0, cut), (kind, data) => {
        expect(kind).toBe(0);
        handed.push(data as Buffer);
        i.resume();
      });
      fs.writeSync(theirs, all.subarray(cut));
      await waitFor(`cut ${cut}: everything framed`, 5000, () => handed.length + i.stats().taken === STREAM.length, 1);
      expect(handed).toEqual(handedWant);
      expect(i.stats()).toMatchObject({ taken: 3, takenBytes: bytes.length + 8, handed: handedWant.length });
      expect(i.stats().sinceTakenMs).toBeLessThan(60_000);
      expect(c.voiceStats(VOICE)?.droppedFrames).toBe(takenFrames);
    }
  });

  it('reads nothing more while JS has not handled what it was handed (order: an Init before the next Write)', async () => {
    const [mine, theirs] = socketpair();
    fds.push(mine, theirs);
    const c = core();
    const handed: Buffer[] = [];
    const i = intake(c, mine, Buffer.alloc(0), (_kind, data) => handed.push(data as Buffer));
    fs.writeSync(theirs, Buffer.concat([STREAM[0].msg, STREAM[1].msg]));
    await waitFor('the first message handed', 5000, () => handed.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(i.stats()).toMatchObject({ taken: 0, takenBytes: 0, sinceTakenMs: Infinity });
    i.resume();
    await waitFor('the Write taken', 5000, () => i.stats().taken === 1);
  });

  it('a Write to a corked voice, or one written to a JS sink, goes to JS', async () => {
    const [mine, theirs] = socketpair();
    fds.push(mine, theirs);
    const c = core();
    c.setActive(VOICE, false);
    const handed: Buffer[] = [];
    const i = intake(c, mine, Buffer.alloc(0), (_kind, data) => (handed.push(data as Buffer), i.resume()));
    fs.writeSync(theirs, STREAM[1].msg);
    await waitFor('handed', 5000, () => handed.length === 1);
    c.setActive(VOICE, true);
    c.setStream(VOICE, { write: () => 0, stats: () => ({ ringFillFrames: 0 }) } as never);
    fs.writeSync(theirs, STREAM[1].msg);
    await waitFor('handed again', 5000, () => handed.length === 2);
    expect(i.stats().taken).toBe(0);
  });

  it('EOF is told once and the thread ends', async () => {
    const [mine, theirs] = socketpair();
    fds.push(mine);
    const events: number[] = [];
    intake(core(), mine, Buffer.alloc(0), (kind) => events.push(kind));
    fs.closeSync(theirs);
    await waitFor('EOF told', 5000, () => events.length === 1);
    expect(events).toEqual([2]);
  });

  it('stop() joins the thread while it waits for JS, and nothing is taken after it', async () => {
    const [mine, theirs] = socketpair();
    fds.push(mine, theirs);
    const handed: Buffer[] = [];
    const i = intake(core(), mine, Buffer.alloc(0), (_kind, data) => handed.push(data as Buffer));
    fs.writeSync(theirs, Buffer.concat([STREAM[0].msg, STREAM[1].msg]));
    await waitFor('handed', 5000, () => handed.length === 1);
    i.stop();
    i.resume();
    await new Promise((r) => setTimeout(r, 50));
    expect(i.stats().taken).toBe(0);
  });
});

/** A PeerWire on one end of a socketpair, handshake answered as QEMU does; with the intake or without. */
async function openWire(withIntake: boolean): Promise<{ wire: PeerWire; qemu: net.Socket; got: Message[]; errors: Error[]; ended: () => boolean; closed: Promise<unknown> }> {
  const [mine, theirs] = socketpair();
  const c = core();
  const wire = new PeerWire(new net.Socket({ fd: mine, readable: true, writable: true }), withIntake ? { fd: mine, open: (fd, pending, onEvent) => intake(c, fd, Buffer.from(pending), onEvent) } : undefined);
  const qemu = new net.Socket({ fd: theirs, readable: true, writable: true });
  const got: Message[] = [];
  const errors: Error[] = [];
  let ended = false;
  wire.on('message', (m) => got.push(m));
  wire.on('error', (e) => errors.push(e));
  wire.on('end', () => (ended = true));
  const closed = new Promise((r) => wire.once('close', r));
  started.push({ stop: () => (qemu.destroy(), wire.stream.destroy()) });
  await answerHandshake(qemu);
  await waitFor('the wire connected', 5000, () => wire.connected);
  return { wire, qemu, got, errors, ended: () => ended, closed };
}

describe('speaker intake behind PeerWire', () => {
  it('PeerWire delivers what the intake hands over exactly as it parses the socket itself', async () => {
    const want = STREAM.filter((s) => !s.native).map((s) => reference(s.msg));
    const o = await openWire(true);
    o.qemu.write(Buffer.concat(STREAM.map((s) => s.msg)));
    await waitFor('the handed messages', 5000, () => o.got.length === want.length);
    expect(o.got).toEqual(want);
    expect(o.errors).toEqual([]);
  });

  it('a frame that does not frame ends the connection with the same error as without the intake', async () => {
    const good = marshall(write(1, bytes));
    const corrupt: [string, (b: Buffer) => void][] = [
      ['byte order', (b) => (b[0] = 0x58)],
      ['protocol version', (b) => (b[3] = 2)],
      ['body size', (b) => b.writeUInt32LE(0xfffffff0, 4)],
      ['field size', (b) => b.writeUInt32LE(0x7ffffff0, 12)],
      ['total size', (b) => (b.writeUInt32LE(0x7fffff00, 4), b.writeUInt32LE(0x1000000, 12))],
    ];
    for (const [what, spoil] of corrupt) {
      const bad = Buffer.from(good);
      spoil(bad);
      const errors: string[] = [];
      for (const withIntake of [false, true]) {
        const o = await openWire(withIntake);
        o.qemu.write(Buffer.concat([good, bad, good]));
        await Promise.race([o.closed, new Promise((r) => setTimeout(r, 5000))]);
        expect(o.errors, `${what}, intake ${withIntake}`).toHaveLength(1);
        errors.push(o.errors[0].message);
      }
      expect(errors[1], what).toBe(errors[0]);
    }
  });

  it("the connection's counters add what the intake took to what the dispatcher counted", async () => {
    const o = await openWire(true);
    expect(o.wire.intakeCounts()).toMatchObject({ taken: 0 });
    o.qemu.write(Buffer.concat(STREAM.map((s) => s.msg)));
    await waitFor('the Writes taken', 5000, () => o.wire.intakeCounts()!.taken === 3);
    const counted = { ...newStats(), calls: 5, bytes: 100, lastCallAt: -Infinity };
    const before = performance.now();
    const all = withIntake(counted, o.wire.intakeCounts());
    expect(all).toMatchObject({ calls: 5 + 3, bytes: 100 + bytes.length + 8 });
    expect(all.lastCallAt).toBeGreaterThan(before - 5000);
    expect(all.lastCallAt).toBeLessThanOrEqual(performance.now());
    expect(counted).toMatchObject({ calls: 5, bytes: 100 }); // the dispatcher's own are left alone
  });

  it("QEMU closing its end is PeerWire's 'end', as without the intake", async () => {
    const o = await openWire(true);
    o.qemu.end();
    await waitFor("'end'", 5000, () => o.ended());
  });
});

/** The intake threads alive in this process (the thread names itself qdb-intake). */
function intakeThreads(): number {
  let n = 0;
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${t}/comm`, 'latin1').trim() === 'qdb-intake') n++;
    } catch {
      /* the thread ended while we looked */
    }
  }
  return n;
}

/**
 * A PeerWire whose QEMU end is a bare descriptor (never read): the handshake is answered up front,
 * so what our end sends (AUTH, BEGIN) stays unread in QEMU's receive queue. Closing that end then
 * makes our next read() fail with ECONNRESET (AF_UNIX: a peer closed with data it had not read):
 * a read error that is neither EAGAIN nor EINTR, from a real socket.
 */
async function openWireOnRawPeer(c: NativeSpeakerCore | undefined): Promise<{ wire: PeerWire; theirs: number; events: string[]; errors: Error[]; closed: Promise<unknown> }> {
  const [mine, theirs] = socketpair();
  fs.writeSync(theirs, 'OK 0123456789abcdef0123456789abcdef\r\n');
  const wire = new PeerWire(new net.Socket({ fd: mine, readable: true, writable: true }), c ? { fd: mine, open: (fd, pending, onEvent) => intake(c, fd, Buffer.from(pending), onEvent) } : undefined);
  const events: string[] = [];
  const errors: Error[] = [];
  wire.on('message', () => events.push('message'));
  wire.on('end', () => events.push('end'));
  wire.on('error', (e) => (events.push('error'), errors.push(e)));
  const closed = new Promise((r) => wire.once('close', () => (events.push('close'), r(undefined))));
  started.push({ stop: () => (wire.stop(), wire.stream.destroy()) });
  await waitFor('the wire connected', 5000, () => wire.connected);
  return { wire, theirs, events, errors, closed };
}

describe('speaker intake: the connection breaking', () => {
  it('a read error (ECONNRESET) is told once, as errno name, and the thread ends', async () => {
    const threads = intakeThreads();
    const [mine, theirs] = socketpair();
    fds.push(mine);
    fs.writeSync(mine, 'left unread by the peer');
    const events: [number, Buffer | string][] = [];
    intake(core(), mine, Buffer.alloc(0), (kind, data) => events.push([kind, data]));
    await waitFor('the thread running', 5000, () => intakeThreads() === threads + 1);
    fs.closeSync(theirs);
    await waitFor('the error told', 5000, () => events.length > 0);
    await waitFor('the thread gone', 5000, () => intakeThreads() === threads);
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual([[3, 'ECONNRESET']]);
  });

  it('EOF inside a message is told once as the end, the partial message dropped, and the thread ends', async () => {
    const threads = intakeThreads();
    const [mine, theirs] = socketpair();
    fds.push(mine);
    const events: number[] = [];
    const c = core();
    const i = intake(c, mine, Buffer.alloc(0), (kind) => events.push(kind));
    const msg = marshall(write(1, bytes));
    fs.writeSync(theirs, Buffer.concat([msg, msg.subarray(0, msg.length - 5)]));
    await waitFor('the whole Write taken', 5000, () => i.stats().taken === 1);
    fs.closeSync(theirs);
    await waitFor('the end told', 5000, () => events.length > 0);
    await waitFor('the thread gone', 5000, () => intakeThreads() === threads);
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual([2]);
    expect(i.stats()).toMatchObject({ taken: 1, handed: 0 });
  });

  it('behind PeerWire, a read error ends the connection once with the error PeerWire gives without the intake', async () => {
    const seen: { events: string[]; error: { message: string; code: unknown; syscall: unknown } }[] = [];
    for (const withIntake of [false, true]) {
      const threads = intakeThreads();
      const o = await openWireOnRawPeer(withIntake ? core() : undefined);
      if (withIntake) await waitFor('the intake running', 5000, () => intakeThreads() === threads + 1);
      fs.closeSync(o.theirs);
      await Promise.race([o.closed, new Promise((r) => setTimeout(r, 5000))]);
      await waitFor('no intake thread left', 5000, () => intakeThreads() === threads);
      await new Promise((r) => setTimeout(r, 50));
      const e = o.errors[0] as Error & { code?: unknown; syscall?: unknown };
      seen.push({ events: o.events, error: { message: e?.message, code: e?.code, syscall: e?.syscall } });
    }
    expect(seen[0]).toEqual({ events: ['error', 'close'], error: { message: 'read ECONNRESET', code: 'ECONNRESET', syscall: 'read' } });
    expect(seen[1]).toEqual(seen[0]);
  });

  it('behind PeerWire, EOF inside a message is one end, as without the intake, and delivers nothing', async () => {
    const msg = marshall(write(1, bytes, { flags: 0 })); // wants a reply: handed to JS, not taken
    const seen: string[][] = [];
    for (const withIntake of [false, true]) {
      const o = await openWire(withIntake);
      o.qemu.end(msg.subarray(0, msg.length - 5));
      await waitFor("'end'", 5000, () => o.ended());
      await new Promise((r) => setTimeout(r, 50));
      seen.push([...o.got.map((m) => String(m.member)), ...o.errors.map((e) => e.message), o.ended() ? 'end' : '']);
    }
    expect(seen[0]).toEqual(['end']);
    expect(seen[1]).toEqual(seen[0]);
  });

  it("after a connection broke, the Speaker's core takes Writes from the next connection and from JS", async () => {
    const c = core();
    const [mine, theirs] = socketpair();
    fds.push(mine);
    fs.writeSync(mine, 'left unread by the peer');
    const events: number[] = [];
    intake(c, mine, Buffer.alloc(0), (kind) => events.push(kind));
    fs.closeSync(theirs);
    await waitFor('the error told', 5000, () => events.length > 0);
    const dropped = c.voiceStats(VOICE)!.droppedFrames;
    const [mine2, theirs2] = socketpair();
    fds.push(mine2, theirs2);
    const next = intake(c, mine2, Buffer.alloc(0), () => undefined);
    fs.writeSync(theirs2, marshall(write(1, bytes)));
    await waitFor('the next connection taking the Write', 5000, () => next.stats().taken === 1);
    c.write(VOICE, bytes, c.jitter().nowMs);
    expect(c.voiceStats(VOICE)!.droppedFrames - dropped).toBe((2 * bytes.length) / 4);
  });
});
