// Route adapter: host source -> guest microphone (src/audio/in AudioInBridge on the same sound
// server the speaker uses). The bridge opens a capture stream only while the guest records.
import type { SoundServerChoice } from '../../audio/backend';
import { AudioInBridge } from '../../audio/in/audio-in-bridge';
import type { BridgeConfig } from '../../config/schema';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { Route, RouteContext } from '../route';
import { soundServerFor } from './audio-out';

export class AudioInRoute implements Route<QemuSession> {
  readonly name = 'audio-in' as const;
  private bridge: AudioInBridge | undefined;
  private handle: ListenerHandle | undefined;
  private wasCapturing = false;
  private poll: NodeJS.Timeout | undefined;

  private held = false;

  /** `sound`: the selection shared with the speaker route (buildRoutes), so both use one server. */
  constructor(
    private readonly config: BridgeConfig,
    readonly sound: SoundServerChoice = soundServerFor(config),
  ) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const a = this.config.audio;
    const backend = await this.sound.acquire();
    if (!backend) {
      this.sound.release();
      throw Object.assign(new Error('audio is off (--audio none)'), { code: 'EDISABLED' });
    }
    this.held = true;
    const bridge = new AudioInBridge({
      vmName: ctx.vm.name,
      source: a.source || undefined,
      backend,
      log: ctx.log,
    });
    this.bridge = bridge;
    this.handle = await ctx.vm.qemu.addAudioInListener(bridge);
    // "capturing" flips only when the guest opens/closes its input: a cheap poll turns that
    // into one status change, never a line per Read.
    this.poll = setInterval(() => {
      if (bridge.capturing !== this.wasCapturing) {
        this.wasCapturing = bridge.capturing;
        ctx.statusChanged();
      }
    }, 500);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    this.poll = undefined;
    const handle = this.handle;
    this.handle = undefined;
    await handle?.remove();
    this.bridge?.close();
    this.bridge = undefined;
    if (this.held) this.sound.release();
    this.held = false;
  }

  stats(): ReturnType<AudioInBridge['stats']> {
    return this.bridge?.stats() ?? [];
  }

  status(): string {
    const src = this.config.audio.source || 'default source';
    return `mic ${this.bridge?.capturing ? 'recording' : 'idle'} ← ${src}`;
  }
}
