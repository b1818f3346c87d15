// Route adapter: host evdev devices and replay streams -> the VM's keyboard and mouse
// (src/input InputBridge over createDbusVmInput). The bridge releases every held key on the way
// out; this adapter follows the VM across restarts (setVm(null) while it is gone, so nothing
// stays grabbed with nowhere to send it) and reports device count and grab state.
// For the ways out that run no code (SIGKILL, OOM, a crash) it holds a dead-man's switch on the
// console it types into: a console listener whose disconnection makes QEMU lift every key held
// (QemuVm.addDeadMansSwitch); buttons are released by the bridge at every attach instead.
import type { BridgeConfig } from '../../config/schema';
import type { ListenerHandle } from '../../qemu';
import { InputBridge } from '../../input/bridge';
import { createDbusVmInput, type DbusVmInput } from '../../input/dbus-vm-input';
import type { QemuSession } from '../attach';
import type { GrabRequest, HandOverPort, InputCounters, Route, RouteContext } from '../route';

export class InputRoute implements Route<QemuSession> {
  readonly name = 'input' as const;
  private bridge: InputBridge | undefined;
  private vmInput: DbusVmInput | undefined;
  private unsubscribe: (() => void) | undefined;
  private deadMan: ListenerHandle | undefined;
  private nextHandler: ((stampUs: number, forwarding: boolean) => void) | undefined;
  private saidNoRing = false;
  readonly handOver: HandOverPort = {
    onNext: (h) => (this.nextHandler = h),
    release: async () => this.bridge?.releaseForHandOver(),
    takeOver: (stampUs) => {
      if (!this.bridge) return false;
      this.bridge.takeOver(stampUs);
      return true;
    },
    forwardingAt: (stampUs) => this.bridge?.forwardingAtNext(stampUs) ?? false,
  };

  constructor(private readonly config: BridgeConfig) {}

  async start(ctx: RouteContext<QemuSession>): Promise<void> {
    const i = this.config.input;
    const bridge = new InputBridge({
      inputs: i.devices,
      replay: i.replay,
      grabToggle: i.grab_toggle,
      grabNext: i.grab_next,
      // Devices handed along a ring start with the host: the first grab-next press gives them out.
      startInHost: i.grab_next !== 'none',
      onGrabNext: (stampUs, forwarding) => {
        if (this.nextHandler) return this.nextHandler(stampUs, forwarding);
        if (this.saidNoRing) return;
        this.saidNoRing = true;
        ctx.log.warn('the grab-next hotkey does nothing here: the status is not on the session bus, so the other bridges cannot be reached (see the "status is unavailable" line; --grab-toggle still works)');
      },
      grab: i.grab,
      log: ctx.log,
      // Hot-plug and grab flips are this route's state changes: reported as they happen.
      onChange: () => ctx.statusChanged(),
    });
    this.bridge = bridge;
    // [input] console / --input-console, else the first graphic console; ECONSOLE_UNKNOWN names those there are.
    const console = await ctx.vm.qemu.chooseConsole(i.console, '--input-console');
    // Before the first key is sent: from then on a dead bridge leaves nothing pressed.
    this.deadMan = await ctx.vm.qemu.addDeadMansSwitch({ console: console.id }).catch((err: Error) => {
      ctx.log.warn(`no dead-man's switch on console ${console.id} (${err.message}): keys held when the bridge is killed may stay pressed in the guest`);
      return undefined;
    });
    bridge.start();
    await this.connectVm(ctx);
    this.unsubscribe = ctx.vm.onPresence((p) => {
      if (!p.present) {
        bridge.setVm(null);
        void this.vmInput?.close();
        this.vmInput = undefined;
      } else {
        this.connectVm(ctx).catch((err: Error) => ctx.fail(err));
      }
      ctx.statusChanged();
    });
  }

  private async connectVm(ctx: RouteContext<QemuSession>): Promise<void> {
    // Chosen again after a VM restart: the console list comes from the VM that is there now.
    const console = await ctx.vm.qemu.chooseConsole(this.config.input.console, '--input-console');
    const vmInput = await createDbusVmInput(console, { multiTouch: ctx.vm.qemu.capabilities.multiTouch });
    if (ctx.signal.aborted) {
      await vmInput.close();
      return;
    }
    await this.vmInput?.close();
    this.vmInput = vmInput;
    this.bridge?.setVm(vmInput);
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    // Releases every key and button still down in the guest, then lets go of the devices.
    await this.bridge?.stop();
    this.bridge = undefined;
    await this.deadMan?.remove();
    this.deadMan = undefined;
    await this.vmInput?.close();
    this.vmInput = undefined;
  }

  stats(): InputBridge['stats'] {
    return this.bridge?.stats;
  }

  /** Replay streams cannot be grabbed: "grabbed" only when a real device is. */
  private grabbed(b: InputBridge): boolean {
    return this.config.input.grab && b.forwardMode === 'guest' && b.sources().some((s) => s.canGrab);
  }

  status(): string {
    const b = this.bridge;
    if (!b) return 'input';
    const n = b.sources().length;
    const grabbable = b.sources().some((s) => s.canGrab);
    const grab = !this.config.input.grab || !grabbable ? 'not grabbed' : this.grabbed(b) ? 'grabbed' : 'released to host';
    return `input ${n} device${n === 1 ? '' : 's'}, ${grab}`;
  }

  counters(): InputCounters {
    const b = this.bridge;
    const st = b?.stats;
    const devices = b?.sources().map((s) => s.path) ?? [];
    return {
      route: 'input',
      target: devices.length ? devices.join(', ') : [...this.config.input.devices, ...this.config.input.replay].join(', '),
      devices,
      forwardTo: b?.forwardMode ?? 'guest',
      grabbed: b ? this.grabbed(b) : false,
      forwarded: st ? st.keysForwarded + st.buttonsForwarded + st.motions + st.wheelNotches + st.touchEvents : 0,
      dropped: st ? st.dropped + st.touchesDropped : 0,
      lastError: b?.lastError ?? '',
      ringOrder: this.config.input.ring_order,
    };
  }

  setGrab(want: GrabRequest): boolean | undefined {
    const b = this.bridge;
    if (!b) return undefined;
    const mode = want === 'grab' ? 'guest' : want === 'release' ? 'host' : b.forwardMode === 'guest' ? 'host' : 'guest';
    b.setForwardMode(mode);
    return b.forwardMode === 'guest';
  }
}
