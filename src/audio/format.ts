// PCM formats and the one set of PCM helpers for both directions.
//
// What QEMU announces in AudioOutListener.Init / AudioInListener.Init -> the format the native
// stream is opened in, plus the conversion (if any) each block needs on the way.
//
// Both servers take U8, S16, S32 and F32 in either byte order natively (the graph/server
// converts). PipeWire 0.3.65 also takes S8 but never negotiates U16/U32 (the stream stays
// "paused" forever: seen in the format-matrix test); PulseAudio has no S8, U16 or U32. Those are
// converted here by flipping the sign bit into the signed/unsigned sibling of the same width,
// which is exact and costs one XOR per sample.
//
// The guest's volume and mute (SetVolume) are applied to the PCM on our side, for BOTH
// directions (the speaker's Writes natively, in native/speaker_core.h with native/pcm_ops.h,
// before a block enters the playback ring; InVoice here after a block leaves the capture ring),
// never by the sound server. Why:
//  - the guest's mixer setting is part of the guest's signal, like QEMU's own mixer (vol/255 on
//    the samples); the server-side stream volume stays the host user's own control in
//    pavucontrol/wpctl instead of being overwritten by every SetVolume of the guest;
//  - one behaviour for every format and both servers (PulseAudio's cubic volume curve and
//    PipeWire's channelVolumes applied at different points would otherwise be two behaviours),
//    testable bit-exactly without a server;
//  - the cost is one multiply per sample on blocks we already hold (a 1024-frame stereo S16
//    block: 2048 multiplies per ~21 ms), nothing on the real-time threads.
import { CodedError } from '../errors';
import { native } from '../native';
import type { ChannelPosition, NativeSampleFormat } from '../native-api/audio';
import type { PcmFormat } from '../qemu/handlers';
import type { SoundServerKind } from '../stream-identity';

export type AudioBackendKind = SoundServerKind;
export type { NativeSampleFormat };

export class AudioFormatError extends CodedError<'EAUDIOFORMAT'> {
  constructor(problem: string, fix = '') {
    super('EAUDIOFORMAT', problem, fix);
    this.name = 'AudioFormatError';
  }
}

/**
 * Channel positions by channel count. QEMU's only device with more than 2 channels is usb-audio
 * (multi=on: 5.1 and 7.1), whose USB channel-config bit order is the WAVE order
 * FL FR FC LFE RL RR SL SR; Windows and Linux guests interleave in that order too, so we use it.
 */
export const CHANNEL_LAYOUTS: Readonly<Record<number, readonly ChannelPosition[]>> = {
  1: ['MONO'],
  2: ['FL', 'FR'],
  3: ['FL', 'FR', 'FC'],
  4: ['FL', 'FR', 'RL', 'RR'],
  5: ['FL', 'FR', 'FC', 'RL', 'RR'],
  6: ['FL', 'FR', 'FC', 'LFE', 'RL', 'RR'],
  7: ['FL', 'FR', 'FC', 'LFE', 'RC', 'SL', 'SR'],
  8: ['FL', 'FR', 'FC', 'LFE', 'RL', 'RR', 'SL', 'SR'],
};

/** How the bytes of one sample format are laid out: what the helpers below need. */
export interface SampleLayout {
  bytesPerSample: 1 | 2 | 4;
  bigEndian: boolean;
  isFloat: boolean;
  isSigned: boolean;
  channels: number;
  bytesPerFrame: number;
}

/** Layout of a native format name with `channels` channels. */
export function sampleLayout(format: NativeSampleFormat, channels: number): SampleLayout {
  const bytesPerSample = (format.includes('16') ? 2 : format.includes('32') ? 4 : 1) as 1 | 2 | 4;
  return {
    bytesPerSample,
    bigEndian: format.endsWith('BE'),
    isFloat: format.startsWith('F'),
    isSigned: !format.startsWith('U'),
    channels,
    bytesPerFrame: bytesPerSample * channels,
  };
}

