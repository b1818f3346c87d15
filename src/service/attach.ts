// Attaching to the VM through the qemu layer (src/qemu QemuVm). One QemuLink per connection:
// QemuVm itself follows the VM across restarts (it re-registers every listener when a QEMU with
// the same UUID/name comes back), so routes stay up while the VM reboots or restarts; the
// Controller re-attaches from scratch only when the connection itself is gone (bus closed).
import type { BridgeConfig } from '../config/schema';
import { CodedError } from '../errors';
import { DomainEvent, LibvirtClient, assertMayUseBus, defaultLibvirtUri, locateDisplay, type DisplayTarget } from '../libvirt';
import type { Logger } from '../log';
import { defaultBusAddress, QemuArrivalWatch, QemuVm, type ConnectOptions, type VmInfo } from '../qemu';
import type { Attacher, VmLink } from './route';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function describeTarget(config: BridgeConfig): string {
  const c = config.connection;
  if (c.libvirt) return `libvirt domain '${c.libvirt}' at ${c.libvirt_uri ?? defaultLibvirtUri()}`;
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

  /**
   * followsRestarts: QemuVm finds the VM again on the same connection (a shared bus, a QMP
   * socket). false for libvirt, where every VM start brings a new bus or p2p socket: any loss ends
   * this session and the controller attaches anew through the attacher.
   */
  constructor(
    readonly qemu: QemuVm,
    private readonly log: Logger,
    private readonly followsRestarts = true,
  ) {
    this.lost = new Promise((r) => (this.resolveLost = r));
    qemu.on('vm-gone', (_info, reason, kind) => {
      // 'bus-closed': our bus connection is gone, so QemuVm cannot re-attach on it; the controller
      // starts over with a new connection. Every other kind is followed by QemuVm itself.
      if (kind === 'bus-closed' || !this.followsRestarts) {
        this.resolveLost(reason);
        return;
      }
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

  /** Ends this session (the VM restarted elsewhere): the controller attaches anew. */
  drop(reason: string): void {
    this.resolveLost(reason);
  }

  /** What this QEMU offers, as the status bus shows it (from the detected capabilities). */
  features(): string[] {
    const c = this.qemu.capabilities;
    const out: string[] = [`consoles=${c.consoleIds.join(',')}`];
    if (c.audio) out.push(c.audioNSamples !== null ? `audio nsamples=${c.audioNSamples}` : 'audio');
    if (c.p2pAudioBroken) out.push('p2p-audio-broken');
    if (c.multiTouch) out.push('multi-touch');
    if (c.unixMap) out.push('unix-map');
    if (c.scanoutDmabuf2) out.push('scanout-dmabuf2');
    if (c.clipboard) out.push('clipboard');
    if (c.chardevs.length) out.push(`chardevs=${c.chardevs.join(',')}`);
    return out;
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
  if (config.connection.libvirt) return createLibvirtAttacher(config.connection.libvirt, config.connection.libvirt_uri ?? defaultLibvirtUri(), log);
  const opts = connectOptions(config);
  if (opts.qmpPath !== undefined) {
    return { describe: () => describeTarget(config), attach: async () => new QemuSession(await QemuVm.connect(opts), log) };
  }
  return createBusAttacher(opts, describeTarget(config), log);
}

/**
 * A VM on a bus. While it is not there, a watch on the bus (a connection of its own, opened at the
 * first failed attach and closed once attached) tells the controller the moment a QEMU appears,
 * so a VM started after the bridge is attached at once rather than at the next backoff step.
 */
export function createBusAttacher(opts: ConnectOptions, description: string, log: Logger): Attacher<QemuSession> {
  const address = opts.busAddress ?? defaultBusAddress();
  let watch: QemuArrivalWatch | undefined;
  let opening: Promise<void> | undefined;
  /** watch.count when the last attach began; -1: it began before the watch existed */
  let since = -1;
  const closeWatch = async (): Promise<void> => {
    const w = watch;
    watch = undefined;
    await w?.close().catch(() => undefined);
  };
  return {
    describe: () => description,
    attach: async () => {
      since = watch?.count ?? -1;
      const vm = await QemuVm.connect(opts);
      await closeWatch();
      return new QemuSession(vm, log);
    },
    appeared: async (signal) => {
      if (!watch) {
        opening ??= QemuArrivalWatch.open(address, 5000).then(
          (w) => void (watch = w),
          (err: unknown) => log.debug(`cannot watch ${address} for QEMU arriving (${String(err)}); retrying on the backoff`),
        );
        await opening;
        opening = undefined;
        // An arrival between the failed attach and the subscription was missed: look once more now.
        if (watch || signal.aborted) return;
        return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      }
      await watch.after(since, signal);
    },
    close: closeWatch,
  };
}

/** Resolves on the next lifecycle event of `uuid`, when libvirt's connection closes, on abort, or after ms. */
function nextChange(client: LibvirtClient, uuid: string, signal: AbortSignal, ms: number): { done: Promise<void>; cancel: () => void } {
  let cancel!: () => void;
  const done = new Promise<void>((resolve) => {
    const t = setTimeout(finish, ms);
    const onLifecycle = (e: { uuid: string }): void => {
      if (e.uuid === uuid) finish();
    };
    function finish(): void {
      clearTimeout(t);
      client.off('lifecycle', onLifecycle);
      client.off('closed', finish);
      signal.removeEventListener('abort', finish);
      resolve();
    }
    client.on('lifecycle', onLifecycle);
    client.on('closed', finish);
    signal.addEventListener('abort', finish);
    cancel = finish;
  });
  return { done, cancel };
}

/**
 * A libvirt domain: on every attach attempt the display is located from the live domain (its bus
 * address changes at every start; p2p sockets come from virDomainOpenGraphics), so nothing stale
 * is ever retried. While the domain is stopped, attach waits for its "started" event (re-checking
 * every few seconds in case libvirtd restarted and the event was lost). While attached, a
 * "stopped" or a new "started" of the domain ends the session at once.
 */
export function createLibvirtAttacher(key: string, uri: string, log: Logger, client = new LibvirtClient(uri)): Attacher<QemuSession> {
  client.on('closed', () => log.info(`the connection to libvirt at ${uri} closed (libvirtd restarted or exited); a new one is opened on the next look`));
  let said = '';
  const sayOnce = (line: string): void => {
    if (line !== said) log.info(line);
    said = line;
  };
  const connect = async (target: Exclude<DisplayTarget, { kind: 'stopped' }>): Promise<QemuVm> => {
    if (target.kind === 'bus') {
      assertMayUseBus(target, uri);
      return QemuVm.connect({ busAddress: target.address, reattach: false });
    }
    const { uuid, name } = target.domain;
    return QemuVm.connect({
      reattach: false,
      p2pSource: { open: () => client.openGraphics(uuid, target.index), where: `libvirt domain '${name}' (virDomainOpenGraphics)` },
    });
  };
  return {
    describe: () => `libvirt domain '${key}' at ${uri}`,
    attach: async (signal) => {
      for (;;) {
        const domain = await client.domain(key);
        // Subscribed before looking, so a start between the look and the wait is not missed.
        const change = nextChange(client, domain.uuid, signal, 5000);
        let target: DisplayTarget;
        try {
          target = await locateDisplay(client, domain.uuid);
        } catch (e) {
          change.cancel();
          throw e;
        }
        if (target.kind === 'stopped') {
          sayOnce(`libvirt domain '${domain.name}' is not running; waiting for it to start`);
          await change.done;
          if (signal.aborted) throw new CodedError('EABORTED', 'stopped while waiting for the domain');
          continue;
        }
        change.cancel();
        said = '';
        log.info(target.kind === 'bus' ? `libvirt domain '${domain.name}' (id ${target.domain.id}): D-Bus display on ${target.address}` : `libvirt domain '${domain.name}' (id ${target.domain.id}): p2p D-Bus display through libvirt`);
        const session = new QemuSession(await connect(target), log, false);
        const startedId = target.domain.id;
        const onLifecycle = (e: { uuid: string; event: number; id: number }): void => {
          if (e.uuid !== target.domain.uuid) return;
          if (e.event === DomainEvent.STOPPED) session.drop(`libvirt domain '${domain.name}' stopped`);
          else if (e.event === DomainEvent.STARTED && e.id !== startedId) session.drop(`libvirt domain '${domain.name}' started again (id ${e.id})`);
        };
        client.on('lifecycle', onLifecycle);
        void session.lost.then(() => client.off('lifecycle', onLifecycle));
        return session;
      }
    },
    close: () => client.close(),
  };
}
