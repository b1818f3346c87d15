// Route adapter: host source -> guest microphone (src/audio/in AudioInBridge on the same sound
// server the speaker uses). The bridge opens a capture stream only while the guest records, and
// says so (onChange -> ctx.statusChanged()) when it opens or closes one.
import type { SoundServerChoice } from '../../audio/backend';
import { AudioInBridge } from '../../audio/in/audio-in-bridge';
import type { BridgeConfig } from '../../config/schema';
import { CodedError } from '../../errors';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { AudioInCounters, Route, RouteContext } from '../route';
import { soundServerFor } from './audio-out';

export class AudioInRoute implements Route<QemuSession> {
  readonly name = 'audio-in' as const;
  private bridge: AudioInBridge | undefined;
  private handle: ListenerHandle | undefined;

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
      throw new CodedError('EDISABLED', 'audio is off (--audio none)', '', { permanent: true });
    }
    this.held = true;
    const bridge = new AudioInBridge({
      vmName: ctx.vm.name,
      source: a.source || undefined,
      backend,
      log: ctx.log,
      onChange: () => ctx.statusChanged(),
    });
    this.bridge = bridge;
    this.handle = await ctx.vm.qemu.addAudioInListener(bridge);
  }

  async stop(): Promise<void> {
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

  private target(): string {
    return this.config.audio.source || 'default source';
  }

  status(): string {
    return `mic ${this.bridge?.capturing ? 'recording' : 'idle'} ← ${this.target()}`;
  }

  counters(): AudioInCounters {
    const c: AudioInCounters = { route: 'audio-in', target: this.target(), open: this.bridge?.capturing ?? false, reads: 0, paddedReads: 0, underruns: 0 };
    for (const v of this.stats()) {
      c.reads += v.reads;
      c.paddedReads += v.paddedReads;
      c.underruns += v.underruns;
    }
    return c;
  }
}