function nativeName(f: { bits: number; isFloat: boolean; isSigned: boolean; bigEndian: boolean }): NativeSampleFormat {
  const endian = f.bits === 8 ? '' : f.bigEndian ? 'BE' : 'LE';
  return `${f.isFloat ? 'F' : f.isSigned ? 'S' : 'U'}${f.bits}${endian}` as NativeSampleFormat;
}

/** The signed/unsigned twin of an integer format (S16LE <-> U16LE): the sign-bit flip target. */
function twin(format: NativeSampleFormat): NativeSampleFormat {
  return (format[0] === 'S' ? 'U' : 'S') + format.slice(1) as NativeSampleFormat;
}

/** The playback side: QEMU's output format as the native stream takes it. */
export interface StreamFormat {
  nativeFormat: NativeSampleFormat;
  /** Layout of `nativeFormat`: what the bytes are once `convert` has run (volume applies to them). */
  layout: SampleLayout;
  rate: number;
  channels: number;
  positions: ChannelPosition[];
  bytesPerFrame: number;
  /** Flip the sign bit of every sample before the native stream gets the block. */
  convert: boolean;
  /** Human-readable, for logs: "S16LE 44100 Hz 2 ch". */
  describe: string;
}

function fail(what: string): never {
  throw new AudioFormatError(`QEMU announced an unsupported audio format: ${what}`, `set the audiodev's out.format/out.channels/out.frequency to something common (e.g. s16, 2, 48000)`);
}

/** Validates QEMU's Init arguments and maps them for `backend`. Throws AudioFormatError. */
export function streamFormatFor(f: PcmFormat, backend: AudioBackendKind): StreamFormat {
  if (f.bits !== 8 && f.bits !== 16 && f.bits !== 32) fail(`${f.bits} bits per sample`);
  if (f.isFloat && (f.bits !== 32 || !f.isSigned)) fail(`${f.bits}-bit float`);
  if (!Number.isInteger(f.nchannels) || f.nchannels < 1 || f.nchannels > 8) fail(`${f.nchannels} channels (1..8 supported)`);
  if (!Number.isInteger(f.freq) || f.freq < 1000 || f.freq > 384000) fail(`${f.freq} Hz`);
  const bytesPerFrame = (f.bits / 8) * f.nchannels;
  if (f.bytesPerFrame !== bytesPerFrame) fail(`bytes_per_frame ${f.bytesPerFrame} but ${f.bits} bits x ${f.nchannels} channels = ${bytesPerFrame}`);

  const guest = nativeName(f);
  // PulseAudio has no S8; neither server negotiates U16/U32: play the sign-flipped twin.
  const convert = !f.isFloat && ((backend === 'pulse' && f.bits === 8 && f.isSigned) || (f.bits > 8 && !f.isSigned));
  const nativeFormat = convert ? twin(guest) : guest;
  const positions = [...(CHANNEL_LAYOUTS[f.nchannels] ?? [])];
  return {
    nativeFormat,
    layout: sampleLayout(nativeFormat, f.nchannels),
    rate: f.freq,
    channels: f.nchannels,
    positions,
    bytesPerFrame,
    convert,
    describe: `${guest} ${f.freq} Hz ${f.nchannels} ch${convert ? ` (as ${nativeFormat})` : ''}`,
  };
}

/** The capture side: QEMU's input format and what the capture stream is opened in. */
export interface CaptureFormat extends SampleLayout {
  /** Guest sample format name. */
  guest: NativeSampleFormat;
  /**
   * Format to open the capture stream in. Equal to `guest`, except S8/U16/U32, which PulseAudio
   * cannot record: we capture the sign-flipped twin (U8/S16/S32) and flip the top bit back.
   */
  capture: NativeSampleFormat;
  /** Flip the most significant bit of each sample after reading (twin formats only). */
  flipSign: boolean;
}

