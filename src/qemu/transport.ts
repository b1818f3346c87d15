// Byte streams under dbus-native: usocket when file descriptors must travel (the bus connection
// carries the `h` of Register*Listener; a listener that implements Listener.Unix.Map receives a
// memfd), a plain net.Socket otherwise (cheaper per byte: no fds on the display/audio paths).
import * as fs from 'fs';
import * as net from 'net';
import type { Duplex } from 'stream';
import { USocket } from './usocket';
import { native } from '../native';

/**
 * usocket makes its sockets and receives fds without CLOEXEC: every child process spawned
 * later would inherit our bus connection or QEMU's frame memfds. Best effort (an addon built
 * before setCloexec existed simply leaves the flag alone).
 */
export function markCloexec(fd: number): void {
  if (typeof native.setCloexec !== 'function') return;
  try {
    native.setCloexec(fd);
  } catch {
    /* EBADF: gone already */
  }
}

/** dbus-native's fd-capable transport contract: `writeWithFds` + 'fds' events (+ `closeFds`). */
export interface FdTransport extends Duplex {
  writeWithFds(buf: Buffer, fds: number[]): boolean;
  closeFds(fds: number[]): void;
}

function adapt(us: USocket): FdTransport {
  const t = us as unknown as FdTransport;
  if (typeof us.fd === 'number') markCloexec(us.fd);
  // Registered before dbus-native's own 'fds' listener, so this runs first.
  us.on('fds', (fds: number[]) => {
    for (const fd of fds) markCloexec(fd);
  });
  // destroy() emitting one 'close' is patched into every USocket (src/qemu/usocket.ts, bug 4).
  // usocket's write() returns undefined (no backpressure signal): report "written".
  t.writeWithFds = (buf: Buffer, fds: number[]): boolean => {
    us.write({ data: buf, fds });
    return true;
  };
  t.closeFds = (fds: number[]): void => {
    for (const fd of fds) closeQuietly(fd);
  };
  return t;
}

/** Wrap a connected socket fd we own. The stream owns the fd from now on. */
export function streamOnFd(fd: number, withFds: boolean): Duplex {
  if (withFds) return adapt(new USocket({ fd }));
  return new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: false });
}

/** What an errno of connect(2) on a unix socket means to a user (usocket's own text names its source file). */
const CONNECT_ERRNO: Record<string, string> = {
  ENOENT: 'no such socket',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ECONNREFUSED: 'nothing is listening on it',
  ENOTDIR: 'a part of the path is not a directory',
  ENAMETOOLONG: 'the path is too long for a unix socket',
};

/** An errno-coded error with a message fit for users: "<socket>: no such socket (ENOENT)". */
export function connectFailure(socketPath: string, e: unknown): Error & { code: string } {
  const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'EIO';
  const what = CONNECT_ERRNO[code] ?? 'connect failed';
  return Object.assign(new Error(`${socketPath}: ${what} (${code})`), { code });
}

/** Connect to a unix socket path with fd passing. Rejects with an errno-coded error (ENOENT, EACCES...), see connectFailure. */
export function connectUnixWithFds(socketPath: string, timeoutMs = 5000): Promise<FdTransport> {
  return new Promise((resolve, reject) => {
    let us: USocket;
    try {
      us = new USocket({ path: socketPath });
    } catch (e) {
      reject(connectFailure(socketPath, e));
      return;
    }
    const timer = setTimeout(() => {
      cleanup();
      destroyStream(us as unknown as Duplex);
      reject(Object.assign(new Error(`${socketPath}: no answer within ${timeoutMs} ms (ETIMEDOUT)`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const onError = (err: Error): void => {
      cleanup();
      reject(connectFailure(socketPath, err));
    };
    const onConnected = (): void => {
      cleanup();
      resolve(adapt(us));
    };
    function cleanup(): void {
      clearTimeout(timer);
      us.removeListener('error', onError);
      us.removeListener('connected', onConnected);
    }
    us.once('error', onError);
    us.once('connected', onConnected);
  });
}

/**
 * Tear a stream down now. usocket's destroy() closes the fd and (patched) emits 'close' on the
 * next tick, but leaves `destroyed` false, so callers track closing themselves (see PeerConnection).
 */
export function destroyStream(s: Duplex): void {
  try {
    s.destroy();
  } catch {
    /* already gone */
  }
}

export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* EBADF: already closed */
  }
}
