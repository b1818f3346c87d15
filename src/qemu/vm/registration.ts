// One listener added through QemuVm, one class per kind: what it serves (options), how QEMU is
// asked to take it (register), what follows an accepted registration, and how its handler hears
// that the stream is over (detach). The kinds form a discriminated union on `kind`, each with its
// own handler type, so nothing switches on the kind or casts a handler.
//
// A registration outlives connections: `peer` is the current one (undefined while the VM is
// gone), and the set (listeners.ts) registers it again on every re-attach until remove().
import { audioInOptions, audioOutOptions, VoiceSet } from '../audio-listeners';
import { QemuAudio } from '../audio';
import type { QemuConsole } from '../console';
import { consoleListenerOptions } from '../console-listener';
import { ConsoleShare } from '../console-share';
import { QemuDbusError, errorText } from '../errors';
import type { AudioInHandler, AudioOutHandler, ConsoleListenerHandler } from '../handlers';
import type { PeerListener, PeerListenerOptions, PeerListenerStats } from '../peer-listener';
import type { QemuLink } from '../remote-object';

export type ListenerKind = 'console' | 'audio-out' | 'audio-in';

/** A listener added through QemuVm: survives re-attaches until remove(). */
export interface ListenerHandle {
  readonly kind: ListenerKind;
  /** console index for 'console' */
  readonly consoleId: number;
  /** connected right now */
  readonly active: boolean;
  /** counters of the current connection (reset on re-attach) */
  readonly stats: PeerListenerStats | undefined;
  /** how many times it was registered with a QEMU */
  readonly registrations: number;
  remove(): Promise<void>;
}

/** What a registration needs from the VM it is registered with. */
export interface RegistrationContext {
  readonly link: QemuLink;
  console(id: number): QemuConsole;
  readonly callTimeoutMs: number;
  emitError(e: unknown): void;
}

abstract class BaseRegistration {
  abstract readonly kind: ListenerKind;
  peer: PeerListener | undefined;
  registrations = 0;
  removed = false;
  lastSelfHeal = 0;
  /** the first refused/failed call was reported; the rest are only counted in `stats` */
  warned = false;

  constructor(
    readonly consoleId: number,
    /** takes it out of its set (listeners.ts) */
    private readonly drop: () => void,
  ) {}

  get active(): boolean {
    return this.peer !== undefined && !this.peer.isClosed;
  }
  get stats(): PeerListenerStats | undefined {
    return this.peer?.stats;
  }

  /**
   * performance.now() of QEMU's last call to this listener's current connection (-Infinity: none),
   * a native intake's Writes included (peer/stats.ts withIntake).
   */
  heardAt(): number {
    return this.peer?.stats.lastCallAt ?? -Infinity;
  }

  /** The listener object to serve on a new connection (read anew at every registration). */
  abstract options(): PeerListenerOptions;
  /** Register*(fd) with QEMU. */
  abstract register(ctx: RegistrationContext, fd: number): Promise<void>;
  /** QEMU took the listener. */
  async accepted(_ctx: RegistrationContext): Promise<void> {}
  /** Tell the handler its stream is over (the VM or the listener went away). */
  abstract detach(): void;
  /** Last words on remove(), before the connection closes. */
  protected async dispose(): Promise<void> {}

  /** Close the current connection, if any, and tell the handler. */
  closePeer(): void {
    const p = this.peer;
    this.peer = undefined;
    if (p) {
      p.close();
      this.detach();
    }
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    this.drop();
    await this.dispose();
    this.closePeer();
    await Promise.resolve();
  }
}

/**
 * A console's one shared listener (console-share.ts): serves the display handler, if any, and
 * stays registered while a display or a dead-man's switch holds it.
 */
export class ConsoleRegistration extends BaseRegistration {
  readonly kind = 'console' as const;
  readonly share = new ConsoleShare();
  /** Console Width/Height subscription of the current registration. */
  private unsubscribeSize: (() => Promise<void>) | undefined;

  options(): PeerListenerOptions {
    return consoleListenerOptions(this.share);
  }