/** Maps QEMU's audio-in Init format. Throws AudioFormatError for what QEMU never sends (e.g. 8-bit float). */
export function captureFormatFor(f: PcmFormat): CaptureFormat {
  if (f.isFloat && f.bits !== 32) {
    throw new AudioFormatError(`QEMU announced an unsupported microphone format: ${f.bits}-bit float samples (only 32-bit float)`, `set the audiodev's in.format to s16 or f32`);
  }
  if (f.bits !== 8 && f.bits !== 16 && f.bits !== 32) {
    throw new AudioFormatError(`QEMU announced an unsupported microphone format: ${f.bits} bits per sample`, `set the audiodev's in.format to s16`);
  }
  const bytesPerSample = (f.bits / 8) as 1 | 2 | 4;
  if (f.nchannels < 1 || f.bytesPerFrame !== bytesPerSample * f.nchannels) {
    throw new AudioFormatError(`QEMU announced an inconsistent microphone format: ${f.nchannels} channels, ${f.bytesPerFrame} bytes per frame`, `set the audiodev's in.channels to 1 or 2`);
  }
  const guest = nativeName(f);
  const capture = f.isFloat ? guest : f.bits === 8 ? 'U8' : (`S${f.bits}${f.bigEndian ? 'BE' : 'LE'}` as NativeSampleFormat);
  return { ...sampleLayout(guest, f.nchannels), guest, capture, flipSign: guest !== capture };
}

// The transforms themselves are native/pcm_ops.h, the one implementation (the speaker's Writes run
// it in native/speaker_core.h): the functions below call it through the core addon (native/pcm.cc).

/**
 * Fills buf[start, end) with the format's silence: 0 for signed and float, the mid value for
 * unsigned (0x80 for U8, 0x8000 for U16...). `start` must be sample-aligned relative to the
 * stream; a partial trailing sample is filled consistently by byte position.
 */
export function fillSilence(l: SampleLayout, buf: Uint8Array, start: number, end: number): void {
  if (end > start) native.pcmFillSilence(buf, start, end, l);
}

/** Whether buf[start, end) is exactly the format's silence (what fillSilence writes): digital silence, no dither. */
export function isSilence(l: SampleLayout, buf: Uint8Array, start: number, end: number): boolean {
  return native.pcmIsSilence(buf, start, end, l);
}

/** Flips the top bit of every sample in buf[start, end): S8<->U8, S16<->U16, S32<->U32. */
export function flipSignBits(l: SampleLayout, buf: Uint8Array, start: number, end: number): void {
  native.pcmFlipSign(buf, start, end, l);
}

/** QEMU volume byte (0..255) to linear gain: QEMU's own mixer scales by vol/255. */
export function gainOf(volumeByte: number): number {
  return Math.max(0, Math.min(255, volumeByte)) / 255;
}

/**
 * The guest's SetVolume as per-channel gains: channel c takes volume[c], channels beyond what
 * the guest sent take its last value, no values at all = full scale.
 */
export function gainsOf(volume: Uint8Array, channels: number): number[] {
  const g: number[] = [];
  for (let c = 0; c < channels; c++) g.push(gainOf(volume[Math.min(c, volume.length - 1)] ?? 255));
  return g;
}

/**
 * Applies the guest's volume to buf[start, end) (whole frames of layout `l`): silence when
 * muted, else each sample scaled by gains[channel] (see the header for why here). Unsigned
 * samples are scaled around their mid value, so silence stays silence. Integer results are
 * rounded and cannot overflow (gains are <= 1). Unity gains cost nothing.
 */
export function applyVolume(l: SampleLayout, buf: Uint8Array, start: number, end: number, mute: boolean, gains: readonly number[]): void {
  if (mute) fillSilence(l, buf, start, end);
  else if (!gains.every((g) => g === 1)) applyGains(l, buf, start, end, gains);
}

/** Scales the samples of buf[start, end) by gains[channel] (a channel without one: full scale); see applyVolume. */
export function applyGains(l: SampleLayout, buf: Uint8Array, start: number, end: number, gains: readonly number[]): void {
  native.pcmApplyGains(buf, start, end, l, gains);
}
