// The reader of a listener's p2p connection (src/qemu/peer/wire.ts) against dbus-native's own
// reader of the same bytes: every message QEMU can send comes out exactly as dbus-native makes it
// (the Write fast path and the header-field cache included), and whatever dbus-native refuses
// ends the connection here too. Over a real socketpair, after a real SASL handshake.
import * as net from 'net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from 'dbus-native';
import { socketpair } from '../../src/native';
import { PeerWire } from '../../src/qemu/peer/wire';
import { OUT, answerHandshake, bigEndianWrite, write } from '../harness/dbus-bytes';
import { waitFor } from '../harness/procs';

const { marshall, unmarshall } = require('dbus-native/lib/message') as { marshall: (m: Message) => Buffer; unmarshall: (b: Buffer, o: object) => Message };


interface Opened {
  wire: PeerWire;
  /** QEMU's end, after the handshake */
  qemu: net.Socket;
  got: Message[];
  errors: Error[];
  closed: Promise<unknown>;
}
const open: Opened[] = [];
afterEach(() => {
  for (const o of open.splice(0)) {
    o.qemu.destroy();
    o.wire.stream.destroy();
  }
});

/** A wire on one end of a socketpair; the other end answers the handshake as QEMU does. */
async function openWire(): Promise<Opened> {
  const [mine, theirs] = socketpair();
  const wire = new PeerWire(new net.Socket({ fd: mine, readable: true, writable: true }));
  const qemu = new net.Socket({ fd: theirs, readable: true, writable: true });
  const got: Message[] = [];
  const errors: Error[] = [];
  wire.on('message', (m) => got.push(m));
  wire.on('error', (e) => errors.push(e));
  const closed = new Promise((r) => wire.once('close', r));
  await answerHandshake(qemu);
  await waitFor('the wire connected', 5000, () => wire.connected);
  const o = { wire, qemu, got, errors, closed };
  open.push(o);
  return o;
}

function withTimeout<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`not ${what} within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

/** What dbus-native's reader makes of one message's bytes (the listener's value options). */
const reference = (buf: Buffer): Message => unmarshall(buf, { ayBuffer: 'view' });

/** Sends `bufs` as one byte stream cut into reads of `cut` bytes (0: each buffer a write of its own). */
async function send(o: Opened, bufs: Buffer[], cut = 0): Promise<void> {
  const all = Buffer.concat(bufs);
  if (cut === 0) for (const b of bufs) o.qemu.write(b);
  else for (let i = 0; i < all.length; i += cut) o.qemu.write(all.subarray(i, i + cut));
}

describe('p2p wire reader', () => {
  it('parses Writes, other calls and a big-endian call exactly as dbus-native does, in any cut of the stream', async () => {
    const bytes = Buffer.from(Array.from({ length: 1920 }, (_, i) => i & 0xff));
    const msgs: Message[] = [
      write(1, bytes),
      write(2, bytes.subarray(0, 7)),
      { type: 1, serial: 3, flags: 1, ...OUT, member: 'SetEnabled', signature: 'tb', body: [0x5611deadbeefn, true] },
      write(4, Buffer.alloc(0)),
      { type: 1, serial: 5, ...OUT, interface: 'org.freedesktop.DBus.Properties', member: 'GetAll', signature: 's', body: [OUT.interface] },
      write(6, bytes),
    ];
    const bufs = msgs.map(marshall);
    // A big-endian Write: dbus-native's reader, not the fast path.
    const be = Buffer.from(bufs[0]);
    const le = reference(be);
    bufs.push(bigEndianWrite(7, bytes.subarray(0, 5)));
    const want = bufs.map(reference);
    expect(want[6].body).toEqual([0x5611deadbeefn, bytes.subarray(0, 5)]);
    expect(le.member).toBe('Write');
    for (const cut of [0, 1, 13, 4096]) {
      const o = await openWire();
      await send(o, bufs, cut);
      await waitFor(`${bufs.length} messages (cut ${cut})`, 5000, () => o.got.length === bufs.length);
      expect(o.got).toEqual(want);
      expect(o.errors).toEqual([]);
    }
  });

  it('a call whose header fields differ from the cached ones is parsed anew', async () => {
    const o = await openWire();
    const a = marshall(write(1, Buffer.from([1, 2])));
    const b = marshall({ ...write(2, Buffer.from([3])), member: 'Writf' });
    await send(o, [a, b, a]);
    await waitFor('3 messages', 5000, () => o.got.length === 3);
    expect(o.got.map((m) => m.member)).toEqual(['Write', 'Writf', 'Write']);
    expect(o.got.map((m) => m.serial)).toEqual([1, 2, 1]);
  });

  it('a Write body dbus-native refuses (array past the end, short body) ends the connection; one it reads with bytes to spare reads the same', async () => {
    const good = marshall(write(1, Buffer.from([1, 2, 3, 4])));
    const at = 16 + Math.ceil(good.readUInt32LE(12) / 8) * 8;
    const pastEnd = Buffer.from(good);
    pastEnd.writeUInt32LE(5, at + 8); // the array claims one byte more than the body holds
    const shortBody = Buffer.concat([good.subarray(0, at), good.subarray(at, at + 6)]);
    shortBody.writeUInt32LE(6, 4);
    const spare = Buffer.from(good);
    spare.writeUInt32LE(3, at + 8); // the array ends one byte before the body does
    for (const bad of [pastEnd, shortBody]) {
      expect(() => reference(bad)).toThrow();
      const o = await openWire();
      await send(o, [bad, good]);
      await withTimeout(o.closed, 'the connection closed');
      expect(o.got).toEqual([]);
      expect(o.errors).toHaveLength(1);
    }
    const o = await openWire();
    await send(o, [spare, good]);
    await waitFor('2 messages', 5000, () => o.got.length === 2);
    expect(o.got[0]).toEqual(reference(spare));
    expect(o.got[0].body![1]).toEqual(Buffer.from([1, 2, 3]));
    expect(o.got[1]).toEqual(reference(good));
  });

  it('after stop() (the owner closes) nothing more is delivered, not even what the same read carried', async () => {
    const o = await openWire();
    o.wire.on('message', () => o.wire.stop());
    await send(o, [marshall(write(1, Buffer.from([1]))), marshall(write(2, Buffer.from([2])))], 4096);
    await waitFor('the first message', 5000, () => o.got.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(o.got.map((m) => m.serial)).toEqual([1]);
  });

  it('a frame dbus-native refuses (byte order, version, size, descriptors without fd passing) ends the connection with EPROTO', async () => {
    const good = marshall(write(1, Buffer.from([1])));
    const order = Buffer.from(good);
    order[0] = 0x78;
    const version = Buffer.from(good);
    version[3] = 2;
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0x7fffffff, 4);
    const fds = marshall({ type: 1, serial: 9, flags: 1, ...OUT, member: 'Write', signature: 'tay', body: [1n, Buffer.from([1])], fds: [0] });
    for (const bad of [order, version, huge, fds]) {
      const o = await openWire();
      await send(o, [bad]);
      await withTimeout(o.closed, `the connection closed after ${bad.subarray(0, 16).toString('hex')}`);
      expect(o.errors).toEqual([expect.objectContaining({ code: 'EPROTO' })]);
      expect(o.got).toEqual([]);
    }
  });
});

