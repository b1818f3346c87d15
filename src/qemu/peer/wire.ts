// Our end of a listener's peer-to-peer connection once QEMU opened it: dbus-native's auth client
// for the handshake and its marshaller for what we send, and our own reader for what QEMU sends.
//
// Why not dbus-native's reader (issue 17, the CPU of ten audio-only bridges): QEMU 10.0 sends an
// AudioOutListener.Write 100 times a second, always the same call, and perf on one bridge showed
// its reader spending about a fifth of the main thread: a Readable-stream read(16) + read(n) per
// message behind a nextTick, the header fields a(yv) unmarshalled through the generic signature
// walker with every string decoded anew, the body through the signature tree. Here:
//   - the socket is read in flowing mode ('data' events; chunks are framed here);
//   - a message whose header-field bytes equal the previous message's (every Write, every
//     Update: only the serial, which is in the fixed header, changes) reuses the fields parsed
//     then; a field area is cached only when it parsed to exactly its declared length;
//   - a `tay` body (Write) is read directly when it is exactly well-formed (little-endian, one
//     u64, one array that ends where the body ends, within the array limit); any other body,
//     malformed ones included, goes through dbus-native's reader, which accepts and rejects
//     exactly what it did before.
// Framing checks and their errors are dbus-native's (byte order, protocol version, size limits,
// descriptors claimed against those received). A framing error ends the connection ('error',
// then the stream is destroyed): a stream that lost its framing cannot be resynchronised.
//
// A native intake (the speaker's, native/speaker_intake.h) may take over the reads once the
// handshake is done: the socket then stops reading in Node (its writes go on: replies), the intake
// reads a dup of its descriptor from the bytes Node had already read on, takes the calls it knows
// (Writes) itself and hands every other message, whole, to onData() here, waiting until it has
// been delivered; a header that does not frame comes here too, and fails here with this file's
// error. EOF and read errors come as its events instead of the socket's.
//
// Real-time contract: per message, O(header + body) without allocation beyond the message
// object, its body array and, when a read ended inside a message, one concatenation.
import type * as dbus from 'dbus-native';
import { EventEmitter } from 'events';
import type { Duplex } from 'stream';
import type { ListenerIntake, ListenerIntakeListener } from '../handlers';

/** Starts a native reader on `fd` with the bytes already read past the handshake (handlers.ts AudioOutHandler.openIntake). */
export type ListenerIntakeFactory = (fd: number, pending: Uint8Array, onEvent: ListenerIntakeListener) => ListenerIntake;

/** What the intake's events mean (native/speaker_intake.h IntakeEventKind). */
const INTAKE_MESSAGE = 0;
const INTAKE_FRAMING = 1;
const INTAKE_END = 2;

interface DBusBufferLike {
  pos: number;
  readArray(ele: unknown, size: number): [number, unknown][];
  align(power: number): void;
  read(signature: string): unknown[];
}
const DBusBuffer = require('dbus-native/lib/dbus-buffer') as new (buf: Buffer, start: number | undefined, opts: object, endianness: number) => DBusBufferLike;
const { ProtocolError, marshall } = require('dbus-native/lib/message') as { ProtocolError: new (m: string) => Error; marshall: (m: dbus.Message) => Buffer };
const constants = require('dbus-native/lib/constants') as {
  endianness: { le: number; be: number };
  protocolVersion: number;
  maxMessageSize: number;
  maxArraySize: number;
  headerTypeName: (string | null)[];
  noFdTransport(direction: string): string;
};
const { variantValue } = require('dbus-native/lib/values') as { variantValue: (v: unknown) => unknown };
const parseSignature = require('dbus-native/lib/signature') as (sig: string) => { child: unknown[] }[];
const clientHandshake = require('dbus-native/lib/handshake') as (
  stream: Duplex,
  opts: { authMethods: string[] },
  cb: (err: Error | null, guid?: string, identity?: unknown, negotiated?: { unixFd?: boolean }) => void,
) => void;

