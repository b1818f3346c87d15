// Attaching to the VM through the qemu layer (src/qemu QemuVm). One QemuLink per connection:
// QemuVm itself follows the VM across restarts (it re-registers every listener when a QEMU with
// the same UUID/name comes back), so routes stay up while the VM reboots or restarts; the
// Controller re-attaches from scratch only when the connection itself is gone (bus closed).
import type { BridgeConfig } from '../config/schema';
import type { Logger } from '../log';
import { QemuVm, type ConnectOptions, type VmInfo } from '../qemu';
import type { Attacher, VmLink } from './route';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function describeTarget(config: BridgeConfig): string {
  const c = config.connection;
  if (c.qmp) return `VM at QMP socket ${c.qmp}`;
  const vm = c.vm ? `VM '${c.vm}'` : 'the only VM';
  return `${vm} on ${c.address ?? 'the session bus'}`;
}

export function connectOptions(config: BridgeConfig): ConnectOptions {
  const c = config.connection;
  const sel = c.vm === undefined ? {} : UUID.test(c.vm) ? { uuid: c.vm.toLowerCase() } : { name: c.vm };
  return c.qmp ? { qmpPath: c.qmp, ...sel } : { busAddress: c.address, ...sel };
}

export type Presence = { present: true; info: VmInfo } | { present: false; reason: string };

/** The attached VM as routes see it: the QemuVm plus presence notifications. */
export class QemuSession implements VmLink {
  readonly lost: Promise<string>;
  private resolveLost!: (reason: string) => void;
  private readonly presenceListeners = new Set<(p: Presence) => void>();
  private closed = false;

  constructor(
    readonly qemu: QemuVm,
    private readonly log: Logger,
  ) {
    this.lost = new Promise((r) => (this.resolveLost = r));
    qemu.on('vm-gone', (_info, reason, kind) => {
      // 'bus-closed': our bus connection is gone, so QemuVm cannot re-attach on it; the controller
      // starts over with a new connection. Every other kind is followed by QemuVm itself.
      if (kind === 'bus-closed') this.resolveLost(reason);
      this.log.warn(`VM '${this.name}' is gone (${reason}); waiting for it to come back`);
      this.emitPresence({ present: false, reason });
    });
    qemu.on('reattached', (info) => {
      this.log.info(`VM '${info.name}' is back; listeners registered again`, { uuid: info.uuid });
      this.emitPresence({ present: true, info });
    });
    qemu.on('error', (err) => {
      if (err.code === 'EBUS_UNREACHABLE') this.resolveLost(err.message);
      else this.log.warn(err.message, { code: err.code });
    });
    qemu.on('responsive', () => this.log.info(`VM '${this.name}' answers again`));
  }

  get name(): string {
    return this.qemu.info.name;
  }
  get uuid(): string {
    return this.qemu.info.uuid;
  }
  get present(): boolean {
    return this.qemu.attached;
  }

  /** Called on every vm-gone / reattached; returns an unsubscribe function. */
  onPresence(cb: (p: Presence) => void): () => void {
    this.presenceListeners.add(cb);
    return () => this.presenceListeners.delete(cb);
  }

  private emitPresence(p: Presence): void {
    for (const cb of [...this.presenceListeners]) {
      try {
        cb(p);
      } catch (err) {
        this.log.error(`presence listener failed: ${(err as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.presenceListeners.clear();
    this.resolveLost('closed');
    await this.qemu.close();
  }
}

export function createAttacher(config: BridgeConfig, log: Logger): Attacher<QemuSession> {
  return {
    describe: () => describeTarget(config),
    attach: async () => new QemuSession(await QemuVm.connect(connectOptions(config)), log),
  };
}
