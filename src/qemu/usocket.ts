// usocket (fd passing over AF_UNIX), with two memory-safety bugs worked around. Everything in
// this project that makes a USocket or UServer imports it from here, never from 'usocket'.
// test/unit/qemu-usocket.test.ts reproduces both against the raw library.
//
// 1. Close, then garbage collection (usocket 1.1.0, src/uwrap.cc + index.js): the native wrap
//    embeds its uv_poll_t and closes it with uv_close(handle, NULL), and the JavaScript side drops
//    its last reference to the wrap in the same breath (`this._wrap.close(); this._wrap = null`).
//    libuv finishes a close only at the end of the current loop iteration, so a garbage
//    collection in between runs the wrap's destructor and frees the handle while it is still
//    queued: the process aborts in uv__finish_close ("Assertion `handle->flags &
//    UV_HANDLE_CLOSING' failed"). Under the test suite's load this killed a vitest worker about
//    once a run. Fix: a closed wrap stays reachable until the check phase of the next loop
//    iteration, which comes after the closing phase that frees the handle, whatever phase close()
//    was called in.
//
// 2. Close while connecting (or listening): connect() and listen() run on libuv's thread pool
//    and their completion calls back into the wrap, which close() has already stripped of its
//    callback and async resource: a null dereference (SIGSEGV). connectUnixWithFds' timeout does
//    exactly that. Fix: close() on a wrap whose connect/listen is still running only marks it;
//    the real close happens when the result arrives, and that result is not passed on (the socket
//    is gone as far as its owner is concerned). Until then the wrap is reachable through the
//    callback usocket keeps in a persistent handle (callback -> owner -> wrap), so no GC hazard.
//
// 3. Descriptors lost on a full socket: uwrap.cc sends a write's fds with its first sendmsg(), and
//    when that one meets a full socket (EAGAIN, nothing written) index.js retries after 'drain'
//    with the data alone. The receiver then parses a message claiming fds that never arrive
//    (dbus-native: "Message claims 1 file descriptor but 0 arrived") and drops the connection.
//    Found by the listener fuzz (a ScanoutMap right behind a 2 MiB Scanout). Fix: when nothing
//    was written, the retry carries the descriptors again.
//
// 4. destroy() emits nothing: usocket overrides it with one that closes the wrap and stays silent
//    (no 'close', `destroyed` stays false), and read() returns null once the wrap is gone, so a
//    pending 'end' never comes either. Node's stream code calls destroy() itself when a write
//    fails (EPIPE once the peer closed), and dbus-native calls it on a framing error: its owner
//    then never learns the connection is gone — pending calls wait for their timeout, a
//    bus.close() waits forever, and the fake QEMU's listener looked open after the bridge closed
//    it. Fix: a destroy() that closed a wrap emits exactly one 'close' on the next tick (none if
//    usocket already emitted its own, as after an error or a clean end in both directions).
//
// (The same persistent callback keeps a wrap that was never closed alive, so a socket dropped
// without destroy() leaks its fd rather than crashing: every owner here closes what it opens.)
import * as path from 'path';
import * as usocket from 'usocket';

export const USocket = usocket.USocket;
export type USocket = usocket.USocket;
export const UServer = usocket.UServer;
export type UServer = usocket.UServer;

type WrapMethod = (this: NativeWrap, ...args: unknown[]) => unknown;
interface NativeWrap {
  close(): void;
  [PENDING]?: boolean;
  [CLOSE_WHEN_SETTLED]?: boolean;
}
interface NativeWrapClass {
  prototype: NativeWrap & Record<string, WrapMethod>;
}
type OwnerMethod = (this: WrapOwner, ...args: unknown[]) => unknown;
/** USocket and UServer (their prototypes) as far as this patch sees them. */
interface WrapOwner {
  _wrap?: NativeWrap | null;
  _wrapEvent(event: string, a0?: unknown, a1?: unknown): void;
  connect?: OwnerMethod;
  listen?: OwnerMethod;
  [STARTING]?: NativeWrap;
  [PATCHED]?: true;
}

const PENDING = Symbol('connect or listen running on the thread pool');
const CLOSE_WHEN_SETTLED = Symbol('closed while pending');
const STARTING = Symbol('wrap whose connect/listen has not answered yet');
const PATCHED = Symbol.for('qemu-dbus-bridge.usocket-patched');

/** usocket's native classes, from the file its `bindings` call loaded (so the same module). */
export const nativeWrapClasses = require(
  path.join(path.dirname(require.resolve('usocket/package.json')), 'build', 'Release', 'uwrap.node'),
) as { USocketWrap: NativeWrapClass; UServerWrap: NativeWrapClass };

const closingWraps = new Set<NativeWrap>();

/** How many closed wraps are held until libuv has finished closing them (tests). */
export function wrapsAwaitingClose(): number {
  return closingWraps.size;
}

function holdUntilClosed(wrap: NativeWrap): void {
  closingWraps.add(wrap);
  setImmediate(() => setImmediate(() => closingWraps.delete(wrap)));
}

