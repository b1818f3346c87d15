// QemuVm: one attached VM, the façade of the QEMU D-Bus layer. The work is done behind it:
//   vm/attachment.ts    how we reach QEMU and find it again (bus-attachment.ts, p2p-attachment.ts)
//   vm/listeners.ts     the listeners added here: registering, sharing a console's, self-healing
//   vm/registration.ts  one class per listener kind (what it serves, how it registers, detaches)
//   vm/liveness.ts      the property read that tells alive, stuck and gone apart, made when QEMU
//                       has sent nothing for a second
//
// Lifecycle:
//   connect() -> 'attached'
//   the VM's unique name vanishes (NameOwnerChanged), a listener socket hits EOF, or a
//   liveness read says the name has no owner -> every listener socket is closed, handlers get
//   fini()/disable() for what was open -> 'vm-gone'
//   a QEMU with the same UUID (or, without -uuid, the same name) shows up on the bus ->
//   every listener added through this object is registered again -> 'reattached'
//   a liveness read (Properties.Get, not Ping: GDBus answers Ping from its worker thread even
//   while QEMU's main loop is blocked; made only when QEMU has sent no listener call for a
//   second) times out -> 'error' with EQEMU_UNRESPONSIVE, and 'responsive' once it answers again.
import { EventEmitter } from 'events';
import type * as dbus from 'dbus-native';
import { AUDIO_PATH, QemuAudio } from './audio';
import { detectCapabilities, type Capabilities } from './capabilities';
import { QemuConsole, chooseConsole, type ConsoleInfo } from './console';
import { hasRealUuid, type VmSelector } from './discovery';
import { QemuDbusError, errorText, isQemuDbusError } from './errors';
import type { AudioInHandler, AudioOutHandler, ConsoleListenerHandler } from './handlers';
import type { QemuLink } from './remote-object';
import type { AttachEvents, Attachment, Attached, ConnectOptions, VmGoneKind, VmInfo } from './vm/attachment';
import { attachOnBus } from './vm/bus-attachment';
import { ListenerSet } from './vm/listeners';
import { Liveness, probeVm, type Probe } from './vm/liveness';
import { attachP2p, isP2p } from './vm/p2p-attachment';
import type { ListenerHandle } from './vm/registration';

export type { ConnectOptions, VmGoneKind, VmInfo } from './vm/attachment';
export type { ListenerHandle, ListenerKind } from './vm/registration';

export interface QemuVmEvents {
  attached: [info: VmInfo];
  /** `kind` is the machine-readable form of `reason` */
  'vm-gone': [info: VmInfo, reason: string, kind: VmGoneKind];
  reattached: [info: VmInfo];
  error: [err: QemuDbusError];
  /** liveness recovered after an EQEMU_UNRESPONSIVE */
  responsive: [info: VmInfo];
}

/** Slowest look for a VM that is gone from a bus (the bus says when a QEMU arrives: arrivals.ts). */
export const REATTACH_POLL_MAX_MS = 5000;

export class QemuVm extends EventEmitter<QemuVmEvents> {
  /** Mutable on purpose: proxies handed out keep working after a re-attach. */
  readonly link: QemuLink;
  private readonly attachment: Attachment;
  private vmInfo: VmInfo;
  private caps: Capabilities;
  private attachedFlag = true;
  private closed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  /** the next look's delay while the VM is gone (bus: doubles up to REATTACH_POLL_MAX_MS) */
  private pollMs = 0;
  private searching = false;
  /** a look was asked for while one was running: it may have missed what prompted the ask */
  private lookAgain = false;
  private readonly consoles = new Map<number, QemuConsole>();
  private readonly registered: ListenerSet;
  private readonly liveness: Liveness;

  private constructor(
    private readonly opts: ConnectOptions,
    a: Attached,
  ) {
    super();
    this.attachment = a.attachment;
    this.link = a.attachment.link;
    this.vmInfo = a.info;
    this.caps = a.caps;
    this.registered = new ListenerSet({
      link: this.link,
      callTimeoutMs: opts.callTimeoutMs ?? 10_000,
      vmName: () => this.vmInfo.name,
      isAttached: () => this.attachedFlag,
      isClosed: () => this.closed,
      audioMissing: () => this.caps.audio === false,
      console: (id) => this.console(id),
      emitError: (e) => this.emitError(e),
      probe: () => this.probe(),
      listenerEof: () => this.markGone('listener socket closed and the VM no longer answers', 'listener-eof'),
    });
    const timeoutMs = opts.livenessTimeoutMs ?? 3000;
    this.liveness = new Liveness({ intervalMs: opts.livenessIntervalMs ?? 1000, timeoutMs }, () => this.probe(), () => this.attachedFlag && !this.closed, {
      unresponsive: (ms) =>
        this.emitError(
          new QemuDbusError(
            'EQEMU_UNRESPONSIVE',
            `VM "${this.vmInfo.name}" did not answer a property read within ${ms} ms (main loop blocked or process stopped)`,
            'check that QEMU is not stopped (SIGSTOP) or stuck on a client; it recovers by itself when its main loop runs again',
          ),
        ),
      responsive: () => this.emit('responsive', this.vmInfo),
      gone: () => this.markGone('the VM stopped answering (no owner)', 'no-owner'),
    }, () => performance.now() - this.registered.heardAt());
  }

