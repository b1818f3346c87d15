// Fake capture server for tests and fault injection: a CaptureBackend whose streams keep the
// NativeCapture contract of the addon's PwCapture/PulseCapture (test/contracts/capture.contract.ts
// runs against both), with the server's side (delivering audio, failing) driven by the test.
// Semantics copied from native/capture_common.h: whole frames only, a full ring drops the oldest
// bytes and counts them, read() never waits, bad arguments throw code EINVAL.
import type { CaptureBackend } from '../../src/audio/backend';
import type { AudioBackendKind } from '../../src/audio/format';
import type { CaptureStateListener, NativeCapture, NativeCaptureOptions, NativeCaptureStats } from '../../src/native-api/capture';

function einval(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'EINVAL' });
}

const BYTES_PER_SAMPLE: Record<string, number> = {
  U8: 1,
  S8: 1,
  S16LE: 2,
  S16BE: 2,
  U16LE: 2,
  U16BE: 2,
  S32LE: 4,
  S32BE: 4,
  U32LE: 4,
  U32BE: 4,
  F32LE: 4,
  F32BE: 4,
};

export class FakeCaptureStream implements NativeCapture {
  readonly frameBytes: number;
  readonly capacity: number;
  private readonly ring: Uint8Array;
  private readPos = 0;
  private fill = 0;
  private captured = 0;
  private overrun = 0;
  private callbacks = 0;
  private state = 'connecting';
  closed = false;

  constructor(
    readonly request: NativeCaptureOptions,
    /** The listener the stream was opened with (a test may replay a late event through it). */
    readonly onState: CaptureStateListener,
  ) {
    const bps = BYTES_PER_SAMPLE[request.format];
    if (!bps) throw einval(`FakeCapture: option format: unknown sample format '${request.format}'`);
    if (!Number.isInteger(request.channels) || request.channels < 1 || request.channels > 64) throw einval('FakeCapture: option channels must be an integer in [1, 64]');
    this.frameBytes = bps * request.channels;
    this.capacity = request.ringFrames * this.frameBytes;
    this.ring = new Uint8Array(this.capacity);
  }

  /** Server side: the stream is linked and delivering. */
  start(): void {
    this.setState('streaming', '');
  }

  /** Server side: fail the stream (e.g. the source vanished). */
  fail(message: string): void {
    this.setState('error', message);
  }

  /** Server side: one capture callback delivering `data` (whole frames kept, like the addon). */
  deliver(data: Uint8Array): void {
    if (this.closed) return;
    let n = data.byteLength - (data.byteLength % this.frameBytes);
    let src = 0;
    if (n > this.capacity) {
      this.overrun += n - this.capacity;
      src = n - this.capacity;
      n = this.capacity;
    }
    const excess = this.fill + n - this.capacity;
    if (excess > 0) {
      this.readPos = (this.readPos + excess) % this.capacity;
      this.fill -= excess;
      this.overrun += excess;
    }
    let w = (this.readPos + this.fill) % this.capacity;
    for (let i = 0; i < n; ) {
      const chunk = Math.min(n - i, this.capacity - w);
      this.ring.set(data.subarray(src + i, src + i + chunk), w);
      i += chunk;
      w = (w + chunk) % this.capacity;
    }
    this.fill += n;
    this.captured += n;
    this.callbacks++;
  }

  read(into: Uint8Array, offset = 0, length?: number): number {
    if (!(into instanceof Uint8Array)) throw einval('read: into must be a Uint8Array/Buffer');
    if (!Number.isInteger(offset) || offset < 0 || offset > into.byteLength) throw einval('read: offset must be an integer in range');
    const max = into.byteLength - offset;
    const len = length ?? max;
    if (!Number.isInteger(len) || len < 0 || len > max) throw einval('read: length must be an integer in range');
    let n = Math.min(len, this.fill);
    n -= n % this.frameBytes;
    for (let i = 0; i < n; ) {
      const chunk = Math.min(n - i, this.capacity - this.readPos);
      into.set(this.ring.subarray(this.readPos, this.readPos + chunk), offset + i);
      i += chunk;
      this.readPos = (this.readPos + chunk) % this.capacity;
    }
    this.fill -= n;
    return n;
  }

  discard(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0) throw einval('discard: bytes must be a non-negative integer');
    let n = Math.min(bytes, this.fill);
    n -= n % this.frameBytes;
    this.readPos = (this.readPos + n) % this.capacity;
    this.fill -= n;
    return n;
  }

  available(): number {
    return this.fill;
  }

  stats(): NativeCaptureStats {
    return {
      available: this.fill,
      capacity: this.capacity,
      capturedBytes: this.captured,
      overrunBytes: this.overrun,
      callbacks: this.callbacks,
      state: this.closed ? 'closed' : this.state,
    };
  }

  close(): void {
    this.closed = true;
  }

  private setState(state: string, message: string): void {
    if (this.closed) return;
    this.state = state;
    this.onState(state, message);
  }
}

/** A CaptureBackend that records every stream it opened (the fake "server"). */
export class FakeCaptureServer implements CaptureBackend {
  readonly where = 'fake:';
  readonly opened: FakeCaptureStream[] = [];
  /** When set, the next open throws this (server unreachable). */
  failNextOpen?: Error;
  /** Start streams as soon as they are opened (default true). */
  autoStart = true;

  constructor(readonly kind: AudioBackendKind = 'pipewire') {}

  openCapture(req: NativeCaptureOptions, onState: CaptureStateListener): FakeCaptureStream {
    if (this.failNextOpen) {
      const e = this.failNextOpen;
      this.failNextOpen = undefined;
      throw e;
    }
    const s = new FakeCaptureStream(req, onState);
    this.opened.push(s);
    if (this.autoStart) s.start();
    return s;
  }

  /** Streams not closed yet: what "a microphone is open" means. */
  get live(): FakeCaptureStream[] {
    return this.opened.filter((s) => !s.closed);
  }
}