/** How values come out of the generic reader (the options the listener connection always used). */
const VALUE_OPTIONS = { ayBuffer: 'view' };
const FIXED_HEADER = 16;
/** The header fields' element type, (yv), as dbus-native's reader takes it. */
const FIELD = parseSignature('a(yv)')[0].child[0];
const align8 = (n: number): number => Math.ceil(n / 8) * 8;

interface PeerWireEvents {
  /** the handshake is over */
  connect: [];
  message: [msg: dbus.Message];
  /** a stream or framing error; after a framing error the stream is destroyed */
  error: [err: Error];
  /** the peer closed its end */
  end: [];
  close: [cause: Error | undefined];
  /** a 'message' listener threw */
  handlerError: [err: Error];
}

/** Header fields parsed once, reused while the next messages carry the same field bytes. */
interface FieldCache {
  bytes: Buffer;
  fields: Record<string, unknown>;
}

export class PeerWire extends EventEmitter<PeerWireEvents> {
  /** Did the peer agree to fd passing in the handshake? */
  unixFdsAgreed = false;
  connected = false;
  private readonly canPassFds: boolean;
  private readonly receivedFds: number[] = [];
  private readonly unsent: dbus.Message[] = [];
  private chunks: Buffer[] = [];
  private held = 0;
  /** bytes of the message being framed; 0 while its fixed header is not in */
  private need = 0;
  private failed = false;
  /** stop() was called */
  private stopped = false;
  private ended = false;
  private lastError: Error | undefined;
  private cache: FieldCache | undefined;
  /** The native reader that took over the reads, if one did. */
  private intake: ListenerIntake | undefined;

  /** `intake`: a native reader to hand the reads to after the handshake (see the header). */
  constructor(
    readonly stream: Duplex,
    private readonly handOff?: { fd: number; open: ListenerIntakeFactory },
  ) {
    super();
    this.canPassFds = typeof (stream as { writeWithFds?: unknown }).writeWithFds === 'function';
    // Descriptors arrive before the bytes they came with (usocket emits 'fds' first).
    stream.on('fds', (fds: number[]) => {
      for (const fd of fds) this.receivedFds.push(fd);
    });
    stream.on('error', (err: Error) => {
      this.lastError = err;
      if (!this.failed) this.emit('error', err);
    });
    stream.on('end', () => {
      this.ended = true;
      this.emit('end');
    });
    stream.on('close', () => {
      this.ended = true;
      // Descriptors no message claimed: nobody else can close them.
      const left = this.receivedFds.splice(0);
      if (left.length) (stream as { closeFds?: (fds: number[]) => void }).closeFds?.(left);
      this.emit('close', this.lastError);
    });
    clientHandshake(stream, { authMethods: ['EXTERNAL'] }, (err, _guid, _identity, negotiated) => {
      if (err) return void this.emit('error', err);
      this.unixFdsAgreed = Boolean(negotiated?.unixFd);
      this.connected = true;
      for (const m of this.unsent.splice(0)) this.message(m);
      this.emit('connect');
      if (this.stopped || this.ended || (this.handOff && this.startIntake(this.handOff))) return;
      // Flowing from here: what the handshake read past its last line was unshifted and comes first.
      stream.on('data', (chunk: Buffer) => this.onData(chunk));
      stream.resume();
    });
  }

