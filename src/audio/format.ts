// PCM format mapping: what QEMU announces in AudioOutListener.Init -> what the native stream
// is opened with, plus the conversion (if any) each Write block needs on the way.
//
// Both servers take U8, S16, S32 and F32 in either byte order natively (the graph/server
// converts). PipeWire 0.3.65 also takes S8 but never negotiates U16/U32 (the stream stays
// "paused" forever: seen in the format-matrix test); PulseAudio has no S8, U16 or U32. Those are
// converted here by flipping the sign bit into the signed/unsigned sibling of the same width,
// which is exact and costs one XOR per sample.
import { CodedError } from '../errors';
import type { ChannelPosition, NativeSampleFormat } from '../native-api/audio';
import type { PcmFormat } from '../qemu/handlers';

export type AudioBackendKind = 'pipewire' | 'pulse';

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

/** In-place conversion of one block (a copy the caller owns). */
export type BlockConverter = (block: Uint8Array) => void;

export interface StreamFormat {
  nativeFormat: NativeSampleFormat;
  rate: number;
  channels: number;
  positions: ChannelPosition[];
  bytesPerFrame: number;
  /** Present when blocks must be converted before they reach the native stream. */
  convert?: BlockConverter;
  /** Human-readable, for logs: "S16LE 44100 Hz 2 ch". */
  describe: string;
}

function fail(what: string): never {
  throw new AudioFormatError(`QEMU announced an unsupported audio format: ${what}. Set the audiodev's out.format/out.channels/out.frequency to something common (e.g. s16, 2, 48000).`);
}

/** Validates QEMU's Init arguments and maps them for `backend`. Throws AudioFormatError. */
export function streamFormatFor(f: PcmFormat, backend: AudioBackendKind): StreamFormat {
  if (f.bits !== 8 && f.bits !== 16 && f.bits !== 32) fail(`${f.bits} bits per sample`);
  if (f.isFloat && (f.bits !== 32 || !f.isSigned)) fail(`${f.bits}-bit float`);
  if (!Number.isInteger(f.nchannels) || f.nchannels < 1 || f.nchannels > 8) fail(`${f.nchannels} channels (1..8 supported)`);
  if (!Number.isInteger(f.freq) || f.freq < 1000 || f.freq > 384000) fail(`${f.freq} Hz`);
  const bytesPerFrame = (f.bits / 8) * f.nchannels;
  if (f.bytesPerFrame !== bytesPerFrame) fail(`bytes_per_frame ${f.bytesPerFrame} but ${f.bits} bits x ${f.nchannels} channels = ${bytesPerFrame}`);

  const endian = f.bits === 8 ? '' : f.bigEndian ? 'BE' : 'LE';
  const kind = f.isFloat ? 'F' : f.isSigned ? 'S' : 'U';
  let nativeFormat = `${kind}${f.bits}${endian}` as NativeSampleFormat;
  let convert: BlockConverter | undefined;
  if (!f.isFloat) {
    if (backend === 'pulse' && f.bits === 8 && f.isSigned) {
      nativeFormat = 'U8';
      convert = flipSign(1, 0);
    } else if (f.bits > 8 && !f.isSigned) {
      nativeFormat = `S${f.bits}${endian}` as NativeSampleFormat;
      // The sign bit lives in the most significant byte: first byte for BE, last for LE.
      convert = flipSign(f.bits / 8, f.bigEndian ? 0 : f.bits / 8 - 1);
    }
  }
  const positions = [...(CHANNEL_LAYOUTS[f.nchannels] ?? [])];
  return {
    nativeFormat,
    rate: f.freq,
    channels: f.nchannels,
    positions,
    bytesPerFrame,
    convert,
    describe: `${kind}${f.bits}${endian} ${f.freq} Hz ${f.nchannels} ch${convert ? ` (as ${nativeFormat})` : ''}`,
  };
}

function flipSign(sampleBytes: number, msbOffset: number): BlockConverter {
  return (block) => {
    for (let i = msbOffset; i < block.length; i += sampleBytes) block[i] ^= 0x80;
  };
}

/** QEMU volume byte (0..255, linear) -> linear amplitude 0..1 for the native stream. */
export function volumeByteToLinear(v: number): number {
  return Math.max(0, Math.min(255, v)) / 255;
}
