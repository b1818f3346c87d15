// org.qemu.Display1.AudioOutListener / AudioInListener served for AudioOutHandler /
// AudioInHandler. QEMU calls Read synchronously from its main loop: the reply is built in the
// same tick from handler.read()'s return value (no promise, no queue).
import type { AudioInHandler, AudioOutHandler, PcmFormat } from './handlers';
import { MAX_READ_BYTES, MAX_VOICES } from './limits';
import { DBUS_ERR } from './dbus-errors';
import type { AudioOutListenerCalls } from './generated/display1';
import { MethodError, servedInterface, type ExportedInterface, type PeerListenerOptions, type ServedMethod, type ServedMethods } from './peer-listener';

export const AUDIO_OUT_PATH = '/org/qemu/Display1/AudioOutListener';
export const AUDIO_IN_PATH = '/org/qemu/Display1/AudioInListener';
export const AUDIO_OUT_IFACE = 'org.qemu.Display1.AudioOutListener' as const;
export const AUDIO_IN_IFACE = 'org.qemu.Display1.AudioInListener' as const;

type InitArgs = AudioOutListenerCalls['Init']['args'];

function toFormat([, bits, isSigned, isFloat, freq, nchannels, bytesPerFrame, bytesPerSecond, be]: InitArgs): PcmFormat {
  if (bits !== 8 && bits !== 16 && bits !== 32) throw new MethodError(DBUS_ERR.INVALID_ARGS, `Init: ${bits} bits per sample is not 8, 16 or 32`);
  if (freq <= 0 || freq > 768000 || nchannels <= 0 || nchannels > 64 || bytesPerFrame !== (bits / 8) * nchannels) {
    throw new MethodError(DBUS_ERR.INVALID_ARGS, `Init: inconsistent format ${freq} Hz x ${nchannels} ch, ${bytesPerFrame} bytes/frame`);
  }
  return { bits, isSigned, isFloat, freq, nchannels, bytesPerFrame, bytesPerSecond, bigEndian: be };
}

/** The voice ids QEMU has announced and not finished, so a vm-gone can fini them for the handler. */
export class VoiceSet {
  readonly ids = new Set<bigint>();
}

type VoiceMember = 'Init' | 'Fini' | 'SetEnabled' | 'SetVolume';

/** The methods both directions share (same signatures in display1.xml). */
function voiceMethods(handler: AudioOutHandler | AudioInHandler, voices: VoiceSet): { [M in VoiceMember]: ServedMethod<AudioOutListenerCalls[M], VoiceMember> } {
  return {
    Init: {
      call: (a) => {
        const fmt = toFormat(a);
        const id = a[0];
        if (!voices.ids.has(id) && voices.ids.size >= MAX_VOICES) throw new MethodError(DBUS_ERR.INVALID_ARGS, `Init: already ${MAX_VOICES} voices; Fini one first`);
        voices.ids.add(id);
        handler.init(id, fmt);
      },
    },
    Fini: {
      call: ([id]) => {
        voices.ids.delete(id);
        handler.fini(id);
      },
    },
    SetEnabled: { call: ([id, on]) => handler.setEnabled(id, on) },
    SetVolume: { call: ([id, mute, vol]) => handler.setVolume(id, mute, vol) },
  };
}

export function audioOutInterfaces(handler: AudioOutHandler, voices = new VoiceSet()): ExportedInterface[] {
  return [servedInterface(AUDIO_OUT_IFACE, { ...voiceMethods(handler, voices), Write: { call: ([id, data]) => handler.write(id, data) } }, { Interfaces: () => [] })];
}

export function audioInInterfaces(handler: AudioInHandler, voices = new VoiceSet()): ExportedInterface[] {
  const read: ServedMethods<typeof AUDIO_IN_IFACE>['Read'] = {
    call: ([id, want]) => {
      if (want > BigInt(MAX_READ_BYTES)) throw new MethodError(DBUS_ERR.INVALID_ARGS, `Read: ${want} bytes asked, limit ${MAX_READ_BYTES}`);
      const n = Number(want);
      const got = handler.read(id, n);
      // Never hand QEMU more than it asked for (it would warn and truncate); no copy.
      const len = Math.min(got.byteLength, n);
      return Buffer.from(got.buffer, got.byteOffset, len);
    },
  };
  return [servedInterface(AUDIO_IN_IFACE, { ...voiceMethods(handler, voices), Read: read }, { Interfaces: () => [] })];
}

export function audioOutOptions(handler: AudioOutHandler, voices?: VoiceSet): PeerListenerOptions {
  const open = handler.openIntake;
  return { path: AUDIO_OUT_PATH, interfaces: audioOutInterfaces(handler, voices), fds: false, intake: open ? (fd, pending, onEvent) => open.call(handler, fd, pending, onEvent) : undefined };
}

export function audioInOptions(handler: AudioInHandler, voices?: VoiceSet): PeerListenerOptions {
  return { path: AUDIO_IN_PATH, interfaces: audioInInterfaces(handler, voices), fds: false };
}