  register(ctx: RegistrationContext, fd: number): Promise<void> {
    return ctx.console(this.consoleId).proxy.registerListener(fd, { timeoutMs: ctx.callTimeoutMs });
  }

  /**
   * QEMU 7.2 announces VGA text mode (720x400) only through the Console Width/Height properties,
   * never with a Scanout, and the registration Scanout may describe an older surface: a display
   * handler that sizes its framebuffer needs both. Subscribed anew on every registration because a
   * re-attach may bring a new bus connection.
   */
  override async accepted(ctx: RegistrationContext): Promise<void> {
    await this.unsubscribe();
    const console = ctx.console(this.consoleId);
    try {
      this.unsubscribeSize = await console.onSizeChanged((w, h) => {
        if (!this.removed) this.share.consoleSize(w, h);
      });
      const { width, height } = await console.size(ctx.callTimeoutMs);
      if (!this.removed) this.share.consoleSize(width, height);
    } catch (e) {
      // The listener works without it (Scanouts still size the picture); say why text mode may not.
      ctx.emitError(new QemuDbusError('ELISTENER', `reading the size of console ${this.consoleId} failed: ${errorText(e)}`, 'VGA text mode may show cropped until the guest switches mode'));
    }
  }

  detach(): void {
    try {
      this.share.disable();
    } catch {
      /* handler bugs must not stop the teardown of the others */
    }
  }

  protected override dispose(): Promise<void> {
    return this.unsubscribe();
  }

  private async unsubscribe(): Promise<void> {
    const u = this.unsubscribeSize;
    this.unsubscribeSize = undefined;
    await u?.().catch(() => undefined);
  }
}

/** Both audio directions: voices QEMU announced are fini'd for the handler when the stream ends. */
abstract class VoiceRegistration<H extends AudioOutHandler | AudioInHandler> extends BaseRegistration {
  readonly voices = new VoiceSet();

  constructor(
    readonly handler: H,
    drop: () => void,
  ) {
    super(0, drop);
  }

  detach(): void {
    try {
      for (const id of this.voices.ids) this.handler.fini(id);
    } catch {
      /* handler bugs must not stop the teardown of the others */
    }
    this.voices.ids.clear();
  }
}

export class AudioOutRegistration extends VoiceRegistration<AudioOutHandler> {
  readonly kind = 'audio-out' as const;
  options(): PeerListenerOptions {
    return audioOutOptions(this.handler, this.voices);
  }
  register(ctx: RegistrationContext, fd: number): Promise<void> {
    return new QemuAudio(ctx.link).proxy.registerOutListener(fd, { timeoutMs: ctx.callTimeoutMs });
  }
}

export class AudioInRegistration extends VoiceRegistration<AudioInHandler> {
  readonly kind = 'audio-in' as const;
  options(): PeerListenerOptions {
    return audioInOptions(this.handler, this.voices);
  }
  register(ctx: RegistrationContext, fd: number): Promise<void> {
    return new QemuAudio(ctx.link).proxy.registerInListener(fd, { timeoutMs: ctx.callTimeoutMs });
  }
}

export type Registration = ConsoleRegistration | AudioOutRegistration | AudioInRegistration;

/** One user of a console's shared registration (a display handler or a dead-man's switch). */
export class ConsoleMember implements ListenerHandle {
  readonly kind = 'console' as const;
  private removed = false;

  constructor(
    private readonly r: ConsoleRegistration,
    private readonly display: ConsoleListenerHandler | undefined,
  ) {}

  get consoleId(): number {
    return this.r.consoleId;
  }
  get active(): boolean {
    return this.r.active;
  }
  get stats(): PeerListenerStats | undefined {
    return this.r.stats;
  }
  get registrations(): number {
    return this.r.registrations;
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    const share = this.r.share;
    if (!this.display) share.holds--;
    else if (share.displayHandler === this.display) {
      share.setDisplay(undefined);
      try {
        this.display.disable(); // its stream is over, as if the listener had closed
      } catch {
        /* handler bugs must not stop the removal */
      }
    }
    // The last user closes the connection (QEMU then lifts the console's keys).
    if (share.empty) await this.r.remove();
  }
}