  /** Find the VM (bus) or take over QEMU's p2p socket (qmpPath, p2pSource), and attach. */
  static async connect(opts: ConnectOptions = {}): Promise<QemuVm> {
    const timeout = opts.callTimeoutMs ?? 10_000;
    const attached = isP2p(opts) ? await attachP2p(opts, timeout) : await attachOnBus(opts, timeout);
    const vm = new QemuVm(opts, attached);
    try {
      await attached.attachment.watch(vm.attachEvents());
    } catch (e) {
      await attached.attachment.close();
      throw e;
    }
    vm.liveness.start();
    setImmediate(() => vm.emit('attached', vm.vmInfo));
    return vm;
  }

  get info(): VmInfo {
    return this.vmInfo;
  }
  get capabilities(): Capabilities {
    return this.caps;
  }
  get attached(): boolean {
    return this.attachedFlag;
  }
  get bus(): dbus.MessageBus {
    return this.link.bus;
  }

  console(id = this.vmInfo.consoleIds[0] ?? 0): QemuConsole {
    let c = this.consoles.get(id);
    if (!c) {
      c = new QemuConsole(this.link, id);
      this.consoles.set(id, c);
    }
    return c;
  }

  /** Every console of the VM (VM.ConsoleIDs) with its Label, Head, Type and size, in ID order. */
  async consoleInfos(timeoutMs?: number): Promise<ConsoleInfo[]> {
    return Promise.all([...this.vmInfo.consoleIds].sort((a, b) => a - b).map((id) => this.console(id).info(timeoutMs)));
  }

  /**
   * The console a route works on: console `want` (ECONSOLE_UNKNOWN naming the consoles there are
   * when the VM has none with that number), by default the first graphic console. `flag` is the
   * option that asked, for the error's fix.
   */
  async chooseConsole(want: number | undefined, flag: string): Promise<QemuConsole> {
    const picked = chooseConsole(await this.consoleInfos(), want, flag, this.vmInfo.name);
    return this.console(picked.id);
  }

  /** The Audio object; ENO_AUDIO when QEMU runs without `audiodev=` on -display dbus. */
  audio(): QemuAudio {
    this.requireAudio();
    return new QemuAudio(this.link);
  }

  async addConsoleListener(handler: ConsoleListenerHandler, opts: { console?: number } = {}): Promise<ListenerHandle> {
    return this.registered.joinConsole(opts.console ?? this.vmInfo.consoleIds[0] ?? 0, handler);
  }

  /**
   * A dead-man's switch for keys sent to a console's Keyboard: keeps a console listener registered
   * (sharing the display's, if there is one) so that QEMU lifts every key pressed through that
   * console when this process goes away without releasing them (SIGKILL, OOM, crash). QEMU lifts
   * keys only: mouse buttons are not (the input route releases them at every attach). Re-registered
   * on re-attach like every listener; remove() when no more keys will be sent.
   */
  async addDeadMansSwitch(opts: { console?: number } = {}): Promise<ListenerHandle> {
    return this.registered.joinConsole(opts.console ?? this.vmInfo.consoleIds[0] ?? 0, undefined);
  }

  /**
   * Resolves once QEMU accepted the listener. Its Init/SetEnabled replay for existing voices comes
   * later: QEMU 7.2 first reads our listener's properties (GetAll) on the new connection and sends
   * them only after that answer, so a caller must wait for Init rather than expect it here.
   */
  async addAudioOutListener(handler: AudioOutHandler): Promise<ListenerHandle> {
    this.requireAudio();
    return this.registered.addAudioOut(handler);
  }

  async addAudioInListener(handler: AudioInHandler): Promise<ListenerHandle> {
    this.requireAudio();
    return this.registered.addAudioIn(handler);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.liveness.stop();
    this.stopSearching();
    await this.registered.removeAll();
    await this.attachment.close();
  }

