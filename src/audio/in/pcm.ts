// PCM helpers for the microphone path: which format to open the capture stream in for a given
// guest format, the silence value of each format, and the guest's volume/mute applied to the
// bytes the guest receives. Pure functions over byte buffers: no allocation per call.
import type { CaptureSampleFormat } from '../../native-api/capture';
import type { PcmFormat } from '../../qemu/handlers';

/** How guest bytes relate to what the capture stream delivers. */
export interface GuestSampleLayout {
  /** Guest sample format name. */
  guest: CaptureSampleFormat;
  /**
   * Format to open the capture stream in. Equal to `guest`, except S8/U16/U32, which PulseAudio
   * cannot record: we capture the sign-flipped twin (U8/S16/S32) and flip the top bit back.
   */
  capture: CaptureSampleFormat;
  /** Flip the most significant bit of each sample after reading (twin formats only). */
  flipSign: boolean;
  bytesPerSample: 1 | 2 | 4;
  bigEndian: boolean;
  isFloat: boolean;
  isSigned: boolean;
  channels: number;
  bytesPerFrame: number;
}

function codedError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

/** Maps QEMU's Init format to names. Throws EFORMAT for what QEMU never sends (e.g. 8-bit float). */
export function layoutOf(f: PcmFormat): GuestSampleLayout {
  const be = f.bigEndian;
  const end = be ? 'BE' : 'LE';
  let guest: CaptureSampleFormat;
  let capture: CaptureSampleFormat;
  if (f.isFloat) {
    if (f.bits !== 32) throw codedError('EFORMAT', `microphone: ${f.bits}-bit float samples are not supported (only 32-bit float)`);
    guest = capture = `F32${end}`;
  } else if (f.bits === 8) {
    guest = f.isSigned ? 'S8' : 'U8';
    capture = 'U8';
  } else {
    const w = f.bits === 16 ? '16' : '32';
    guest = `${f.isSigned ? 'S' : 'U'}${w}${end}` as CaptureSampleFormat;
    capture = `S${w}${end}` as CaptureSampleFormat;
  }
  const bytesPerSample = (f.bits / 8) as 1 | 2 | 4;
  if (f.nchannels < 1 || f.bytesPerFrame !== bytesPerSample * f.nchannels) {
    throw codedError('EFORMAT', `microphone: inconsistent format (${f.nchannels} channels, ${f.bytesPerFrame} bytes per frame)`);
  }
  return {
    guest,
    capture,
    flipSign: guest !== capture,
    bytesPerSample,
    bigEndian: be,
    isFloat: f.isFloat,
    isSigned: f.isSigned,
    channels: f.nchannels,
    bytesPerFrame: f.bytesPerFrame,
  };
}

/** Index (within a sample) of the byte that holds the sign / most significant bit. */
function msbIndex(l: GuestSampleLayout): number {
  return l.bigEndian ? 0 : l.bytesPerSample - 1;
}

/**
 * Fills buf[start, end) with the format's silence: 0 for signed and float, the mid value for
 * unsigned (0x80 for U8, 0x8000 for U16...). `start` must be frame- or at least sample-aligned
 * relative to the stream; a partial trailing sample is filled consistently by byte position.
 */
export function fillSilence(l: GuestSampleLayout, buf: Uint8Array, start: number, end: number): void {
  if (end <= start) return;
  buf.fill(0, start, end);
  if (l.isFloat || l.isSigned) return;
  const msb = msbIndex(l);
  const bps = l.bytesPerSample;
  // Samples are aligned to `start` here: callers pad after whole frames.
  for (let i = start + msb; i < end; i += bps) buf[i] = 0x80;
}

/** Flips the top bit of every sample in buf[start, end): S8<->U8, S16<->U16, S32<->U32. */
export function flipSignBits(l: GuestSampleLayout, buf: Uint8Array, start: number, end: number): void {
  const bps = l.bytesPerSample;
  for (let i = start + msbIndex(l); i < end; i += bps) buf[i] ^= 0x80;
}

/** QEMU volume byte (0..255) to linear gain: QEMU's own mixer scales by vol/255. */
export function gainOf(volumeByte: number): number {
  return Math.max(0, Math.min(255, volumeByte)) / 255;
}

/**
 * Scales the samples of buf[start, end) (whole frames of the GUEST format) by gains[channel].
 * Unsigned samples are scaled around their mid value, so silence stays silence. Integer results
 * are rounded and cannot overflow (gains are <= 1).
 */
export function applyGains(l: GuestSampleLayout, buf: Uint8Array, start: number, end: number, gains: readonly number[]): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const le = !l.bigEndian;
  const ch = l.channels;
  const bps = l.bytesPerSample;
  let c = 0;
  if (l.isFloat) {
    for (let i = start; i + 4 <= end; i += 4) {
      view.setFloat32(i, view.getFloat32(i, le) * (gains[c] ?? 1), le);
      if (++c === ch) c = 0;
    }
    return;
  }
  const signed = l.isSigned;
  if (bps === 1) {
    for (let i = start; i < end; i++) {
      const g = gains[c] ?? 1;
      buf[i] = signed ? Math.round(((buf[i] << 24) >> 24) * g) & 0xff : Math.round((buf[i] - 128) * g) + 128;
      if (++c === ch) c = 0;
    }
  } else if (bps === 2) {
    for (let i = start; i + 2 <= end; i += 2) {
      const g = gains[c] ?? 1;
      if (signed) view.setInt16(i, Math.round(view.getInt16(i, le) * g), le);
      else view.setUint16(i, Math.round((view.getUint16(i, le) - 0x8000) * g) + 0x8000, le);
      if (++c === ch) c = 0;
    }
  } else {
    for (let i = start; i + 4 <= end; i += 4) {
      const g = gains[c] ?? 1;
      if (signed) view.setInt32(i, Math.round(view.getInt32(i, le) * g), le);
      else view.setUint32(i, Math.round((view.getUint32(i, le) - 0x80000000) * g) + 0x80000000, le);
      if (++c === ch) c = 0;
    }
  }
}
