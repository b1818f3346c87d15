// AudioInHandler: the host microphone as QEMU's audio input (org.qemu.Display1.AudioInListener).
// One InVoice (./voice.ts) per QEMU voice id, like Speaker's OutVoices on the way out.
//
// QEMU's main loop is BLOCKED while it waits for our Read reply (the lab measured a 20 ms reply
// stretching a 1 s guest recording to 1.5 s), so read() answers at once with exactly `size`
// bytes: whatever the capture ring holds, then silence. Padding is counted, never waited out:
// under TCG QEMU asks ~1.37x faster than real time, so a real-time source cannot fill every
// Read.
//
// Privacy: a capture stream exists only while the guest has its input voice enabled
// (SetEnabled(true) .. SetEnabled(false)/Fini). No microphone is open while the guest is not
// recording.
//
// The stream is opened in the guest's format (the server converts and resamples), so the bytes
// from the ring are guest bytes, except S8/U16/U32, captured as their signed/unsigned twin and
// flipped back. The guest's volume/mute (SetVolume) is applied to what the guest receives
// (src/audio/format.ts says why on this side of the native boundary).
import type { AudioInHandler, PcmFormat } from '../../qemu/handlers';
import { InVoice, InVoiceOptions, InVoiceStats } from './voice';

export type AudioInBridgeOptions = InVoiceOptions;
export type { InVoiceStats };

export class AudioInBridge implements AudioInHandler {
  private readonly voices = new Map<bigint, InVoice>();
  /** Reused reply buffer: the D-Bus layer marshals the reply before read() is called again. */
  private scratch = new Uint8Array(8192);
  /** Reply for a voice we know nothing about (QEMU bug or race): zeros, told once. */
  private unknownWarned = false;

  constructor(private readonly opts: AudioInBridgeOptions) {}

  init(id: bigint, format: PcmFormat): void {
    this.voices.get(id)?.close();
    this.voices.set(id, new InVoice(id, format, this.opts));
  }

  fini(id: bigint): void {
    this.voices.get(id)?.close();
    this.voices.delete(id);
  }

  setEnabled(id: bigint, enabled: boolean): void {
    this.voices.get(id)?.setEnabled(enabled);
  }

  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void {
    this.voices.get(id)?.setVolume(mute, volume);
  }

  read(id: bigint, size: number): Uint8Array {
    if (this.scratch.byteLength < size) this.scratch = new Uint8Array(Math.max(size, this.scratch.byteLength * 2));
    const out = this.scratch.subarray(0, size);
    const v = this.voices.get(id);
    if (!v) {
      if (!this.unknownWarned) {
        this.unknownWarned = true;
        this.opts.log?.warn(`Read for unknown voice ${id}: answering silence`);
      }
      out.fill(0);
      return out;
    }
    v.read(out);
    return out;
  }

  /** Per-voice counters (status line, bench, tests). */
  stats(): InVoiceStats[] {
    return [...this.voices.values()].map((v) => v.stats());
  }

  /** Is any microphone stream open now? (privacy check for status and tests) */
  get capturing(): boolean {
    for (const v of this.voices.values()) if (v.capturing) return true;
    return false;
  }

  /** Closes every stream (VM gone, service stopping). The handler can be reused after init(). */
  close(): void {
    for (const v of this.voices.values()) v.close();
    this.voices.clear();
  }
}
