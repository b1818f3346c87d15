// AudioOutHandler: the guest's speaker on the host sound server. One OutVoice (one native
// stream) per QEMU voice id, in exactly the format QEMU announced.
import type { AudioOutHandler, PcmFormat } from '../../qemu/handlers';
import type { PlaybackBackend } from '../backend';
import { AudioFormatError, streamFormatFor } from '../format';
import { WriteJitter } from './jitter';
import { saneBlockFrames } from './prebuffer';
import { OutVoice, VoiceOptions, VoiceStats } from './voice';

export interface SpeakerOptions extends Omit<VoiceOptions, 'backend'> {
  backend: PlaybackBackend;
  /** A voice came or went (Init/Fini): called from that event, once per change. */
  onChange?: () => void;
}

export class Speaker implements AudioOutHandler {
  private readonly voices = new Map<bigint, OutVoice>();
  private readonly finishing = new Set<Promise<void>>();
  private unknownWrites = 0;
  /** formats already reported as unplayable (keyed on the format, not the message text) */
  private readonly formatErrors = new Set<string>();
  /** Lateness of Writes on this host; outlives voices and re-attaches (a new voice starts covered). */
  private readonly jitter = new WriteJitter();
  /** Frames per Write as QEMU really sends them (two equal Writes in a row); undefined before. */
  private seenBlockFrames: number | undefined;
  private lastWriteFrames = 0;

  constructor(private readonly opts: SpeakerOptions) {}

  init(id: bigint, format: PcmFormat): void {
    const old = this.voices.get(id);
    if (old) this.finish(old);
    let sf;
    try {
      sf = streamFormatFor(format, this.opts.backend.kind);
    } catch (err) {
      // A handler must not throw into the D-Bus layer for a format we cannot play: log it once
      // and ignore this voice's blocks (counted in unknownWrites).
      if (err instanceof AudioFormatError) {
        // Once per distinct format: a QEMU that repeats the Init must not flood the journal.
        const key = `${format.bits}/${format.isSigned}/${format.isFloat}/${format.bigEndian}/${format.freq}/${format.nchannels}`;
        if (!this.formatErrors.has(key)) {
          if (this.formatErrors.size < 32) this.formatErrors.add(key);
          this.opts.log?.error(err.message, { voice: id.toString() });
        }
        return;
      }
      throw err;
    }
    const blockFrames = this.seenBlockFrames ?? this.opts.blockFrames;
    this.voices.set(id, new OutVoice(id, sf, { ...this.opts, blockFrames, jitterMs: this.jitter.lateMs(performance.now()) }));
    this.opts.onChange?.();
  }

  fini(id: bigint): void {
    const v = this.voices.get(id);
    if (!v) return;
    this.voices.delete(id);
    this.finish(v);
    this.opts.onChange?.();
  }

  /** The first playing voice (QEMU has one per audiodev), for the status line and counters. */
  firstVoice(): OutVoice | undefined {
    return this.voices.values().next().value;
  }

  /** Frames per Write as QEMU really sends them, else the configured size (0: neither known). */
  get blockFrames(): number {
    return this.seenBlockFrames ?? this.opts.blockFrames ?? 0;
  }

  private finish(v: OutVoice): void {
    const p = v.fini().finally(() => this.finishing.delete(p));
    this.finishing.add(p);
  }

  setEnabled(id: bigint, enabled: boolean): void {
    this.voices.get(id)?.setEnabled(enabled);
  }

  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void {
    this.voices.get(id)?.setVolume(mute, volume);
  }

  write(id: bigint, data: Uint8Array): void {
    const v = this.voices.get(id);
    if (!v) {
      this.unknownWrites++;
      return;
    }
    const frames = Math.floor(data.length / v.format.bytesPerFrame);
    // A short last Write is not a block; an absurd one is capped (guest-untrusted: it sizes rings).
    if (frames === this.lastWriteFrames && frames > 0) this.seenBlockFrames = saneBlockFrames(frames);
    this.lastWriteFrames = frames;
    const now = performance.now();
    this.jitter.note((frames * 1000) / v.format.rate, now);
    v.noteJitter(this.jitter.lateMs(now));
    const due = this.jitter.nextDueMs();
    v.write(data, due === undefined ? undefined : due - now);
  }

  voice(id: bigint): OutVoice | undefined {
    return this.voices.get(id);
  }

  stats(): { voices: Array<{ id: string } & VoiceStats>; unknownWrites: number } {
    return { voices: [...this.voices].map(([id, v]) => ({ id: id.toString(), ...v.stats() })), unknownWrites: this.unknownWrites };
  }

  /** Resolves when every voice that got Fini has drained. */
  async idle(): Promise<void> {
    while (this.finishing.size) await Promise.all([...this.finishing]);
  }

  /** Drains and closes every voice (bridge detaching from the VM). */
  async close(): Promise<void> {
    for (const v of this.voices.values()) this.finish(v);
    this.voices.clear();
    await this.idle();
  }
}
