// The listeners added through one QemuVm: registering them (and again after a re-attach),
// sharing a console's listener, and what happens when a listener connection closes while the
// VM is attached (check the VM, then register again once, or report).
import { errorCode } from '../../errors';
import type { QemuConsole } from '../console';
import { QemuDbusError, errorText, isQemuDbusError } from '../errors';
import type { ConsoleListenerHandler, AudioInHandler, AudioOutHandler } from '../handlers';
import { serveListener, type PeerListener } from '../peer-listener';
import { RemoteCallError, type QemuLink } from '../remote-object';
import type { Probe } from './liveness';
import { AudioInRegistration, AudioOutRegistration, ConsoleMember, ConsoleRegistration, type ListenerHandle, type Registration, type RegistrationContext } from './registration';

/** What the set needs from the VM façade. */
export interface ListenerSetHost {
  readonly link: QemuLink;
  readonly callTimeoutMs: number;
  vmName(): string;
  isAttached(): boolean;
  isClosed(): boolean;
  /** the VM exports no Audio object */
  audioMissing(): boolean;
  console(id: number): QemuConsole;
  emitError(e: unknown): void;
  probe(): Promise<Probe>;
  /** the VM is gone after all: a listener EOF and no answer */
  listenerEof(): void;
}

/** 7.2 keeps one listener per sender until it has seen the old socket's EOF: retry that long. */
const ALREADY_REGISTERED_RETRIES = 20;
const ALREADY_REGISTERED_PAUSE_MS = 100;
/** a second drop within this long is reported instead of healed */
const SELF_HEAL_WINDOW_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ListenerSet {
  private readonly regs = new Set<Registration>();
  private readonly ctx: RegistrationContext;

  constructor(private readonly host: ListenerSetHost) {
    this.ctx = { link: host.link, callTimeoutMs: host.callTimeoutMs, console: (id) => host.console(id), emitError: (e) => host.emitError(e) };
  }

  addAudioOut(handler: AudioOutHandler): Promise<ListenerHandle> {
    const r: AudioOutRegistration = new AudioOutRegistration(handler, () => this.regs.delete(r));
    return this.add(r);
  }

  addAudioIn(handler: AudioInHandler): Promise<ListenerHandle> {
    const r: AudioInRegistration = new AudioInRegistration(handler, () => this.regs.delete(r));
    return this.add(r);
  }

  /** A display handler or (undefined) a dead-man's switch joins the console's shared listener. */
  async joinConsole(consoleId: number, display: ConsoleListenerHandler | undefined): Promise<ListenerHandle> {
    const shares: ConsoleRegistration[] = [];
    for (const x of this.regs) if (x.kind === 'console' && x.consoleId === consoleId && !x.removed) shares.push(x);
    // A dead-man's switch joins any registration of the console; a display takes one that has none.
    const r = display ? shares.find((x) => !x.share.displayHandler) : shares[0];
    if (!r) {
      const fresh: ConsoleRegistration = new ConsoleRegistration(consoleId, () => this.regs.delete(fresh));
      if (display) fresh.share.setDisplay(display);
      else fresh.share.holds++;
      await this.add(fresh);
      return new ConsoleMember(fresh, display);
    }
    if (!display) {
      r.share.holds++;
      return new ConsoleMember(r, undefined);
    }
    r.share.setDisplay(display);
    // QEMU sends the full frame only at registration: register again so the display gets its
    // first Scanout (QEMU lifts the console's held keys on the way; a held key may end early,
    // never late).
    if (r.active) await this.reregister(r);
    return new ConsoleMember(r, display);
  }

  /** The VM went away: close every connection, handlers hear their streams ended. */
  detachAll(): void {
    for (const r of this.regs) r.closePeer();
  }

  /** A VM is back: register everything again (failures are reported, not thrown). */
  async registerAll(): Promise<void> {
    for (const r of [...this.regs]) {
      try {
        await this.register(r);
      } catch (e) {
        this.host.emitError(e);
      }
    }
  }

  /** performance.now() of QEMU's last call to any listener (-Infinity: none): proof its main loop ran then. */
  heardAt(): number {
    let t = -Infinity;
    for (const r of this.regs) t = Math.max(t, r.heardAt());
    return t;
  }

  async removeAll(): Promise<void> {
    for (const r of [...this.regs]) await r.remove();
  }

  private async add<R extends Registration>(r: R): Promise<R> {
    if (this.host.isClosed()) throw new Error('QemuVm is closed');
    this.regs.add(r);
    if (this.host.isAttached()) {
      try {
        await this.register(r);
      } catch (e) {
        this.regs.delete(r);
        throw e;
      }
    }
    return r;
  }

  /** Close the current connection of `r` and register it again (not a teardown: handlers stay). */
  private async reregister(r: Registration): Promise<void> {
    const old = r.peer;
    r.peer = undefined; // onClosed ignores a peer that is no longer current
    old?.close();
    await this.register(r); // retries 7.2's "already registered" until QEMU saw the EOF
  }

  /** Serve + Register*, retrying 7.2's EALREADY_REGISTERED until QEMU saw the old socket's EOF. */
  private async register(r: Registration): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const peer = await serveListener(r.options(), (fd) => r.register(this.ctx, fd));
        if (r.removed || this.host.isClosed()) {
          // remove()/close() ran while QEMU was taking this connection: it found no peer to
          // close, so close it here or QEMU keeps a listener nobody serves.
          peer.close();
          return;
        }
        r.peer = peer;
        r.registrations++;
        peer.on('closed', (cause) => this.onClosed(r, peer, cause));
        peer.on('warning', (err) => this.warning(r, err));
        await r.accepted(this.ctx);
        return;
      } catch (e) {
        if (errorCode(e) === 'EALREADY_REGISTERED' && attempt < ALREADY_REGISTERED_RETRIES && !r.removed) {
          await sleep(ALREADY_REGISTERED_PAUSE_MS);
          continue;
        }
        throw this.registrationError(r, e);
      }
    }
  }

  private registrationError(r: Registration, e: unknown): Error {
    if (isQemuDbusError(e)) return e;
    const name = e instanceof RemoteCallError ? e.dbusName : undefined;
    if (errorCode(e) === 'EUNKNOWN_MEMBER') {
      if (r.kind !== 'console' && this.host.audioMissing()) {
        return new QemuDbusError('ENO_AUDIO', `VM "${this.host.vmName()}" has no Audio object`, 'add audiodev=<id> to -display dbus');
      }
      return new QemuDbusError('EQEMU_UNSUPPORTED', `registering the ${r.kind} listener failed: ${errorText(e)}`, 'use a QEMU >= 7.0 with -display dbus', { cause: e, dbusName: name });
    }
    return new QemuDbusError('ELISTENER', `registering the ${r.kind} listener with VM "${this.host.vmName()}" failed: ${errorText(e)}`, 'check QEMU is running and its stderr; retry', { cause: e, dbusName: name });
  }

  /** A call QEMU made was refused or its handler threw: say so once, the connection stays up. */
  private warning(r: Registration, err: Error): void {
    if (r.warned) return;
    r.warned = true;
    this.host.emitError(
      new QemuDbusError('ELISTENER_CALL', `the ${r.kind} listener of VM "${this.host.vmName()}" refused or failed a call from QEMU (${errorText(err)}); further ones are only counted`, 'nothing to do unless the guest misbehaves; report it with the QEMU version if it repeats'),
    );
  }

  private onClosed(r: Registration, peer: PeerListener, cause: Error | undefined): void {
    if (r.peer !== peer) return;
    r.peer = undefined;
    r.detach();
    if (this.host.isClosed() || r.removed) return;
    // A listener socket EOF with the VM still attached: either QEMU died (NameOwnerChanged
    // follows) or it dropped just this listener. Check the VM rather than guess.
    if (this.host.isAttached()) void this.checkAliveAfterEof(r, cause);
  }

  private async checkAliveAfterEof(r: Registration, cause?: Error): Promise<void> {
    const alive = await this.host.probe();
    if (alive === 'gone') return this.host.listenerEof();
    const stillDown = (): boolean => this.host.isAttached() && !this.host.isClosed() && !r.removed && !r.active;
    if (alive === 'stuck') {
      // Neither gone nor answering: ask again later rather than leave the listener dead.
      const t = setTimeout(() => {
        if (stillDown()) void this.checkAliveAfterEof(r);
      }, 1000);
      t.unref();
      return;
    }
    if (!stillDown()) return;
    // QEMU is alive but dropped us (or sent something unparsable): register again, but not in
    // a loop — a second drop within 5 s is reported instead.
    const now = Date.now();
    if (now - r.lastSelfHeal < SELF_HEAL_WINDOW_MS) {
      this.host.emitError(new QemuDbusError('ELISTENER', `VM "${this.host.vmName()}" dropped the ${r.kind} listener twice within 5 s`, 'check QEMU stderr; remove and add the listener again'));
      return;
    }
    r.lastSelfHeal = now;
    this.host.emitError(
      new QemuDbusError('ELISTENER_DROPPED', `VM "${this.host.vmName()}" is running but the ${r.kind} listener connection closed (${cause ? errorText(cause) : 'end of stream'}); registering it again`, 'nothing to do if it does not repeat; otherwise report it with the QEMU version'),
    );
    try {
      await this.register(r);
    } catch (e) {
      this.host.emitError(e);
    }
  }
}
