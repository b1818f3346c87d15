// QemuVm: one attached VM. Connection, discovery, listener registration, liveness and
// re-attach live here; the per-interface modules only translate calls.
//
// Lifecycle:
//   connect() -> 'attached'
//   the VM's unique name vanishes (NameOwnerChanged), a listener socket hits EOF, or a
//   liveness read says the name has no owner -> every listener socket is closed, handlers get
//   fini()/disable() for what was open -> 'vm-gone'
//   a QEMU with the same UUID (or, without -uuid, the same name) shows up on the bus ->
//   every listener added through this object is registered again -> 'reattached'
//   a liveness read (Properties.Get, not Ping: GDBus answers Ping from its worker thread even
//   while QEMU's main loop is blocked) times out -> 'error' with EQEMU_UNRESPONSIVE, and
//   'responsive' once it answers again.
import { EventEmitter } from 'events';
import type * as dbus from 'dbus-native';
import { AUDIO_PATH, QemuAudio } from './audio';
import { audioInOptions, audioOutOptions, VoiceSet } from './audio-listeners';
import { openBus, defaultBusAddress, type BusConnection } from './bus';
import { detectCapabilities, type Capabilities } from './capabilities';
import { QemuConsole } from './console';
import { consoleListenerOptions } from './console-listener';
import { ConsoleShare } from './console-share';
import { discoverVms, hasRealUuid, matchesSelector, pickVm, QEMU_BUS_NAME, type FoundVm, type VmSelector } from './discovery';
import { QemuDbusError, errorText, isQemuDbusError } from './errors';
import type { AudioInHandler, AudioOutHandler, ConsoleListenerHandler } from './handlers';
import { connectP2pMain, connectP2pOnFd, type P2pMainConnection } from './p2p-main';
import { serveListener, type PeerListener, type PeerListenerOptions, type PeerListenerStats } from './peer-listener';
import { onSignal, RemoteCallError, RemoteObject, type QemuLink } from './remote-object';
import { readVmIdentity, VM_IFACE, VM_PATH } from './vm-object';

export interface ConnectOptions extends VmSelector {
  /** D-Bus address (unix:path=...); default $DBUS_SESSION_BUS_ADDRESS */
  busAddress?: string;
  /** bus-less mode: QMP socket of a QEMU started with -display dbus,p2p=yes */
  qmpPath?: string;
  /**
   * bus-less mode with another way to get the socket QEMU serves on (libvirt's
   * virDomainOpenGraphics): `open` resolves with our end; `where` names it in messages. Used
   * like qmpPath after the add_client, again on every re-attach.
   */
  p2pSource?: { open: (timeoutMs: number) => Promise<number>; where: string };
  /** liveness read period; 0 disables. Default 1000 ms */
  livenessIntervalMs?: number;
  /** a liveness read slower than this reports EQEMU_UNRESPONSIVE. Default 3000 ms */
  livenessTimeoutMs?: number;
  /** look for the VM again after it went away. Default true */
  reattach?: boolean;
  /** how often to look while the VM is gone. Default 250 ms */
  reattachPollMs?: number;
  /** deadline of ordinary calls. Default 10 s */
  callTimeoutMs?: number;
}

export interface VmInfo {
  name: string;
  uuid: string;
  /** unique bus name; undefined in bus-less mode */
  uniqueName: string | undefined;
  consoleIds: number[];
  busAddress: string | undefined;
  p2p: boolean;
}

export interface QemuVmEvents {
  attached: [info: VmInfo];
  /** `kind` is the machine-readable form of `reason` */
  'vm-gone': [info: VmInfo, reason: string, kind: VmGoneKind];
  reattached: [info: VmInfo];
  error: [err: QemuDbusError];
  /** liveness recovered after an EQEMU_UNRESPONSIVE */
  responsive: [info: VmInfo];
}

export type ListenerKind = 'console' | 'audio-out' | 'audio-in';