  private requireAudio(): void {
    if (!this.caps.audio) {
      throw new QemuDbusError(
        'ENO_AUDIO',
        `VM "${this.vmInfo.name}" exports no /org/qemu/Display1/Audio`,
        'start QEMU with -audiodev dbus,id=snd0 and -display dbus,audiodev=snd0 (audiodev= on -display dbus is required)',
      );
    }
    if (this.caps.p2pAudioBroken) {
      throw new QemuDbusError(
        'EP2P_AUDIO',
        `VM "${this.vmInfo.name}" is attached bus-less (p2p=yes) and this QEMU predates the fix for audio listeners on a p2p connection (7.2 keys them by a NULL sender)`,
        'use the bus mode for audio: -display dbus,addr=unix:path=<bus>,audiodev=snd0 (or upgrade QEMU to 8.1 or newer)',
        { permanent: true },
      );
    }
  }

  private probe(): Promise<Probe> {
    return probeVm(this.link, this.opts.livenessTimeoutMs ?? 3000);
  }

  private emitError(e: unknown): void {
    const err = isQemuDbusError(e) ? e : new QemuDbusError('ELISTENER', errorText(e), 'see the message', { cause: e });
    // 'error' without a listener would throw: a library must not crash its host for this.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private attachEvents(): AttachEvents {
    return {
      isAttached: () => this.attachedFlag,
      isClosed: () => this.closed,
      gone: (reason, kind) => this.markGone(reason, kind),
      lookNow: () => {
        this.lookSoonAgain();
        void this.search();
      },
      error: (err) => this.emitError(err),
    };
  }

  private markGone(reason: string, kind: VmGoneKind): void {
    if (!this.attachedFlag || this.closed) return;
    this.attachedFlag = false;
    // Nothing to read while it is away (the look for it says when it is back).
    this.liveness.stop();
    this.liveness.reset();
    this.registered.detachAll();
    this.emit('vm-gone', this.vmInfo, reason, kind);
    // Our own bus connection is gone: nothing can come back on it.
    if (this.opts.reattach !== false && kind !== 'bus-closed') this.startSearching();
  }

  /**
   * Looks for the VM now and then on a timer until it is back. Over QMP nothing says when a QEMU
   * comes, so the look repeats every reattachPollMs. On a bus, arrivals.ts says it (lookNow), and
   * the timer is only the backstop for a QEMU that arrived but was not ready at that look: its
   * period doubles up to REATTACH_POLL_MAX_MS (a VM shut down for the night cost a bridge four
   * D-Bus look-ups a second, as much CPU as playing silence) and starts again at each arrival.
   */
  private startSearching(): void {
    if (this.pollTimer) return;
    this.pollMs = this.opts.reattachPollMs ?? 250;
    this.armPoll();
    void this.search();
  }

  private armPoll(): void {
    this.pollTimer = setTimeout(() => {
      if (!this.attachment.p2p) this.pollMs = Math.max(this.pollMs, Math.min(this.pollMs * 2, REATTACH_POLL_MAX_MS));
      this.armPoll();
      void this.search();
    }, this.pollMs);
  }

  /** A QEMU arrived: if the look it prompts comes too early, the next ones come soon. */
  private lookSoonAgain(): void {
    const base = this.opts.reattachPollMs ?? 250;
    if (!this.pollTimer || this.pollMs <= base) return;
    clearTimeout(this.pollTimer);
    this.pollMs = base;
    this.armPoll();
  }

  private stopSearching(): void {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** The VM we look for: the caller's choice, else this one's UUID (or name without -uuid). */
  private selectorForReattach(): VmSelector {
    if (this.opts.uuid !== undefined || this.opts.name !== undefined) return { uuid: this.opts.uuid, name: this.opts.name };
    return hasRealUuid(this.vmInfo.uuid) ? { uuid: this.vmInfo.uuid } : { name: this.vmInfo.name };
  }

  private async search(): Promise<void> {
    if (this.attachedFlag || this.closed) return;
    if (this.searching) {
      this.lookAgain = true;
      return;
    }
    this.searching = true;
    try {
      do {
        this.lookAgain = false;
        try {
          const info = await this.attachment.find(this.selectorForReattach());
          if (info) await this.reattach(info);
        } catch {
          // keep polling: the new QEMU may still be starting
        }
      } while (this.lookAgain && !this.attachedFlag && !this.closed);
    } finally {
      this.searching = false;
    }
  }

  private async reattach(info: VmInfo): Promise<void> {
    if (this.attachment.p2p) this.consoles.clear();
    this.caps = await detectCapabilities(this.link, { p2p: this.attachment.p2p, timeoutMs: 5000 });
    this.vmInfo = info;
    this.attachedFlag = true;
    this.stopSearching();
    this.liveness.start();
    await this.registered.registerAll();
    this.emit('reattached', this.vmInfo);
  }
}

export { AUDIO_PATH };
