// Route adapter: guest speaker -> host sink (src/audio Speaker on the selected sound server).
// The Speaker reconnects its own streams when the sound server restarts; this adapter only
// chooses the server, registers the listener and reports the format for STATUS=.
import { SoundServerChoice, type PlaybackBackend } from '../../audio/backend';
import { Speaker } from '../../audio/out/speaker';
import type { BridgeConfig } from '../../config/schema';
import type { AudioOutHandler, ListenerHandle, PcmFormat } from '../../qemu';
import type { QemuSession } from '../attach';
import type { Route, RouteContext } from '../route';

/** Passes every call to the Speaker; notes Init/Fini so the status line shows the live format. */
class FormatWatch implements AudioOutHandler {
  format: PcmFormat | undefined;
  /** Peak |sample| of S16 audio since the last peek (only with the meter on: the demo's level). */
  peak = 0;
  constructor(
    private readonly inner: AudioOutHandler,
    private readonly changed: () => void,
    private readonly meter: boolean,
  ) {}
  init(id: bigint, format: PcmFormat): void {
    this.inner.init(id, format);
    this.format = format;
    this.changed();
  }
  fini(id: bigint): void {
    this.inner.fini(id);
    this.format = undefined;
    this.changed();
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
    if (!this.meter || !f || f.bits !== 16 || !f.isSigned || f.bigEndian) return;
    // Every 8th sample is plenty for a level display and keeps this cheap.
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let p = this.peak;
    for (let i = 0; i + 1 < data.byteLength; i += 16) p = Math.max(p, Math.abs(view.getInt16(i, true)));
    this.peak = p;
  }
}

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
  private watch: FormatWatch | undefined;
  private backend: PlaybackBackend | undefined;
  private held = false;
  readonly sound: SoundServerChoice;

  /** `sound`: the selection shared with the microphone route (buildRoutes), so both use one server. */
  constructor(
    private readonly config: BridgeConfig,
    private readonly opts: { meter?: boolean; sound?: SoundServerChoice } = {},
  ) {
    this.sound = opts.sound ?? soundServerFor(config);
  }

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const a = this.config.audio;
    const backend = await this.sound.acquire();
    if (!backend) {
      this.sound.release();
      throw Object.assign(new Error('audio is off (--audio none)'), { code: 'EDISABLED' });
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
    });
    this.speaker = speaker;
    this.watch = new FormatWatch(speaker, () => ctx.statusChanged(), this.opts.meter ?? false);
    this.handle = await ctx.vm.qemu.addAudioOutListener(this.watch);
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
    const w = this.watch;
    if (!w) return -Infinity;
    const p = w.peak;
    w.peak = 0;
    return p === 0 ? -Infinity : 20 * Math.log10(p / 32768);
  }

  status(): string {
    const where = `${this.config.audio.sink || 'default sink'} (${this.backend?.kind ?? '?'})`;
    const f = this.watch?.format;
    return f ? `audio ${f.freq} Hz ${f.nchannels}ch → ${where}` : `audio idle → ${where}`;
  }
}
