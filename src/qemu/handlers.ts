// Handler interfaces: what a QEMU listener delivers, with no D-Bus in sight.
// src/qemu/ serves these over the peer-to-peer connections; src/audio/ and src/camera/
// implement them. A handler never blocks: QEMU waits on some of these calls (see each one).

/** Audio format of one voice, exactly as QEMU's Init announces it. */
export interface PcmFormat {
  bits: 8 | 16 | 32;
  isSigned: boolean;
  isFloat: boolean;
  /** frames per second */
  freq: number;
  nchannels: number;
  bytesPerFrame: number;
  bytesPerSecond: number;
  /** big-endian samples */
  bigEndian: boolean;
}

/** org.qemu.Display1.AudioOutListener. Voice ids are host pointers in QEMU: bigint. */
export interface AudioOutHandler {
  /**
   * Optional: a native reader to take over the listener connection's reads once the handshake is
   * done (the speaker's: native/speaker_intake.h takes the Writes without waking Node). Undefined
   * or a throw: the connection is read in JS as before.
   */
  openIntake?(fd: number, pending: Uint8Array, onEvent: ListenerIntakeListener): ListenerIntake;
  init(id: bigint, format: PcmFormat): void;
  fini(id: bigint): void;
  setEnabled(id: bigint, enabled: boolean): void;
  /** volume: one byte per channel, 0..255. QEMU does NOT apply it to the PCM: we must. */
  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void;
  /** data is a view into a socket buffer: copy what you keep beyond this call. */
  write(id: bigint, data: Uint8Array): void;
}

/**
 * What a native listener reader tells JS (native/speaker_intake.h IntakeEventKind): 0 = one whole
 * message it did not take itself (bytes; it reads on after resume()), 1 = bytes from a header that
 * does not frame on (it has ended), 2 = the peer closed (it has ended), 3 = a read failed (errno
 * name; it has ended). Called on the JS thread.
 */
export type ListenerIntakeListener = (kind: 0 | 1 | 2 | 3, data: Buffer | string) => void;

/** A native reader of one listener connection. */
export interface ListenerIntake {
  /** The message last handed over was handled: reading goes on. */
  resume(): void;
  /** Stops and joins the reader (idempotent); nothing is processed or delivered after. */
  stop(): void;
  /**
   * The calls it took itself (never handed over): how many, their byte-array bytes (as the
   * dispatcher counts a call's bytes), and ms since the last one (Infinity: none yet). The
   * connection's counters (PeerListenerStats) add them to the dispatcher's.
   */
  stats(): { taken: number; takenBytes: number; sinceTakenMs: number };
}

/** org.qemu.Display1.AudioInListener. */
export interface AudioInHandler {
  init(id: bigint, format: PcmFormat): void;
  fini(id: bigint): void;
  setEnabled(id: bigint, enabled: boolean): void;
  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void;
  /**
   * QEMU's main loop is BLOCKED until this returns: answer at once with exactly `size` bytes
   * (pad with silence), never wait for audio to arrive.
   */
  read(id: bigint, size: number): Uint8Array;
}

/** Cursor image: width*height*4 bytes, PIXMAN_a8r8g8b8 (B,G,R,A in memory). */
export interface CursorImage {
  width: number;
  height: number;
  hotX: number;
  hotY: number;
  data: Uint8Array;
}

/** org.qemu.Display1.Listener (+ Listener.Unix.Map). All calls are fire-and-forget from QEMU. */
export interface ConsoleListenerHandler {
  /**
   * Full frame (not only on resize). data is a view of this message's own bytes, which nothing
   * writes or reuses after (the D-Bus reader allocates every message afresh): a handler may keep
   * it instead of copying (the camera does; it keeps that message's memory alive).
   */
  scanout(width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array): void;
  /** Tightly packed sub-rectangle; may fall outside the last Scanout (7.2 text mode). */
  update(x: number, y: number, width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array): void;
  /** 9.2+ shared-memory scanout: a memfd this handler now owns (must close it). */
  scanoutMap?(fd: number, offset: number, width: number, height: number, stride: number, pixmanFormat: number): void;
  /** 9.2+ damage on the mapped scanout. */
  updateMap?(x: number, y: number, width: number, height: number): void;
  disable(): void;
  cursorDefine(cursor: CursorImage): void;
  mouseSet(x: number, y: number, on: boolean): void;
  /** ScanoutDMABUF arrived (gl=on): the D-Bus layer answers Unsupported; this only lets the handler say so once. */
  scanoutDmabuf?(): void;
  /** Console Width/Height properties: QEMU 7.2 sends no Scanout for VGA text mode. */
  consoleSize?(width: number, height: number): void;
}
