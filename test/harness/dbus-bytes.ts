// The listener wire's tests (qemu-peer-wire, audio-speaker-intake): QEMU's side of the p2p
// handshake, and D-Bus messages as bytes that dbus-native's marshaller cannot make (it writes
// little-endian only).
import type { Message } from 'dbus-native';
import type * as net from 'net';

const { marshall } = require('dbus-native/lib/message') as { marshall: (m: Message) => Buffer };

/** Where QEMU calls the speaker's listener. */
export const OUT = { path: '/org/qemu/Display1/AudioOutListener', interface: 'org.qemu.Display1.AudioOutListener' };
/** The voice id the Writes below carry. */
export const VOICE = 0x5611deadbeefn;
/** An AudioOutListener.Write as QEMU sends it (NO_REPLY_EXPECTED), `o` overriding any part. */
export const write = (serial: number, bytes: Buffer, o: Partial<Message> = {}): Message => ({ type: 1, serial, flags: 1, ...OUT, member: 'Write', signature: 'tay', body: [VOICE, bytes], ...o });

/** write(), marshalled (little-endian) as it goes on the wire. */
export const marshalledWrite = (serial: number, bytes: Buffer, o: Partial<Message> = {}): Buffer => marshall(write(serial, bytes, o));

/** A Write marshalled big-endian (dbus-native only writes little-endian), by hand. */
export function bigEndianWrite(serial: number, bytes: Buffer): Buffer {
  const le = marshalledWrite(serial, bytes);
  const fieldsLength = le.readUInt32LE(12);
  const be = Buffer.from(le);
  be[0] = 0x42; // 'B'
  be.writeUInt32BE(le.readUInt32LE(4), 4);
  be.writeUInt32BE(serial, 8);
  be.writeUInt32BE(fieldsLength, 12);
  // Header fields: (yv) structs: code, signature length/bytes/nul, then the value; swap every
  // string/object-path length (u32) and leave 'g' lengths (one byte) alone.
  let p = 16;
  while (p < 16 + fieldsLength) {
    p = Math.ceil(p / 8) * 8;
    const sigLen = be[p + 1];
    const sig = be.toString('latin1', p + 2, p + 2 + sigLen);
    p += 2 + sigLen + 1;
    if (sig === 'g') {
      p += 1 + be[p] + 1;
    } else {
      p = Math.ceil(p / 4) * 4;
      const n = le.readUInt32LE(p);
      be.writeUInt32BE(n, p);
      p += 4 + n + 1;
    }
  }
  const at = 16 + Math.ceil(fieldsLength / 8) * 8;
  be.writeBigUInt64BE(le.readBigUInt64LE(at), at);
  be.writeUInt32BE(le.readUInt32LE(at + 8), at + 8);
  return be;
}

/** Answers our end's SASL handshake as QEMU does (OK, then waits for BEGIN) on QEMU's end of the socket. */
export function answerHandshake(qemu: net.Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (text.includes('AUTH EXTERNAL') && !text.includes('OK-SENT')) {
        text += 'OK-SENT';
        qemu.write('OK 0123456789abcdef0123456789abcdef\r\n');
      }
      if (text.includes('BEGIN\r\n')) {
        qemu.removeListener('data', onData);
        resolve();
      }
    };
    qemu.on('data', onData);
  });
}
