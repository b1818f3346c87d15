// org.qemu.Display1.AudioOutListener / AudioInListener served for AudioOutHandler /
// AudioInHandler. QEMU calls Read synchronously from its main loop: the reply is built in the
// same tick from handler.read()'s return value (no promise, no queue).
import type { AudioInHandler, AudioOutHandler, PcmFormat } from './handlers';
import { MAX_READ_BYTES, MAX_VOICES } from './limits';
import { ERR_INVALID_ARGS, MethodError, type ExportedInterface, type PeerListenerOptions } from './peer-listener';

export const AUDIO_OUT_PATH = '/org/qemu/Display1/AudioOutListener';
export const AUDIO_IN_PATH = '/org/qemu/Display1/AudioInListener';
export const AUDIO_OUT_IFACE = 'org.qemu.Display1.AudioOutListener';
export const AUDIO_IN_IFACE = 'org.qemu.Display1.AudioInListener';

function toFormat(a: unknown[]): PcmFormat {
  const [, bits, isSigned, isFloat, freq, nchannels, bytesPerFrame, bytesPerSecond, be] = a as [bigint, number, boolean, boolean, number, number, number, number, boolean];
  if (bits !== 8 && bits !== 16 && bits !== 32) throw new MethodError(ERR_INVALID_ARGS, `Init: ${bits} bits per sample is not 8, 16 or 32`);
  if (freq <= 0 || freq > 768000 || nchannels <= 0 || nchannels > 64 || bytesPerFrame !== (bits / 8) * nchannels) {
    throw new MethodError(ERR_INVALID_ARGS, `Init: inconsistent format ${freq} Hz x ${nchannels} ch, ${bytesPerFrame} bytes/frame`);
  }
  return { bits, isSigned, isFloat, freq, nchannels, bytesPerFrame, bytesPerSecond, bigEndian: be };
}

/** The voice ids QEMU has announced and not finished, so a vm-gone can fini them for the handler. */
export class VoiceSet {
  readonly ids = new Set<bigint>();
}

function common(handler: AudioOutHandler | AudioInHandler, voices: VoiceSet): ExportedInterface['methods'] {
  return {
    Init: {
      in: 'tybbuyuub',
      out: '',
      call: (a) => {
        const fmt = toFormat(a);
        const id = a[0] as bigint;
        if (!voices.ids.has(id) && voices.ids.size >= MAX_VOICES) throw new MethodError(ERR_INVALID_ARGS, `Init: already ${MAX_VOICES} voices; Fini one first`);
        voices.ids.add(id);
        handler.init(a[0] as bigint, fmt);
      },
    },
    Fini: {
      in: 't',
      out: '',
      call: ([id]) => {
        voices.ids.delete(id as bigint);
        handler.fini(id as bigint);
      },
    },
    SetEnabled: { in: 'tb', out: '', call: ([id, on]) => handler.setEnabled(id as bigint, on as boolean) },
    SetVolume: { in: 'tbay', out: '', call: ([id, mute, vol]) => handler.setVolume(id as bigint, mute as boolean, vol as Uint8Array) },
  };
}

export function audioOutInterfaces(handler: AudioOutHandler, voices = new VoiceSet()): ExportedInterface[] {
  return [
    {
      name: AUDIO_OUT_IFACE,
      properties: { Interfaces: ['as', () => []] },
      methods: {
        ...common(handler, voices),
        Write: { in: 'tay', out: '', call: ([id, data]) => handler.write(id as bigint, data as Uint8Array) },
      },
    },
  ];
}

export function audioInInterfaces(handler: AudioInHandler, voices = new VoiceSet()): ExportedInterface[] {
  return [
    {
      name: AUDIO_IN_IFACE,
      properties: { Interfaces: ['as', () => []] },
      methods: {
        ...common(handler, voices),
        Read: {
          in: 'tt',
          out: 'ay',
          call: ([id, size]) => {
            const want = size as bigint;
            if (want > BigInt(MAX_READ_BYTES)) throw new MethodError(ERR_INVALID_ARGS, `Read: ${want} bytes asked, limit ${MAX_READ_BYTES}`);
            const n = Number(want);
            const got = handler.read(id as bigint, n);
            // Never hand QEMU more than it asked for (it would warn and truncate); no copy.
            const len = Math.min(got.byteLength, n);
            return Buffer.from(got.buffer, got.byteOffset, len);
          },
        },
      },
    },
  ];
}

export function audioOutOptions(handler: AudioOutHandler, voices?: VoiceSet): PeerListenerOptions {
  return { path: AUDIO_OUT_PATH, interfaces: audioOutInterfaces(handler, voices), fds: false };
}

export function audioInOptions(handler: AudioInHandler, voices?: VoiceSet): PeerListenerOptions {
  return { path: AUDIO_IN_PATH, interfaces: audioInInterfaces(handler, voices), fds: false };
}