  /**
   * Stops Node reading the socket and starts the intake on what it had read past the handshake.
   * False (reads stay in Node) when the socket is not one whose reads can be stopped, or the
   * intake could not start (told as a 'handlerError': the connection works as before).
   */
  private startIntake(h: { fd: number; open: ListenerIntakeFactory }): boolean {
    // net.Socket internals, the one seam there is: a Readable asks for more through _read(), and
    // the libuv handle reads while it is started. Both are stopped for good, in this same turn of
    // the event loop as the intake starts (libuv reads only between turns): what Node had read is
    // taken here and given to the intake, which reads everything after it.
    const s = this.stream as Duplex & { _handle?: { readStop?(): number; reading?: boolean }; _read: (n: number) => void };
    const handle = s._handle;
    if (!handle || typeof handle.readStop !== 'function') return false;
    const pending: Buffer[] = [];
    for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) pending.push(c);
    const bytes = Buffer.concat(pending);
    try {
      this.intake = h.open(h.fd, bytes, (kind, data) => this.onIntake(kind, data));
    } catch (err) {
      // Node keeps reading, from the bytes taken above; the connection works as before.
      if (bytes.length) s.unshift(bytes);
      if (this.listenerCount('handlerError') > 0) this.emit('handlerError', err as Error);
      return false;
    }
    s._read = () => undefined;
    handle.readStop();
    handle.reading = false;
    return true;
  }

  private onIntake(kind: number, data: Buffer | string): void {
    if (this.stopped) return;
    if (kind === INTAKE_MESSAGE || kind === INTAKE_FRAMING) {
      this.onData(data as Buffer);
      // A message is delivered (or the framing failed and stopped the intake): read on.
      if (kind === INTAKE_MESSAGE) this.intake?.resume();
    } else if (kind === INTAKE_END) {
      this.ended = true;
      this.emit('end');
    } else {
      const code = String(data);
      this.stream.destroy(Object.assign(new Error(`read ${code}`), { code, syscall: 'read' }));
    }
  }

  /** What the intake took itself (undefined: no intake; still readable after stop()). */
  intakeCounts(): ReturnType<ListenerIntake['stats']> | undefined {
    return this.intake?.stats();
  }

  /**
   * Delivers nothing more (the owner closes the stream): messages still held from the last read
   * are dropped, as dbus-native's reader stopped at a destroyed stream.
   */
  stop(): void {
    this.stopped = true;
    this.chunks = [];
    this.held = 0;
    // Joined here: once stop() returns no Write is taken from this connection any more.
    this.intake?.stop();
  }

  /** Sends one message (marshalled by dbus-native); queued until the handshake is over. */
  message(msg: dbus.Message): boolean {
    if (this.ended) return false;
    if (!this.connected) {
      this.unsent.push(msg);
      return true;
    }
    const buf = marshall(msg);
    if (msg.fds?.length) {
      if (!this.canPassFds) throw new Error(constants.noFdTransport('sent'));
      return (this.stream as unknown as { writeWithFds(b: Buffer, fds: number[]): boolean }).writeWithFds(buf, msg.fds);
    }
    return this.stream.write(buf);
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return; // also after a framing error (fail() stops)
    this.chunks.push(chunk);
    this.held += chunk.length;
    while (!this.stopped) {
      let msg: dbus.Message;
      try {
        if (this.need === 0) {
          if (this.held < FIXED_HEADER) return;
          this.need = this.frameLength(this.peek(FIXED_HEADER));
        }
        if (this.held < this.need) return;
        const buf = this.take(this.need);
        this.need = 0;
        msg = this.parse(buf);
      } catch (err) {
        return this.fail(err as Error);
      }
      try {
        this.emit('message', msg);
      } catch (err) {
        // A handler bug, not a framing error: the messages already read are still delivered.
        if (this.listenerCount('handlerError') > 0) this.emit('handlerError', err as Error);
        else
          process.nextTick(() => {
            throw err;
          });
      }
    }
  }

  /** The first `n` held bytes (n <= held), without consuming them. */
  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.join(n);
    return this.chunks[0];
  }

  /** Consumes the first `n` held bytes (n <= held). */
  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.join(n);
    const first = this.chunks[0];
    this.held -= n;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    this.chunks[0] = first.subarray(n);
    return first.subarray(0, n);
  }

  /** Makes the first held chunk at least `n` bytes long, copying only those (n <= held). */
  private join(n: number): void {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.chunks.unshift(out);
  }

  /** The whole length of the message whose fixed header this is; dbus-native's checks. */
  private frameLength(h: Buffer): number {
    const endianness = h[0];
    if (endianness !== constants.endianness.le && endianness !== constants.endianness.be) {
      throw new ProtocolError(`Invalid byte order '${String.fromCharCode(endianness)}' (0x${endianness.toString(16)}), expected 'l' or 'B'`);
    }
    if (h[3] !== constants.protocolVersion) throw new ProtocolError(`Unsupported protocol version ${h[3]}, expected ${constants.protocolVersion}`);
    const le = endianness === constants.endianness.le;
    const bodyLength = le ? h.readUInt32LE(4) : h.readUInt32BE(4);
    const fieldsLength = le ? h.readUInt32LE(12) : h.readUInt32BE(12);
    const max = constants.maxMessageSize;
    if (bodyLength > max || fieldsLength > max) {
      throw new ProtocolError(`Message exceeds the maximum size: header fields ${fieldsLength} bytes, body ${bodyLength} bytes, limit ${max} bytes`);
    }
    const total = FIXED_HEADER + align8(fieldsLength) + bodyLength;
    if (total > max) throw new ProtocolError(`Message exceeds the maximum size: ${total} bytes, limit ${max} bytes`);
    return total;
  }

  /** One whole message (framed by frameLength) into what dbus-native's reader made of it. */
  private parse(buf: Buffer): dbus.Message {
    const endianness = buf[0];
    const le = endianness === constants.endianness.le;
    const bodyLength = le ? buf.readUInt32LE(4) : buf.readUInt32BE(4);
    const fieldsLength = le ? buf.readUInt32LE(12) : buf.readUInt32BE(12);
    const fieldsEnd = FIXED_HEADER + fieldsLength;
    const c = this.cache;
    let fields: Record<string, unknown>;
    let reader: DBusBufferLike | undefined;
    if (le && c && c.bytes.length === fieldsLength && buf.compare(c.bytes, 0, fieldsLength, FIXED_HEADER, fieldsEnd) === 0) {
      fields = c.fields;
    } else {
      // As dbus-native reads them: the fields and the body share one reader over everything after
      // the fixed header (16 bytes, so its alignment is the message's).
      reader = new DBusBuffer(buf.subarray(FIXED_HEADER), undefined, VALUE_OPTIONS, endianness);
      const raw = reader.readArray(FIELD, fieldsLength);
      fields = {};
      for (const f of raw) fields[String(constants.headerTypeName[f[0]])] = variantValue(f[1]);
      if (le && reader.pos === fieldsLength) this.cache = { bytes: Buffer.from(buf.subarray(FIXED_HEADER, fieldsEnd)), fields };
    }
    // Object.assign, not a spread: V8 spreads an object built with computed keys ~30 times slower.
    const msg = Object.assign({ serial: le ? buf.readUInt32LE(8) : buf.readUInt32BE(8), type: buf[1], flags: buf[2] }, fields) as dbus.Message & { unixFds?: number };
    if (msg.unixFds) msg.fds = this.takeFds(msg.unixFds);
    if (bodyLength > 0 && msg.signature) {
      const at = FIXED_HEADER + align8(fieldsLength);
      // Only where dbus-native's reader would start the body at the same place (fields well-formed).
      const direct = le && msg.signature === 'tay' && bodyLength >= 12 && (!reader || reader.pos === fieldsLength);
      const n = direct ? buf.readUInt32LE(at + 8) : -1;
      if (n >= 0 && n + 12 === bodyLength && n <= constants.maxArraySize) {
        msg.body = [buf.readBigUInt64LE(at), buf.subarray(at + 12, at + 12 + n)];
      } else {
        if (!reader) {
          reader = new DBusBuffer(buf.subarray(FIXED_HEADER), undefined, VALUE_OPTIONS, endianness);
          reader.pos = fieldsLength;
        }
        reader.align(3);
        msg.body = reader.read(msg.signature);
      }
    }
    return msg;
  }

  private takeFds(count: number): number[] {
    if (!this.canPassFds) throw new ProtocolError(constants.noFdTransport('received'));
    const fds = this.receivedFds.splice(0, count);
    if (fds.length !== count) throw new ProtocolError(`Message claims ${count} file descriptor${count === 1 ? '' : 's'} but ${fds.length} arrived`);
    return fds;
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.stop();
    this.lastError = err;
    this.emit('error', err);
    this.stream.destroy();
  }
}
