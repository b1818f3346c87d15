// The input route: selected devices (and replay streams) -> forwarder -> VM, with exclusive grab
// while forwarding, the toggle hotkey, LED sync and a clean release on every way out.
//
// Grab state machine, per device: a grab is wanted while forwarding to a VM; it is TAKEN only
// once no key is down on the device (QEMU's input-linux does the same). A key held at that moment
// (the Enter that started the bridge, a held Ctrl at toggle time) must reach the host compositor
// as a release: grabbed, the release would go to the guest only, and the host would auto-repeat
// the key forever. While the grab waits, events are forwarded as usual; after every batch read
// from the device the key state is checked again.
import { InputEventSource, openInputSource } from './device';
import { ForwardMode, InputForwarder } from './forwarder';
import { DEFAULT_HOTKEY, Hotkey, parseHotkey } from './hotkey';
import { DeviceWatcher, InputRule, WatcherDeps, parseInputRule } from './selection';
import type { VmInput } from './vm-input';
import { silentLogger, type Logger } from '../log';

export interface InputBridgeOptions {
  /** --input PATH values and config match rules (see parseInputRule) */
  inputs?: string[];
  /** --input-replay FILE|FIFO values */
  replay?: string[];
  /** --grab-toggle (default ctrl-ctrl; "none" disables toggling) */
  grabToggle?: string;
  /** --grab-next (default none): the hand-over hotkey; firing calls onGrabNext */
  grabNext?: string;
  /**
   * The grab-next hotkey fired (every key up again): `stampUs` identifies that press (its event
   * time), `forwarding` whether input went to this VM then. Called once per press: not when this
   * bridge already took the devices over for that press (takeOver).
   */
  onGrabNext?: (stampUs: number, forwarding: boolean) => void;
  /** --no-grab: forward without EVIOCGRAB (the host sees the input too) */
  grab?: boolean;
  /** forward autorepeat (EV_KEY value 2); default false, the guest repeats on its own */
  autorepeat?: boolean;
  /** start with input released to the host (toggle in with the hotkey) */
  startInHost?: boolean;
  /** State changes (devices in use, grab, forwarding) as info, failures as warnings; never per event. Default: silent. */
  log?: Logger;
  /** A device came or went, or the forwarding mode flipped: called from that event, once per change. */
  onChange?: () => void;
  /** seams for tests: fake /dev/input, fake open, fake fs.watch */
  watcher?: Partial<WatcherDeps>;
}

interface Attached {
  source: InputEventSource;
  id: string;
  replay: boolean;
}

let nextId = 0;

export class InputBridge {
  private readonly rules: InputRule[];
  private readonly attached = new Map<InputEventSource, Attached>();
  /** grab wanted but deferred until the device's keys are all up */
  private readonly grabPending = new Set<InputEventSource>();
  private watcher: DeviceWatcher | undefined;
  private forwarder: InputForwarder | undefined;
  private vm: VmInput | null = null;
  private unsubscribeLeds: (() => void) | undefined;
  private mode: ForwardMode;
  private readonly log: Logger;
  private readonly hotkey: Hotkey | null;
  private readonly nextHotkey: Hotkey | null;
  /** the last grab-next press seen or taken over for, and whether input went to this VM then */
  private lastNext: { stampUs: number; forwarding: boolean } | undefined;
  private eventErrorCount = 0;
  private lastErrorText = '';

  constructor(private readonly opts: InputBridgeOptions) {
    this.rules = (opts.inputs ?? []).map(parseInputRule);
    this.hotkey = parseHotkey(opts.grabToggle ?? DEFAULT_HOTKEY); // throws EINVALIDHOTKEY early
    this.nextHotkey = parseHotkey(opts.grabNext ?? 'none', '--grab-next');
    this.mode = opts.startInHost ? 'host' : 'guest';
    this.log = opts.log ?? silentLogger;
  }

  /** Current forwarding mode */
  get forwardMode(): ForwardMode {
    return this.mode;
  }

  get stats(): InputForwarder['stats'] | undefined {
    return this.forwarder?.stats;
  }

  /** Exceptions caught while handling a device's events (each one's batch is lost, nothing else). */
  get eventErrors(): number {
    return this.eventErrorCount;
  }

