// Our end of a listener's peer-to-peer connection. QEMU opens it with g_dbus_connection_new_sync
// as the SASL server once Register* returned; we are the auth CLIENT (EXTERNAL, our uid) and send
// no Hello: this is not a bus, there are no names. The client handshake ('\0' + AUTH EXTERNAL)
// starts at once; the bytes wait in the socket until QEMU reads them. wire.ts does the rest.
import type { Duplex } from 'stream';
import { errorText } from '../errors';
import { streamOnFd } from '../transport';
import { PeerWire, type ListenerIntakeFactory } from './wire';

export interface PeerConnection {
  conn: PeerWire;
  stream: Duplex;
  /** the SASL handshake is over */
  readonly connected: boolean;
  /** Did the peer agree to fd passing in the handshake? */
  readonly unixFdsAgreed: boolean;
}

/** `fds`: negotiate fd passing (usocket); else a plain net.Socket, whose reads `intake` may take over after the handshake. */
export function openPeerConnection(fd: number, fds: boolean, intake?: ListenerIntakeFactory): PeerConnection {
  const stream = streamOnFd(fd, fds);
  const conn = new PeerWire(stream, intake ? { fd, open: intake } : undefined);
  return {
    conn,
    stream,
    get connected() {
      return conn.connected;
    },
    get unixFdsAgreed() {
      return conn.unixFdsAgreed;
    },
  };
}

/**
 * Resolves when the handshake is done; rejects if `closed` settles first (the connection died)
 * or after `timeoutMs`.
 */
export function waitHandshake(peer: PeerConnection, closed: { isClosed: boolean; promise: Promise<Error | undefined> }, timeoutMs: number): Promise<void> {
  if (peer.connected) return Promise.resolve();
  if (closed.isClosed) return Promise.reject(new Error('listener connection closed before the handshake finished'));
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no D-Bus handshake from QEMU within ${timeoutMs} ms`));
    }, timeoutMs);
    const onConnect = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      peer.conn.removeListener('connect', onConnect);
    };
    peer.conn.on('connect', onConnect);
    void closed.promise.then((cause) => {
      if (settled) return;
      cleanup();
      reject(new Error(`listener connection closed during the handshake${cause ? `: ${errorText(cause)}` : ''}`));
    });
  });
}
