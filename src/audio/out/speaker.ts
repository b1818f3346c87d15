// AudioOutHandler: the guest's speaker on the host sound server. One OutVoice (one native
// stream) per QEMU voice id, in exactly the format QEMU announced.
import type { NativeSpeakerCore, NativeSpeakerIntake } from '../../native-api/audio';
import type { AudioOutHandler, ListenerIntake, ListenerIntakeListener, PcmFormat } from '../../qemu/handlers';
import type { PlaybackBackend } from '../backend';
import { AudioFormatError, streamFormatFor } from '../format';
import { MAX_LATENESS_MS, saneBlockFrames } from './prebuffer';
import { OutVoice, VoiceOptions, VoiceStats } from './voice';

/**
 * The Speaker's WriteJitter (native/write_jitter.h): a pause longer than this starts a new run of
 * Writes (the guest stopped its stream), ms.
 */
const JITTER_RUN_GAP_MS = 250;
/** Halving time of the remembered worst lateness: a VM restart or reboot is well within it, ms. */
const JITTER_HALF_LIFE_MS = 600_000;

export interface SpeakerOptions extends Omit<VoiceOptions, 'backend' | 'core' | 'coreNowMs'> {
  backend: PlaybackBackend;
  /** A voice came or went (Init/Fini): called from that event, once per change. */
  onChange?: () => void;
}

export class Speaker implements AudioOutHandler {
  private readonly voices = new Map<bigint, OutVoice>();
  private readonly finishing = new Set<Promise<void>>();
  /** formats already reported as unplayable (keyed on the format, not the message text) */
  private readonly formatErrors = new Set<string>();
  /**
   * Every Write's work (native/speaker_core.h), and the lateness of Writes on this host: it
   * outlives voices and re-attaches (a new voice starts covered).
   */
  readonly core: NativeSpeakerCore;
  /** The intake of the current (or last) listener connection, and the Writes earlier ones took. */
  private intake: NativeSpeakerIntake | undefined;
  private intakeWritesBefore = 0;
  /** performance.now() on the core's clock (CLOCK_MONOTONIC ms; performance.now() runs on it from another origin). */
  private readonly coreNowMs: () => number;

  constructor(private readonly opts: SpeakerOptions) {
    this.core = opts.backend.openSpeakerCore({ runGapMs: JITTER_RUN_GAP_MS, halfLifeMs: JITTER_HALF_LIFE_MS, maxMs: MAX_LATENESS_MS });
    const offset = this.core.jitter().nowMs - performance.now();
    this.coreNowMs = () => performance.now() + offset;
  }

  init(id: bigint, format: PcmFormat): void {
    // A voice re-initialised is finished first, as at Fini: out of the core at once, not when
    // the new voice's addVoice replaces it (a format refused below adds none, and the old entry
    // would keep feeding the stream finish() closes).
    this.fini(id);
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
    const seen = this.core.jitter(this.coreNowMs());
    const blockFrames = seen.blockFrames > 0 ? saneBlockFrames(seen.blockFrames) : this.opts.blockFrames;
    this.voices.set(id, new OutVoice(id, sf, { ...this.opts, core: this.core, coreNowMs: this.coreNowMs, blockFrames, jitterMs: seen.lateMs }));
    this.opts.onChange?.();
  }

  /**
   * The intake thread (native/speaker_intake.h) for a listener connection: QEMU's Writes go into
   * the rings through this Speaker's core without waking Node; everything else comes to JS in
   * order. Undefined when the backend has none (test fakes): the connection is read in JS.
   */
  get openIntake(): ((fd: number, pending: Uint8Array, onEvent: ListenerIntakeListener) => ListenerIntake) | undefined {
    const open = this.opts.backend.openSpeakerIntake;
    if (!open) return undefined;
    return (fd, pending, onEvent) => {
      const intake = open(this.core, fd, pending, onEvent);
      if (this.intake) this.intakeWritesBefore += this.intake.stats().taken;
      this.intake = intake;
      return intake;
    };
  }

  fini(id: bigint): void {
    const v = this.voices.get(id);
    if (!v) return;
    this.voices.delete(id);
    v.detach();
    this.core.removeVoice(id);
    this.finish(v);
    this.opts.onChange?.();
  }

  /** The first playing voice (QEMU has one per audiodev), for the status line and counters. */
  firstVoice(): OutVoice | undefined {
    return this.voices.values().next().value;
  }

  /** Frames per Write as QEMU really sends them, else the configured size (0: neither known). */
  get blockFrames(): number {
    const seen = this.core.jitter().blockFrames;
    // A short last Write is not a block; an absurd one is capped (guest-untrusted: it sizes rings).
    return seen > 0 ? saneBlockFrames(seen) : (this.opts.blockFrames ?? 0);
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

  /** The one Write path from JS: the native core does the work (a Write to an unknown voice is counted there). */
  write(id: bigint, data: Uint8Array): void {
    const v = this.voices.get(id);
    v?.beforeWrite();
    this.core.write(id, data, this.coreNowMs());
    v?.wrote();
  }

  voice(id: bigint): OutVoice | undefined {
    return this.voices.get(id);
  }

  /**
   * `intakeWrites`: Writes the intake thread took without JS (all connections so far); `lateMs`: the
   * lateness of Writes the next prebuffer covers (native/write_jitter.h, decayed to now).
   */
  stats(): { voices: Array<{ id: string } & VoiceStats>; unknownWrites: number; intakeWrites: number; lateMs: number } {
    const intakeWrites = this.intakeWritesBefore + (this.intake?.stats().taken ?? 0);
    const j = this.core.jitter(this.coreNowMs());
    return { voices: [...this.voices].map(([id, v]) => ({ id: id.toString(), ...v.stats() })), unknownWrites: j.unknownWrites, intakeWrites, lateMs: j.lateMs };
  }

  /** Resolves when every voice that got Fini has drained. */
  async idle(): Promise<void> {
    while (this.finishing.size) await Promise.all([...this.finishing]);
  }

  /** Drains and closes every voice (bridge detaching from the VM). */
  async close(): Promise<void> {
    for (const [id, v] of this.voices) {
      v.detach();
      this.core.removeVoice(id);
      this.finish(v);
    }
    this.voices.clear();
    await this.idle();
  }
}