  /** The last failure handling, grabbing or syncing a device ('' when none). */
  get lastError(): string {
    return this.lastErrorText;
  }

  /**
   * Grab or release from outside (the status bus), like the hotkey does. Without a VM the mode
   * is remembered and applied when one comes.
   */
  setForwardMode(mode: ForwardMode): void {
    if (this.forwarder) return this.forwarder.setMode(mode); // -> onModeChange
    if (mode === this.mode) return;
    this.mode = mode;
    this.opts.onChange?.();
  }

  /**
   * Hand-over, the old side: input to the host, every key and button held in this VM released and
   * answered by QEMU, devices ungrabbed. Resolves after that, so the next bridge grabs only then.
   */
  async releaseForHandOver(): Promise<void> {
    this.setForwardMode('host');
    await this.forwarder?.settled();
  }

  /**
   * Hand-over, the new side: input to this VM, and the grab-next press `stampUs` marked as
   * handled here (this bridge reads the same stream and will see that press too, maybe later).
   */
  takeOver(stampUs: number): void {
    this.lastNext = { stampUs, forwarding: false };
    this.setForwardMode('guest');
  }

  /** Whether input went to this VM when grab-next press `stampUs` fired (now, if not seen yet). */
  forwardingAtNext(stampUs: number): boolean {
    if (stampUs !== 0 && this.lastNext?.stampUs === stampUs) return this.lastNext.forwarding;
    return this.mode === 'guest';
  }

  private grabNextFired(stampUs: number, forwarding: boolean): void {
    if (stampUs !== 0 && this.lastNext?.stampUs === stampUs) return; // taken over for this press already
    this.lastNext = { stampUs, forwarding };
    this.opts.onGrabNext?.(stampUs, forwarding);
  }

  sources(): InputEventSource[] {
    return [...this.attached.keys()];
  }

  /** Opens devices and replay streams and starts watching for hot-plug. */
  start(): void {
    const open = this.opts.watcher?.open ?? ((p: string) => openInputSource(p, { log: this.log }));
    this.watcher = new DeviceWatcher(
      this.rules,
      { log: this.log, ...this.opts.watcher, open },
      { added: (s) => this.attach(s, false), removed: (s, _p, reason) => this.detachSource(s, reason) },
    );
    this.watcher.start();
    for (const p of this.opts.replay ?? []) {
      const source = open(p);
      this.attach(source, true);
    }
  }

  /** A VM to forward to (attach), or null when it went away (its keys went with it). */
  setVm(vm: VmInput | null): void {
    if (this.forwarder) {
      if (vm === null) this.forwarder.vmGone();
      this.forwarder.dispose();
      this.forwarder = undefined;
    }
    this.unsubscribeLeds?.();
    this.unsubscribeLeds = undefined;
    this.vm = vm;
    if (!vm) {
      this.applyGrab(false); // never keep the user's keyboard grabbed with nowhere to send it
      return;
    }
    this.forwarder = new InputForwarder(vm, {
      hotkey: this.hotkey,
      nextHotkey: this.nextHotkey,
      onNext: (stampUs, forwarding) => this.grabNextFired(stampUs, forwarding),
      autorepeat: this.opts.autorepeat ?? false,
      log: this.log,
      onModeChange: (m) => this.onModeChange(m),
    });
    void this.forwarder.releaseGuestButtons();
    if (this.mode === 'host') this.forwarder.setMode('host');
    for (const a of this.attached.values()) this.addToForwarder(a);
    this.unsubscribeLeds = vm.onModifiers((leds) => this.syncLeds(leds));
    this.applyGrab(this.mode === 'guest');
  }

  /** Bridge stop: every key and button still down in the guest is released, then devices let go. */
  async stop(): Promise<void> {
    this.watcher?.stop();
    this.watcher = undefined;
    if (this.forwarder) {
      await this.forwarder.releaseAll();
      this.forwarder.dispose();
      this.forwarder = undefined;
    }
    this.unsubscribeLeds?.();
    this.grabPending.clear();
    for (const a of [...this.attached.values()]) {
      a.source.close();
      this.attached.delete(a.source);
    }
  }

