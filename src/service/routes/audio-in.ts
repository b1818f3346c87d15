// Route adapter: host source -> guest microphone (src/audio/in AudioInBridge on the same sound
// server the speaker uses). The bridge opens a capture stream only while the guest records.
import { selectAudioBackend } from '../../audio/backend';
import { AudioInBridge } from '../../audio/in/audio-in-bridge';
import { captureOpenerFor } from '../../audio/in/native-capture';
import { CodedError } from '../../errors';
import type { BridgeConfig } from '../../config/schema';
import type { ListenerHandle } from '../../qemu';
import type { QemuSession } from '../attach';
import type { Route, RouteContext } from '../route';

export class AudioInRoute implements Route<QemuSession> {
  readonly name = 'audio-in' as const;
  private bridge: AudioInBridge | undefined;
  private handle: ListenerHandle | undefined;
  private wasCapturing = false;
  private poll: NodeJS.Timeout | undefined;

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const a = this.config.audio;
    const backend = await selectAudioBackend(a.backend === 'none' ? 'auto' : a.backend);
    if (!backend) throw new CodedError('EDISABLED', 'audio is off (--audio none)', '', { permanent: true });
    const bridge = new AudioInBridge({
      vmName: ctx.vm.name,
      source: a.source || undefined,
      openCapture: captureOpenerFor(backend),
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
  }

  stats(): ReturnType<AudioInBridge['stats']> {
    return this.bridge?.stats() ?? [];
  }

  status(): string {
    const src = this.config.audio.source || 'default source';
    return `mic ${this.bridge?.capturing ? 'recording' : 'idle'} ← ${src}`;
  }
}
