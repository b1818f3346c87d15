// Types of the addon's always-present core functions (native/socketpair.cc, native/notify.cc,
// native/pcm.cc).

export interface CoreNativeApi {
  /** AF_UNIX SOCK_STREAM socketpair with CLOEXEC: [ours, theirs]. Throws Error with errno `code`. */
  socketpair(): [number, number];
  /** One sd_notify(3) datagram to $NOTIFY_SOCKET; false (no-op) when the variable is unset. */
  sdNotify(text: string): boolean;
  /** The PCM transforms of native/pcm_ops.h on buf[start, end) (native/pcm.cc; src/audio/format.ts wraps them). */
  pcmFlipSign(buf: Uint8Array, start: number, end: number, layout: PcmLayoutSpec): void;
  pcmFillSilence(buf: Uint8Array, start: number, end: number, layout: PcmLayoutSpec): void;
  pcmIsSilence(buf: Uint8Array, start: number, end: number, layout: PcmLayoutSpec): boolean;
  /** Each sample by gains[channel] (0..1; a channel without one: 1). */
  pcmApplyGains(buf: Uint8Array, start: number, end: number, layout: PcmLayoutSpec, gains: readonly number[]): void;
}

/** How one sample format's bytes are laid out (src/audio/format.ts SampleLayout). */
export interface PcmLayoutSpec {
  bytesPerSample: 1 | 2 | 4;
  bigEndian: boolean;
  isFloat: boolean;
  isSigned: boolean;
  channels: number;
}