/** Why the VM is considered gone. 'bus-closed' is ours, not the VM's: nothing comes back on it. */
export type VmGoneKind = 'name-vanished' | 'listener-eof' | 'no-owner' | 'bus-closed' | 'p2p-closed';

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

class Registration implements ListenerHandle {
  peer: PeerListener | undefined;
  registrations = 0;
  removed = false;
  lastSelfHeal = 0;
  /** the first refused/failed call was reported; the rest are only counted in `stats` */
  warned = false;
  readonly voices = new VoiceSet();
  /** Console Width/Height subscription of the current registration (console listeners only). */
  unsubscribeSize: (() => Promise<void>) | undefined;

  constructor(
    readonly kind: ListenerKind,
    readonly consoleId: number,
    readonly handler: ConsoleListenerHandler | AudioOutHandler | AudioInHandler,
    private readonly owner: QemuVm,
  ) {}

  get active(): boolean {
    return this.peer !== undefined && !this.peer.isClosed;
  }
  get stats(): PeerListenerStats | undefined {
    return this.peer?.stats;
  }

  options(): PeerListenerOptions {
    switch (this.kind) {
      case 'console':
        return consoleListenerOptions(this.handler as ConsoleListenerHandler);
      case 'audio-out':
        return audioOutOptions(this.handler as AudioOutHandler, this.voices);
      case 'audio-in':
        return audioInOptions(this.handler as AudioInHandler, this.voices);
    }
  }

  /** Tell the handler its stream is over (the VM or the listener went away). */
  detachHandler(): void {
    try {
      if (this.kind === 'console') (this.handler as ConsoleListenerHandler).disable();
      else for (const id of this.voices.ids) (this.handler as AudioOutHandler).fini(id);
    } catch {
      /* handler bugs must not stop the teardown of the others */
    }
    this.voices.ids.clear();
  }

  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    this.owner.dropRegistration(this);
    const unsubscribe = this.unsubscribeSize;
    this.unsubscribeSize = undefined;
    await unsubscribe?.().catch(() => undefined);
    const p = this.peer;
    this.peer = undefined;
    if (p) {
      p.close();
      this.detachHandler();
    }
    await Promise.resolve();
  }
}

/** One user of a console's shared registration (a display handler or a dead-man's switch). */
class ConsoleMember implements ListenerHandle {
  readonly kind = 'console' as const;
  private removed = false;

