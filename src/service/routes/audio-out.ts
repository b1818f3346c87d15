// Route adapter: guest speaker -> host sink (src/audio Speaker on the selected sound server).
// The Speaker reconnects its own streams when the sound server restarts; this adapter only
// chooses the server, registers the listener and reports the format for STATUS=.
import { selectAudioBackend, type PlaybackBackend } from '../../audio/backend';
import { Speaker } from '../../audio/out/speaker';
import type { BridgeConfig } from '../../config/schema';
import type { AudioOutHandler, ListenerHandle, PcmFormat } from '../../qemu';
import type { QemuSession } from '../attach';
import type { Route, RouteContext } from '../route';

/** Passes every call to the Speaker; notes Init/Fini so the status line shows the live format. */
class FormatWatch implements AudioOutHandler {
  format: PcmFormat | undefined;
  constructor(
    private readonly inner: AudioOutHandler,
    private readonly changed: () => void,
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
  }
}

export class AudioOutRoute implements Route<QemuSession> {
  readonly name = 'audio-out' as const;
  private speaker: Speaker | undefined;
  private handle: ListenerHandle | undefined;
  private watch: FormatWatch | undefined;
  private backend: PlaybackBackend | undefined;

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const a = this.config.audio;
    const backend = await selectAudioBackend(a.backend === 'none' ? 'auto' : a.backend);
    if (!backend) throw Object.assign(new Error('audio is off (--audio none)'), { code: 'EDISABLED' });
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
    this.watch = new FormatWatch(speaker, () => ctx.statusChanged());
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
  }

  /** Playback statistics (demo, tests). */
  stats(): ReturnType<Speaker['stats']> | undefined {
    return this.speaker?.stats();
  }

  status(): string {
    const where = `${this.config.audio.sink || 'default sink'} (${this.backend?.kind ?? '?'})`;
    const f = this.watch?.format;
    return f ? `audio ${f.freq} Hz ${f.nchannels}ch → ${where}` : `audio idle → ${where}`;
  }
}