  /** Waits until the VM has answered every call made so far (tests, bench). */
  async settled(): Promise<void> {
    await this.forwarder?.settled();
  }

  private attach(source: InputEventSource, replay: boolean): void {
    const a: Attached = { source, id: `${source.path}#${nextId++}`, replay };
    this.attached.set(source, a);
    this.addToForwarder(a);
    this.opts.onChange?.();
    // These run from the device's poll callback (native) or a stream's 'data' event: an exception
    // here would reach Node's loop and end the process, so it is caught, counted and told once.
    source.start({
      onEvents: (events) => {
        try {
          this.forwarder?.handleEvents(a.id, events);
          if (this.grabPending.has(source)) this.grabOne(source, true);
        } catch (err) {
          this.eventFailed(source, err);
        }
      },
      onEnd: (reason) => {
        try {
          if (reason !== 'EOF') this.log.info(`${source.path} went away (${reason})`);
          if (replay) this.detachSource(source, reason);
          else this.watcher?.sourceEnded(source, reason);
        } catch (err) {
          this.eventFailed(source, err);
        }
      },
    });
    if (this.vm && this.mode === 'guest') this.grabOne(source, true);
  }

  private eventFailed(source: InputEventSource, err: unknown): void {
    const e = err as { code?: string; message?: string };
    this.lastErrorText = `${source.path}: ${e.code ?? e.message ?? String(err)}`;
    if (this.eventErrorCount++ === 0) {
      const e = err as { code?: string; message?: string };
      this.log.warn(`handling events of ${source.path} failed (${e.code ?? e.message ?? String(err)}); the events were dropped, input goes on (further failures are counted, not logged)`);
    }
  }

  private addToForwarder(a: Attached): void {
    if (!this.forwarder || this.forwarder.hasDevice(a.id)) return;
    const info = a.source.info;
    this.forwarder.addDevice(a.id, { absX: info?.absX, absY: info?.absY, hiResWheel: info?.hiResWheel, touch: info?.touchscreen });
  }

  private detachSource(source: InputEventSource, _reason: string): void {
    const a = this.attached.get(source);
    if (!a) return;
    this.attached.delete(source);
    this.grabPending.delete(source);
    source.close();
    void this.forwarder?.removeDevice(a.id);
    this.opts.onChange?.();
  }

  private onModeChange(mode: ForwardMode): void {
    this.mode = mode;
    this.applyGrab(mode === 'guest');
    this.opts.onChange?.();
  }

  private applyGrab(on: boolean): void {
    if (this.opts.grab === false) return;
    for (const a of this.attached.values()) this.grabOne(a.source, on);
  }

  private grabOne(source: InputEventSource, on: boolean): void {
    if (this.opts.grab === false || !source.canGrab) return;
    try {
      if (on) {
        const held = source.keysDown();
        if (held.length > 0) {
          if (!this.grabPending.has(source)) this.log.info(`${source.path}: key ${held.join(', ')} is down; grabbing once it is released`);
          this.grabPending.add(source);
          return;
        }
      }
      const waited = this.grabPending.delete(source);
      source.grab(on);
      if (on && waited) this.log.info(`${source.path}: no key down any more; grabbed`); // the follow-up to "grabbing once it is released"
      if (on && this.vm) source.setLeds(this.vm.modifiers);
    } catch (err) {
      const code = (err as { code?: string }).code;
      this.lastErrorText = `${on ? 'grabbing' : 'releasing'} ${source.path}: ${code ?? (err as Error).message}`;
      this.log.warn(
        `${on ? 'grabbing' : 'releasing'} ${source.path} failed (${code ?? (err as Error).message})` +
          (code === 'EBUSY' ? ': another program holds it exclusively; input is forwarded but the host sees it too' : ''),
      );
    }
  }

  private syncLeds(leds: number): void {
    if (this.mode !== 'guest' || this.opts.grab === false) return;
    for (const a of this.attached.values()) {
      if (!a.source.canGrab) continue;
      try {
        a.source.setLeds(leds);
      } catch (err) {
        this.log.warn(`LED sync to ${a.source.path} failed (${(err as { code?: string }).code ?? (err as Error).message})`);
      }
    }
  }
}