  constructor(
    private readonly r: Registration,
    private readonly share: ConsoleShare,
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
    if (!this.display) this.share.holds--;
    else if (this.share.displayHandler === this.display) {
      this.share.setDisplay(undefined);
      try {
        this.display.disable(); // its stream is over, as if the listener had closed
      } catch {
        /* handler bugs must not stop the removal */
      }
    }
    // The last user closes the connection (QEMU then lifts the console's keys).
    if (this.share.empty) await this.r.remove();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class QemuVm extends EventEmitter<QemuVmEvents> {
  /** Mutable on purpose: proxies handed out keep working after a re-attach. */
  readonly link: QemuLink;
  private busConn: BusConnection | undefined;
  private p2pConn: P2pMainConnection | undefined;
  private vmInfo: VmInfo;
  private caps: Capabilities;
  private readonly regs = new Set<Registration>();
  private attachedFlag = true;
  private closed = false;
  private livenessTimer: NodeJS.Timeout | undefined;
  private livenessBusy = false;
  private unresponsive = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private searching = false;
  private readonly consoles = new Map<number, QemuConsole>();
  private unsubscribeOwner: (() => void) | undefined;

  private constructor(
    private readonly opts: ConnectOptions,
    link: QemuLink,
    info: VmInfo,
    caps: Capabilities,
  ) {
    super();
    this.link = link;
    this.vmInfo = info;
    this.caps = caps;
  }

  /** Find the VM (bus) or take over QEMU's p2p socket (qmpPath), and attach. */
  static async connect(opts: ConnectOptions = {}): Promise<QemuVm> {
    const timeout = opts.callTimeoutMs ?? 10_000;
    if (opts.qmpPath || opts.p2pSource) {
      const p2p = await openP2p(opts, timeout);
      const link: QemuLink = { bus: p2p.bus, destination: undefined, canPassFds: true };
      try {
        const id = await readVmIdentityChecked(link, timeout, p2pWhere(opts));
        const caps = await detectCapabilities(link, { p2p: true, timeoutMs: timeout });
        const vm = new QemuVm(opts, link, { ...id, uniqueName: undefined, busAddress: undefined, p2p: true }, caps);
        vm.p2pConn = p2p;
        vm.watchP2p();
        vm.startLiveness();
        setImmediate(() => vm.emit('attached', vm.vmInfo));
        return vm;
      } catch (e) {
        await p2p.close();
        throw e;
      }
    }
    const address = opts.busAddress ?? defaultBusAddress();
    const conn = await openBus(address, timeout);
    try {
      const found = pickVm(await discoverVms(conn.bus, timeout), opts, address);
      const link: QemuLink = { bus: conn.bus, destination: found.uniqueName, canPassFds: true };
      const caps = await detectCapabilities(link, { p2p: false, timeoutMs: timeout });
      const vm = new QemuVm(opts, link, infoOf(found, address), caps);
      vm.busConn = conn;
      await vm.watchBus();
      vm.startLiveness();
      setImmediate(() => vm.emit('attached', vm.vmInfo));
      return vm;
    } catch (e) {
      await conn.close();
      throw e;
    }
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

  /** The Audio object; ENO_AUDIO when QEMU runs without `audiodev=` on -display dbus. */
  audio(): QemuAudio {
    this.requireAudio();
    return new QemuAudio(this.link);
  }

  async addConsoleListener(handler: ConsoleListenerHandler, opts: { console?: number } = {}): Promise<ListenerHandle> {
    return this.joinConsole(opts.console ?? this.vmInfo.consoleIds[0] ?? 0, handler);
  }

  /**
   * A dead-man's switch for keys sent to a console's Keyboard: keeps a console listener registered
   * (sharing the display's, if there is one) so that QEMU lifts every key pressed through that
   * console when this process goes away without releasing them (SIGKILL, OOM, crash). QEMU lifts
   * keys only: mouse buttons are not (the input route releases them at every attach). Re-registered
   * on re-attach like every listener; remove() when no more keys will be sent.
   */
  async addDeadMansSwitch(opts: { console?: number } = {}): Promise<ListenerHandle> {
    return this.joinConsole(opts.console ?? this.vmInfo.consoleIds[0] ?? 0, undefined);
  }

  private async joinConsole(consoleId: number, display: ConsoleListenerHandler | undefined): Promise<ListenerHandle> {
    const shares = [...this.regs].filter((x) => x.kind === 'console' && x.consoleId === consoleId && !x.removed);
    // A dead-man's switch joins any registration of the console; a display takes one that has none.
    const r = display ? shares.find((x) => !(x.handler as ConsoleShare).displayHandler) : shares[0];
    if (!r) {
      const share = new ConsoleShare();
      if (display) share.setDisplay(display);
      else share.holds++;
      const fresh = new Registration('console', consoleId, share, this);
      await this.add(fresh);
      return new ConsoleMember(fresh, share, display);
    }
    const share = r.handler as ConsoleShare;
    if (!display) {
      share.holds++;
      return new ConsoleMember(r, share, undefined);
    }
    share.setDisplay(display);
    // QEMU sends the full frame only at registration: register again so the display gets its
    // first Scanout (QEMU lifts the console's held keys on the way; a held key may end early,
    // never late).
    if (r.active) await this.reregister(r);
    return new ConsoleMember(r, share, display);
  }

  /** Close the current connection of `r` and register it again (not a teardown: handlers stay). */
  private async reregister(r: Registration): Promise<void> {
    const old = r.peer;
    r.peer = undefined; // onListenerClosed ignores a peer that is no longer current
    old?.close();
    await this.register(r); // retries 7.2's "already registered" until QEMU saw the EOF
  }

  /**
   * Resolves once QEMU accepted the listener. Its Init/SetEnabled replay for existing voices comes
   * later: QEMU 7.2 first reads our listener's properties (GetAll) on the new connection and sends
   * them only after that answer, so a caller must wait for Init rather than expect it here.
   */
  async addAudioOutListener(handler: AudioOutHandler): Promise<ListenerHandle> {
    this.requireAudio();
    return this.add(new Registration('audio-out', 0, handler, this));
  }

  async addAudioInListener(handler: AudioInHandler): Promise<ListenerHandle> {
    this.requireAudio();
    return this.add(new Registration('audio-in', 0, handler, this));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopLiveness();
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.unsubscribeOwner?.();
    for (const r of [...this.regs]) await r.remove();
    await this.busConn?.close();
    await this.p2pConn?.close();
  }

  /** @internal */
  dropRegistration(r: Registration): void {
    this.regs.delete(r);
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

  private async add(r: Registration): Promise<ListenerHandle> {
    if (this.closed) throw new Error('QemuVm is closed');
    this.regs.add(r);
    if (this.attachedFlag) {
      try {
        await this.register(r);
      } catch (e) {
        this.regs.delete(r);
        throw e;
      }
    }
    return r;
  }

  /** Serve + Register*, retrying 7.2's "already registered" until QEMU saw the old socket's EOF. */
  private async register(r: Registration): Promise<void> {
    const link = this.link;
    const timeout = this.opts.callTimeoutMs ?? 10_000;
    const call = (fd: number): Promise<void> => {
      switch (r.kind) {
        case 'console':
          return this.console(r.consoleId).proxy.registerListener(fd, { timeoutMs: timeout });
        case 'audio-out':
          return new QemuAudio(link).proxy.registerOutListener(fd, { timeoutMs: timeout });
        case 'audio-in':
          return new QemuAudio(link).proxy.registerInListener(fd, { timeoutMs: timeout });
      }
    };
    let attempt = 0;
    for (;;) {
      try {
        const peer = await serveListener(r.options(), call);
        r.peer = peer;
        r.registrations++;
        peer.on('closed', (cause) => this.onListenerClosed(r, peer, cause));
        peer.on('warning', (err) => this.listenerWarning(r, err));
        if (r.kind === 'console') await this.followConsoleSize(r);
        return;
      } catch (e) {
        const already = e instanceof RemoteCallError && e.dbusName === 'org.qemu.Display1.Error.Invalid' && /already registered/i.test(e.message);
        if (already && attempt < 20 && !r.removed) {
          attempt++;
          await sleep(100);
          continue;
        }
        throw this.registrationError(r, e);
      }
    }
  }

  /**
   * QEMU 7.2 announces VGA text mode (720x400) only through the Console Width/Height properties,
   * never with a Scanout, and the registration Scanout may describe an older surface: a display
   * handler that sizes its framebuffer needs both. Subscribed anew on every registration because a
   * re-attach may bring a new bus connection.
   */
  private async followConsoleSize(r: Registration): Promise<void> {
    const handler = r.handler as ConsoleListenerHandler;
    if (!handler.consoleSize) return;
    const previous = r.unsubscribeSize;
    r.unsubscribeSize = undefined;
    await previous?.().catch(() => undefined);
    const console = this.console(r.consoleId);
    try {
      r.unsubscribeSize = await console.onSizeChanged((w, h) => {
        if (!r.removed) handler.consoleSize?.(w, h);
      });
      const { width, height } = await console.size(this.opts.callTimeoutMs ?? 10_000);
      if (!r.removed) handler.consoleSize(width, height);
    } catch (e) {
      // The listener works without it (Scanouts still size the picture); say why text mode may not.
      this.emitError(new QemuDbusError('ELISTENER', `reading the size of console ${r.consoleId} failed: ${errorText(e)}`, 'VGA text mode may show cropped until the guest switches mode'));
    }
  }

  private registrationError(r: Registration, e: unknown): Error {
    if (isQemuDbusError(e)) return e;
    const name = e instanceof RemoteCallError ? e.dbusName : undefined;
    if (name === 'org.freedesktop.DBus.Error.UnknownMethod' || name === 'org.freedesktop.DBus.Error.UnknownObject' || name === 'org.freedesktop.DBus.Error.UnknownInterface') {
      if (r.kind !== 'console' && this.caps.audio === false) {
        return new QemuDbusError('ENO_AUDIO', `VM "${this.vmInfo.name}" has no Audio object`, 'add audiodev=<id> to -display dbus');
      }
      return new QemuDbusError('EQEMU_UNSUPPORTED', `registering the ${r.kind} listener failed: ${errorText(e)}`, 'use a QEMU >= 7.0 with -display dbus', { cause: e, dbusName: name });
    }
    return new QemuDbusError('ELISTENER', `registering the ${r.kind} listener with VM "${this.vmInfo.name}" failed: ${errorText(e)}`, 'check QEMU is running and its stderr; retry', { cause: e, dbusName: name });
  }

  /** A call QEMU made was refused or its handler threw: say so once, the connection stays up. */
  private listenerWarning(r: Registration, err: Error): void {
    if (r.warned) return;
    r.warned = true;
    this.emitError(
      new QemuDbusError('ELISTENER_CALL', `the ${r.kind} listener of VM "${this.vmInfo.name}" refused or failed a call from QEMU (${errorText(err)}); further ones are only counted`, 'nothing to do unless the guest misbehaves; report it with the QEMU version if it repeats'),
    );
  }

  private onListenerClosed(r: Registration, peer: PeerListener, cause: Error | undefined): void {
    if (r.peer !== peer) return;
    r.peer = undefined;
    r.detachHandler();
    if (this.closed || r.removed) return;
    // A listener socket EOF with the VM still attached: either QEMU died (NameOwnerChanged
    // follows) or it dropped just this listener. Check the VM rather than guess.
    if (this.attachedFlag) void this.checkAliveAfterEof(r, cause);
  }

  private async checkAliveAfterEof(r: Registration, cause?: Error): Promise<void> {
    const alive = await this.probe();
    if (alive === 'gone') return this.markGone('listener socket closed and the VM no longer answers', 'listener-eof');
    if (alive === 'stuck') {
      // Neither gone nor answering: ask again later rather than leave the listener dead.
      const t = setTimeout(() => {
        if (this.attachedFlag && !this.closed && !r.removed && !r.active) void this.checkAliveAfterEof(r);
      }, 1000);
      t.unref();
      return;
    }
    if (alive === 'ok' && this.attachedFlag && !r.removed && !r.active) {
      // QEMU is alive but dropped us (or sent something unparsable): register again, but not in
      // a loop — a second drop within 5 s is reported instead.
      const now = Date.now();
      if (now - r.lastSelfHeal < 5000) {
        this.emitError(new QemuDbusError('ELISTENER', `VM "${this.vmInfo.name}" dropped the ${r.kind} listener twice within 5 s`, 'check QEMU stderr; remove and add the listener again'));
        return;
      }
      r.lastSelfHeal = now;
      this.emitError(
        new QemuDbusError('ELISTENER_DROPPED', `VM "${this.vmInfo.name}" is running but the ${r.kind} listener connection closed (${cause ? errorText(cause) : 'end of stream'}); registering it again`, 'nothing to do if it does not repeat; otherwise report it with the QEMU version'),
      );
      try {
        await this.register(r);
      } catch (e) {
        this.emitError(e);
      }
    }
  }

  /** 'ok' | 'gone' (no owner / connection closed) | 'stuck' (timeout) */
  private async probe(): Promise<'ok' | 'gone' | 'stuck'> {
    const timeout = this.opts.livenessTimeoutMs ?? 3000;
    try {
      await new RemoteObject(this.link, VM_PATH).getProperty(VM_IFACE, 'Name', timeout);
      return 'ok';
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause;
      if (cause?.code === 'ETIMEDOUT') return 'stuck';
      return 'gone';
    }
  }

  private startLiveness(): void {
    const every = this.opts.livenessIntervalMs ?? 1000;
    if (every <= 0) return;
    this.livenessTimer = setInterval(() => void this.livenessTick(), every);
    this.livenessTimer.unref();
  }

  private stopLiveness(): void {
    if (this.livenessTimer) clearInterval(this.livenessTimer);
    this.livenessTimer = undefined;
  }

  private async livenessTick(): Promise<void> {
    if (this.livenessBusy || !this.attachedFlag || this.closed) return;
    this.livenessBusy = true;
    try {
      const r = await this.probe();
      if (!this.attachedFlag || this.closed) return;
      if (r === 'stuck' && !this.unresponsive) {
        this.unresponsive = true;
        this.emitError(
          new QemuDbusError(
            'EQEMU_UNRESPONSIVE',
            `VM "${this.vmInfo.name}" did not answer a property read within ${this.opts.livenessTimeoutMs ?? 3000} ms (main loop blocked or process stopped)`,
            'check that QEMU is not stopped (SIGSTOP) or stuck on a client; it recovers by itself when its main loop runs again',
          ),
        );
      } else if (r === 'ok' && this.unresponsive) {
        this.unresponsive = false;
        this.emit('responsive', this.vmInfo);
      } else if (r === 'gone') {
        this.markGone('the VM stopped answering (no owner)', 'no-owner');
      }
    } finally {
      this.livenessBusy = false;
    }
  }

  private emitError(e: unknown): void {
    const err = isQemuDbusError(e) ? e : new QemuDbusError('ELISTENER', errorText(e), 'see the message', { cause: e });
    // 'error' without a listener would throw: a library must not crash its host for this.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private markGone(reason: string, kind: VmGoneKind): void {
    if (!this.attachedFlag || this.closed) return;
    this.attachedFlag = false;
    this.unresponsive = false;
    for (const r of this.regs) {
      const p = r.peer;
      r.peer = undefined;
      if (p) {
        p.close();
        r.detachHandler();
      }
    }
    this.emit('vm-gone', this.vmInfo, reason, kind);
    if (this.opts.reattach !== false) this.startSearching();
  }

  // ---- bus mode -----------------------------------------------------------------------------

  private async watchBus(): Promise<void> {
    const bus = this.link.bus;
    const rule = "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'";
    await bus.addMatch(rule);
    // Only the bus itself may say a name vanished: a fake one from another peer would tear down
    // every route and release the grab.
    this.unsubscribeOwner = onSignal(bus, { sender: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', iface: 'org.freedesktop.DBus', member: 'NameOwnerChanged' }, (body) => {
      const [name, , newOwner] = body as [unknown, unknown, unknown];
      if (this.closed || typeof name !== 'string') return;
      if (name === this.link.destination && newOwner === '' && this.attachedFlag) this.markGone(`QEMU's bus name ${name} vanished`, 'name-vanished');
      else if (!this.attachedFlag && (name === QEMU_BUS_NAME || name.startsWith(':'))) void this.search();
    });
    const onClose = (): void => {
      if (this.closed) return;
      this.markGone('the bus connection closed', 'bus-closed');
      this.emitError(new QemuDbusError('EBUS_UNREACHABLE', `lost the D-Bus connection to ${this.vmInfo.busAddress ?? '?'}`, 'restart the bridge once the bus is back'));
      if (this.pollTimer) clearInterval(this.pollTimer);
    };
    bus.connection.on('close', onClose);
    bus.connection.on('end', onClose);
  }

  private startSearching(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => void this.search(), this.opts.reattachPollMs ?? 250);
    void this.search();
  }

  private selectorForReattach(): VmSelector {
    if (this.opts.uuid !== undefined || this.opts.name !== undefined) return { uuid: this.opts.uuid, name: this.opts.name };
    return hasRealUuid(this.vmInfo.uuid) ? { uuid: this.vmInfo.uuid } : { name: this.vmInfo.name };
  }

  private async search(): Promise<void> {
    if (this.searching || this.attachedFlag || this.closed) return;
    this.searching = true;
    try {
      if (this.p2pConn || this.opts.qmpPath || this.opts.p2pSource) return await this.searchP2p();
      const found = await discoverVms(this.link.bus, 2000);
      const sel = this.selectorForReattach();
      const hit = found.vms.find((v) => matchesSelector(v, sel));
      if (!hit) return;
      this.link.destination = hit.uniqueName;
      await this.reattach(infoOf(hit, this.vmInfo.busAddress ?? ''), false);
    } catch {
      // keep polling: the new QEMU may still be starting
    } finally {
      this.searching = false;
    }
  }

  private async reattach(info: VmInfo, p2p: boolean): Promise<void> {
    this.caps = await detectCapabilities(this.link, { p2p, timeoutMs: 5000 });
    this.vmInfo = info;
    this.attachedFlag = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    for (const r of [...this.regs]) {
      try {
        await this.register(r);
      } catch (e) {
        this.emitError(e);
      }
    }
    this.emit('reattached', this.vmInfo);
  }

  // ---- bus-less mode ------------------------------------------------------------------------

  private watchP2p(): void {
    const conn = this.p2pConn;
    if (!conn) return;
    const onClose = (): void => {
      if (this.closed || this.p2pConn !== conn) return;
      this.markGone('the p2p connection to QEMU closed', 'p2p-closed');
    };
    conn.bus.connection.on('close', onClose);
    conn.bus.connection.on('end', onClose);
  }

  private async searchP2p(): Promise<void> {
    let conn: P2pMainConnection;
    try {
      conn = await openP2p(this.opts, 2000);
    } catch {
      return;
    }
    const old = this.p2pConn;
    this.link.bus = conn.bus;
    this.link.destination = undefined;
    this.p2pConn = conn;
    this.consoles.clear();
    await old?.close().catch(() => undefined);
    try {
      const id = await readVmIdentity(this.link, 3000);
      if (!matchesSelector(id, this.selectorForReattach())) {
        await conn.close();
        return;
      }
      this.watchP2p();
      await this.reattach({ ...id, uniqueName: undefined, busAddress: undefined, p2p: true }, true);
    } catch {
      await conn.close().catch(() => undefined);
    }
  }
}

/** The main p2p connection: through QMP add_client, or from the caller's source (libvirt). */
async function openP2p(opts: ConnectOptions, timeoutMs: number): Promise<P2pMainConnection> {
  if (opts.p2pSource) return connectP2pOnFd(await opts.p2pSource.open(timeoutMs), opts.p2pSource.where, timeoutMs);
  return connectP2pMain(opts.qmpPath!, timeoutMs);
}

function p2pWhere(opts: ConnectOptions): string {
  return opts.p2pSource?.where ?? `QMP socket ${opts.qmpPath}`;
}

function infoOf(found: FoundVm, address: string): VmInfo {
  return { name: found.name, uuid: found.uuid, uniqueName: found.uniqueName, consoleIds: found.consoleIds, busAddress: address, p2p: false };
}

async function readVmIdentityChecked(link: QemuLink, timeoutMs: number, where: string): Promise<{ name: string; uuid: string; consoleIds: number[] }> {
  try {
    return await readVmIdentity(link, timeoutMs);
  } catch (e) {
    throw new QemuDbusError('EQEMU_UNSUPPORTED', `${where}: no org.qemu.Display1.VM (${errorText(e)})`, 'use a QEMU >= 7.0 with -display dbus', { cause: e });
  }
}

export { AUDIO_PATH };