function patch(
  wrapClass: NativeWrapClass,
  ownerClass: { prototype: unknown },
  start: 'connect' | 'listen',
  settleEvents: readonly string[],
): void {
  const wrapProto = wrapClass.prototype;
  const owner = ownerClass.prototype as WrapOwner;
  if (owner[PATCHED]) return;
  owner[PATCHED] = true;

  const nativeClose = wrapProto.close;
  const nativeStart = wrapProto[start];
  wrapProto.close = function close(this: NativeWrap): void {
    if (this[PENDING]) {
      this[CLOSE_WHEN_SETTLED] = true;
      return;
    }
    nativeClose.call(this);
    holdUntilClosed(this);
  };
  wrapProto[start] = function startPending(this: NativeWrap, ...args: unknown[]): unknown {
    this[PENDING] = true;
    return nativeStart.apply(this, args);
  };

  // The owner's start method creates the wrap; remember it, since the owner forgets it on close.
  const ownerStart = owner[start]!;
  owner[start] = function rememberWrap(this: WrapOwner, ...args: unknown[]): unknown {
    const r = ownerStart.apply(this, args);
    const wrap = this._wrap;
    if (wrap?.[PENDING]) this[STARTING] = wrap;
    return r;
  };

  const ownerEvent = owner._wrapEvent;
  owner._wrapEvent = function wrapEvent(this: WrapOwner, event: string, a0?: unknown, a1?: unknown): void {
    const wrap = this[STARTING];
    if (wrap && settleEvents.includes(event)) {
      this[STARTING] = undefined;
      wrap[PENDING] = false;
      if (wrap[CLOSE_WHEN_SETTLED]) {
        wrap.close(); // closes the fd a late connect/listen produced; tells nobody
        return;
      }
    }
    ownerEvent.call(this, event, a0, a1);
  };
}

patch(nativeWrapClasses.USocketWrap, usocket.USocket, 'connect', ['connect', 'error']);
patch(nativeWrapClasses.UServerWrap, usocket.UServer, 'listen', ['listening', 'error']);

type WriteCallback = (err?: Error | null) => void;
interface WriteChunk {
  data?: Buffer;
  fds?: number[];
  callback?: (chunk: unknown) => void;
}
interface WritableOwner {
  _wrap?: { write(data?: Buffer, fds?: number[]): number | Error; drain?: unknown } | null;
  _write(chunk: unknown, encoding: unknown, callback: WriteCallback): void;
  [FDS_PATCHED]?: true;
}
const FDS_PATCHED = Symbol.for('qemu-dbus-bridge.usocket-fds-patched');

function patchWriteWithFds(): void {
  const proto = usocket.USocket.prototype as unknown as WritableOwner;
  if (proto[FDS_PATCHED]) return;
  proto[FDS_PATCHED] = true;
  const original = proto._write;
  proto._write = function write(this: WritableOwner, chunk: unknown, encoding: unknown, callback: WriteCallback): void {
    const c = chunk as WriteChunk;
    const wrap = this._wrap;
    // Only a data+fds write can lose its fds; everything else takes the library's path.
    if (!wrap || Buffer.isBuffer(chunk) || Array.isArray(chunk) || !c.data || !c.fds?.length) return original.call(this, chunk, encoding, callback);
    const r = wrap.write(c.data, c.fds);
    if (r instanceof Error) return callback(r);
    if (r === c.data.length) {
      c.callback?.(chunk);
      return callback();
    }
    const rest: WriteChunk = r === 0 ? { data: c.data, fds: c.fds, callback: c.callback } : { data: c.data.subarray(r), callback: c.callback };
    wrap.drain = proto._write.bind(this, rest, encoding, callback);
  };
}

patchWriteWithFds();

interface DestroyableOwner {
  _wrap?: unknown;
  destroy(err?: Error): unknown;
  emit(event: string | symbol, ...args: unknown[]): boolean;
  [CLOSE_EMITTED]?: true;
  [DESTROY_PATCHED]?: true;
}
const CLOSE_EMITTED = Symbol('close emitted');
const DESTROY_PATCHED = Symbol.for('qemu-dbus-bridge.usocket-destroy-patched');

function patchDestroyEmitsClose(): void {
  const proto = usocket.USocket.prototype as unknown as DestroyableOwner;
  if (proto[DESTROY_PATCHED]) return;
  proto[DESTROY_PATCHED] = true;
  const nativeDestroy = proto.destroy;
  const nativeEmit = proto.emit;
  proto.emit = function emit(this: DestroyableOwner, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close') {
      if (this[CLOSE_EMITTED]) return false;
      this[CLOSE_EMITTED] = true;
    }
    return nativeEmit.call(this, event, ...args);
  };
  proto.destroy = function destroy(this: DestroyableOwner, err?: Error): DestroyableOwner {
    const hadWrap = Boolean(this._wrap);
    nativeDestroy.call(this, err);
    if (hadWrap) process.nextTick(() => this.emit('close', err));
    return this;
  };
}

patchDestroyEmitsClose();
