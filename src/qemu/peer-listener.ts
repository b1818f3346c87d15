// THE helper that serves one listener object on a peer-to-peer D-Bus connection QEMU opens
// after Console.RegisterListener(h) / Audio.Register{Out,In}Listener(h):
//
//   1. socketpair() from the addon: [mine, theirs];
//   2. a D-Bus connection on `mine` (peer/handshake.ts: auth client, EXTERNAL, no Hello; peer/wire.ts
//      reads what QEMU sends), with
//      our objects ready BEFORE Register* is called, because QEMU calls Properties.GetAll on
//      them synchronously (its main loop blocks until we answer);
//   3. Register*(theirs) on the bus, then close our copy of `theirs` (otherwise we never see
//      EOF when QEMU dies: the other end would still be open in our own process);
//   4. wait for the handshake; if anything fails, close `mine` at once: QEMU sits in
//      g_dbus_connection_new_sync() on its end until the socket closes.
//
// The pieces: peer/handshake.ts + peer/wire.ts (the connection), peer/dispatch.ts (checking and running each
// call, the standard interfaces), peer/scheduler.ts (deferred calls, the slow-consumer bounds),
// peer/introspect.ts, peer/served.ts (what a served interface is; tables built from the
// generated Display1 signatures).
import type { Message } from 'dbus-native';
import { EventEmitter } from 'events';
import { socketpair } from '../native';
import { QemuDbusError, errorText } from './errors';
import { Dispatcher } from './peer/dispatch';
import { openPeerConnection, waitHandshake, type PeerConnection } from './peer/handshake';
import type { ListenerIntakeFactory } from './peer/wire';
import { newStats, withIntake, type PeerListenerStats } from './peer/stats';
import type { ExportedInterface } from './peer/served';
import { closeQuietly, destroyStream } from './transport';

export { MethodError, servedInterface, type CallContext, type ExportedInterface, type ExportedMethod, type ServedMethod, type ServedMethods } from './peer/served';
export { splitSignature } from './peer/introspect';
export type { PeerListenerStats } from './peer/stats';

export interface PeerListenerOptions {
  /** object path QEMU calls (fixed by QEMU: /org/qemu/Display1/Listener, ...) */
  path: string;
  interfaces: ExportedInterface[];
  /** negotiate fd passing on the p2p connection (usocket); else a plain net.Socket */
  fds: boolean;
  /**
   * A native reader to take over the connection's reads after the handshake (the speaker's
   * intake: handlers.ts AudioOutHandler.openIntake); only on a connection without fd passing.
   */
  intake?: ListenerIntakeFactory;
  /** handshake deadline after Register* returned */
  handshakeTimeoutMs?: number;
  /** time slice for running deferred calls before yielding to other sockets; default 4 ms */
  sliceMs?: number;
  /**
   * Above this many queued bytes deferred calls run inline again, which stops us reading the
   * socket while they run: the backlog then waits in QEMU, not in our heap. Default 64 MiB.
   */
  maxQueuedBytes?: number;
}

interface PeerListenerEvents {
  /** the connection is gone (peer EOF, error, or close()); fired once */
  closed: [cause: Error | undefined];
  /** a handler threw, or a malformed call was rejected; the connection stays up */
  warning: [err: Error];
}

/**
 * One served listener object on one p2p connection. Created by serveListener(); everything
 * stays alive until the peer closes the socket or close() is called.
 */
export class PeerListener extends EventEmitter<PeerListenerEvents> {
  /** What the dispatcher counts: the calls that reach JS. */
  private readonly counted: PeerListenerStats = newStats();
  readonly closedPromise: Promise<Error | undefined>;
  private readonly peer: PeerConnection;
  private readonly dispatcher: Dispatcher;
  private closedFlag = false;

  /** Did the peer agree to fd passing in the handshake? */
  get unixFdsAgreed(): boolean {
    return this.peer.unixFdsAgreed;
  }
  get isClosed(): boolean {
    return this.closedFlag;
  }
  /** Every call QEMU made on this connection, the intake's included (a snapshot when it has one). */
  get stats(): PeerListenerStats {
    return withIntake(this.counted, this.peer.conn.intakeCounts());
  }
  /** Deferred calls not yet run (tests, diagnostics). */
  get queued(): number {
    return this.dispatcher.queued;
  }

  /** @internal use serveListener() */
  constructor(
    ourFd: number,
    readonly options: PeerListenerOptions,
  ) {
    super();
    this.closedPromise = new Promise((resolve) => this.once('closed', resolve));
    this.peer = openPeerConnection(ourFd, options.fds, options.fds ? undefined : options.intake);
    const { conn } = this.peer;
    this.dispatcher = new Dispatcher(
      options.path,
      options.interfaces,
      this.counted,
      {
        send: (msg) => this.send(msg),
        warn: (err) => this.emit('warning', err),
        isOpen: () => !this.closedFlag,
      },
      { sliceMs: options.sliceMs ?? 4, maxQueuedBytes: options.maxQueuedBytes ?? 64 * 1024 * 1024 },
    );
    conn.on('message', (msg) => this.dispatcher.dispatch(msg));
    conn.on('error', (err) => this.finish(err));
    // A clean EOF: what QEMU sent before closing is still delivered, then the handler is told.
    conn.on('end', () => {
      if (!this.closedFlag) this.dispatcher.flush();
      this.finish(undefined);
    });
    conn.on('close', (cause) => this.finish(cause));
    // Our dispatch never throws to the parser, but be explicit: handler bugs are warnings.
    conn.on('handlerError', (err) => this.emit('warning', err));
  }

  /** Resolves when the SASL handshake is done; rejects if the connection dies first or times out. */
  waitConnected(timeoutMs: number): Promise<void> {
    return waitHandshake(this.peer, { isClosed: this.closedFlag, promise: this.closedPromise }, timeoutMs);
  }

  /** Close our end: QEMU sees EOF and drops the listener (display: lifts held keys). */
  close(): void {
    this.finish(undefined);
  }

  private finish(cause: Error | undefined): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.dispatcher.clear();
    this.peer.conn.stop();
    destroyStream(this.peer.stream);
    this.emit('closed', cause);
  }

  private send(msg: Message): void {
    if (this.closedFlag) return;
    try {
      this.peer.conn.message(msg);
    } catch (e) {
      this.emit('warning', e as Error);
    }
  }
}

/**
 * Serve a listener and register it with QEMU. `register(fd)` makes the bus call
 * (RegisterListener/Register*Listener) passing `fd` as `h`; it must reject on a D-Bus error.
 */
export async function serveListener(options: PeerListenerOptions, register: (fd: number) => Promise<void>): Promise<PeerListener> {
  const [mine, theirs] = socketpair();
  let listener: PeerListener;
  try {
    listener = new PeerListener(mine, options);
  } catch (e) {
    closeQuietly(mine);
    closeQuietly(theirs);
    throw e;
  }
  // Until the handshake is over, connection errors surface through waitConnected().
  const noop = (): void => undefined;
  listener.on('warning', noop);
  try {
    await register(theirs);
  } catch (e) {
    listener.close();
    throw e;
  } finally {
    closeQuietly(theirs);
  }
  try {
    await listener.waitConnected(options.handshakeTimeoutMs ?? 10_000);
  } catch (e) {
    listener.close();
    throw new QemuDbusError(
      'ELISTENER',
      `QEMU accepted the listener for ${options.path} but the peer-to-peer connection failed: ${errorText(e)}`,
      'check QEMU stderr ("Failed to setup peer connection"); retry, and report if it persists',
      { cause: e },
    );
  } finally {
    listener.removeListener('warning', noop);
  }
  return listener;
}
