// Route adapter: guest speaker -> host sink (src/audio Speaker on the selected sound server).
// The Speaker reconnects its own streams when the sound server restarts; this adapter only
// chooses the server, registers the listener, and reports the format (the Speaker's Init/Fini
// event calls ctx.statusChanged()) and the playback counters.
import { SoundServerChoice, type PlaybackBackend } from '../../audio/backend';
import { Speaker } from '../../audio/out/speaker';
import type { BridgeConfig } from '../../config/schema';
import { CodedError } from '../../errors';
import type { AudioOutHandler, ListenerHandle, PcmFormat } from '../../qemu';
import type { QemuSession } from '../attach';
import type { AudioOutCounters, Route, RouteContext } from '../route';

/**
 * Passes every call to the Speaker and shows each Write, after the Speaker took it, to the
 * observers: the demo's level meter, the e2e bench's tap (what QEMU sent, to tell its breaks from
 * ours). Built only when one is asked for: without, QEMU calls the Speaker directly.
 */
class WriteObserver implements AudioOutHandler {
  private format: PcmFormat | undefined;
  /** Peak |sample| of S16 audio since the last peek (kept when `meter` is set). */
  peak = 0;
  constructor(
    private readonly inner: AudioOutHandler,
    private readonly meter: boolean,
    private readonly tap?: AudioOutTap,
  ) {}
  init(id: bigint, format: PcmFormat): void {
    this.inner.init(id, format);
    this.format = format;
  }
  fini(id: bigint): void {
    this.inner.fini(id);
    this.format = undefined;
  }
  setEnabled(id: bigint, enabled: boolean): void {
    this.inner.setEnabled(id, enabled);
  }
  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void {
    this.inner.setVolume(id, mute, volume);
  }
  write(id: bigint, data: Uint8Array): void {
    this.inner.write(id, data);
    const f = this.format;
    if (f && this.tap) this.tap(f, data);
    if (!this.meter || !f || f.bits !== 16 || !f.isSigned || f.bigEndian) return;
    // Every 8th sample is plenty for a level display and keeps this cheap.
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let p = this.peak;
    for (let i = 0; i + 1 < data.byteLength; i += 16) p = Math.max(p, Math.abs(view.getInt16(i, true)));
    this.peak = p;
  }
}

/** Sees each Write's PCM as QEMU sent it (the buffer is QEMU's message: copy what is kept). */
export type AudioOutTap = (format: PcmFormat, data: Uint8Array) => void;

/** The sound-server selection of a config; buildRoutes hands ONE to both audio routes. */
export function soundServerFor(config: BridgeConfig): SoundServerChoice {
  const b = config.audio.backend;
  // 'none' builds no audio route (enabledRoutes); a route built by hand then probes.
  return new SoundServerChoice(b === 'none' ? 'auto' : b);
}

export class AudioOutRoute implements Route<QemuSession> {
  readonly name = 'audio-out' as const;
  private speaker: Speaker | undefined;
  private handle: ListenerHandle | undefined;
  private observer: WriteObserver | undefined;
  private backend: PlaybackBackend | undefined;
  private held = false;
  readonly sound: SoundServerChoice;

  /** `sound`: the selection shared with the microphone route (buildRoutes), so both use one server. */
  constructor(
    private readonly config: BridgeConfig,
    private readonly opts: { meter?: boolean; sound?: SoundServerChoice; tap?: AudioOutTap } = {},
  ) {
    this.sound = opts.sound ?? soundServerFor(config);
  }

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const a = this.config.audio;
    const backend = await this.sound.acquire();
    if (!backend) {
      this.sound.release();
      throw new CodedError('EDISABLED', 'audio is off (--audio none)', '', { permanent: true });
    }
    this.held = true;
    this.backend = backend;
    const speaker = new Speaker({
      vmName: ctx.vm.name,
      backend,
      sink: a.sink || undefined,
      latencyMs: a.latency_ms,
      blockFrames: ctx.vm.qemu.capabilities.audioNSamples ?? undefined,
      log: ctx.log,
      onChange: () => ctx.statusChanged(),
    });
    this.speaker = speaker;
    this.observer = this.opts.meter || this.opts.tap ? new WriteObserver(speaker, this.opts.meter === true, this.opts.tap) : undefined;
    this.handle = await ctx.vm.qemu.addAudioOutListener(this.observer ?? speaker);
  }

  async stop(): Promise<void> {
    const handle = this.handle;
    const speaker = this.speaker;
    this.handle = undefined;
    this.speaker = undefined;
    await handle?.remove();
    // Drains what the guest already played into the ring, then closes the streams.
    await speaker?.close();
    if (this.held) this.sound.release();
    this.held = false;
  }

  /** Playback statistics (demo, tests). */
  stats(): ReturnType<Speaker['stats']> | undefined {
    return this.speaker?.stats();
  }

  /** Peak level since the last call, in dBFS (-Infinity for silence); needs { meter: true }. */
  takeLevelDb(): number {
    const m = this.observer;
    if (!m) return -Infinity;
    const p = m.peak;
    m.peak = 0;
    return p === 0 ? -Infinity : 20 * Math.log10(p / 32768);
  }

  private target(): string {
    return `${this.config.audio.sink || 'default sink'} (${this.backend?.kind ?? '?'})`;
  }

  status(): string {
    const f = this.speaker?.firstVoice()?.format;
    return f ? `audio ${f.rate} Hz ${f.channels}ch → ${this.target()}` : `audio idle → ${this.target()}`;
  }

  counters(): AudioOutCounters {
    const s = this.speaker;
    const v = s?.firstVoice();
    const st = v?.stats();
    const rate = v?.format.rate ?? 0;
    const ratio = st?.ratio ?? 1;
    return {
      route: 'audio-out',
      target: this.target(),
      format: v ? `${v.format.nativeFormat.toLowerCase()} ${rate} Hz ${v.format.channels}ch` : '',
      blockFrames: s?.blockFrames ?? 0,
      targetLatencyMs: st && rate ? (st.targetFrames * 1000) / rate : 0,
      measuredLatencyMs: st?.delayMs ?? 0,
      frames: st?.writtenFrames ?? 0,
      fillFrames: st?.fillFrames ?? 0,
      underruns: st?.underruns ?? 0,
      overruns: st?.overflowFrames ?? 0,
      lostFrames: st?.droppedFrames ?? 0,
      silenceSkippedFrames: st?.silenceSkippedFrames ?? 0,
      reconnects: st?.reconnects ?? 0,
      driftPpm: (ratio - 1) * 1e6,
      rateRatio: ratio,
    };
  }
}
