// A libvirt connection as the bridge uses it: opened lazily, opened again after libvirtd went
// away (restart, session daemon idle exit), lifecycle events as an EventEmitter, and every
// failure turned into a LibvirtError that says what to do. The calls themselves are the addon's
// (native/libvirt.cc); this file owns the policy.
import { EventEmitter } from 'events';
import * as fs from 'fs';
import { CodedError } from '../errors';
import { native, socketpair } from '../native';
import type { NativeDomainInfo, NativeLibvirtConnection, NativeLibvirtEvent } from '../native-api/libvirt';

/** virDomainEventType values the bridge reacts to. */
export const DomainEvent = { DEFINED: 0, UNDEFINED: 1, STARTED: 2, SUSPENDED: 3, RESUMED: 4, STOPPED: 5, SHUTDOWN: 6, CRASHED: 8 } as const;

/** libvirt's virErrorNumber values that decide what we tell the user. */
const VIR_ERR = { NO_CONNECT: 5, INVALID_CONN: 6, OPERATION_DENIED: 29, SYSTEM_ERROR: 38, RPC: 39, NO_DOMAIN: 42, AUTH_FAILED: 45, OPERATION_INVALID: 55, AUTH_CANCELLED: 79, ACCESS_DENIED: 88, AUTH_UNAVAILABLE: 94 } as const;

export type LibvirtErrorCode =
  /** libvirtd at the URI cannot be reached */
  | 'ELIBVIRT_CONNECT'
  /** no domain with that name or UUID at the URI */
  | 'ELIBVIRT_NO_DOMAIN'
  /** libvirt refused a call: read-write access needed (p2p) or not authorised */
  | 'ELIBVIRT_DENIED'
  /** the domain has no <graphics type='dbus'/> in its running configuration */
  | 'ELIBVIRT_NO_DBUS_DISPLAY'
  /** any other libvirt failure (its message is included) */
  | 'ELIBVIRT';

export class LibvirtError extends CodedError<LibvirtErrorCode> {
  /** libvirt's virErrorNumber when the failure came from libvirt */
  readonly virCode?: number;

  constructor(code: LibvirtErrorCode, problem: string, fix: string, opts: { cause?: unknown; virCode?: number; permanent?: boolean; exitCode?: number } = {}) {
    super(code, problem, fix, opts);
    this.name = 'LibvirtError';
    if (opts.virCode !== undefined) this.virCode = opts.virCode;
  }
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
export const isUuid = (key: string): boolean => UUID.test(key);

/** `--libvirt-uri` default: $LIBVIRT_DEFAULT_URI, else qemu:///system for root and qemu:///session for a user. */
export function defaultLibvirtUri(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? 0): string {
  if (env.LIBVIRT_DEFAULT_URI) return env.LIBVIRT_DEFAULT_URI;
  return uid === 0 ? 'qemu:///system' : 'qemu:///session';
}

export type DomainInfo = NativeDomainInfo;

export interface LifecycleEvent {
  name: string;
  uuid: string;
  id: number;
  event: number;
  detail: number;
}

export interface LibvirtClientEvents {
  lifecycle: [e: LifecycleEvent];
  /** our connection to libvirtd closed (libvirtd restarted or exited); the next call opens a new one */
  closed: [reason: number];
}

function virCodeOf(e: unknown): number | undefined {
  const v = (e as { virCode?: unknown } | null)?.virCode;
  return typeof v === 'number' ? v : undefined;
}

export class LibvirtClient extends EventEmitter<LibvirtClientEvents> {
  private ro: Promise<NativeLibvirtConnection> | undefined;
  private rw: Promise<NativeLibvirtConnection> | undefined;
  private closed = false;

  constructor(readonly uri: string) {
    super();
  }

  /** The domain (by name or UUID) now: running or not, its id, its canonical name and UUID. */
  async domain(key: string): Promise<DomainInfo> {
    return this.call('ro', key, (c) => c.domain(key, isUuid(key)));
  }

  /** The running configuration (live XML); the persistent one with inactive. */
  async xml(key: string, inactive = false): Promise<string> {
    return this.call('ro', key, (c) => c.xml(key, isUuid(key), inactive));
  }

  /**
   * Our end of a p2p D-Bus display socket of the domain: one end of our own socketpair goes to
   * QEMU through virDomainOpenGraphics on a read-write connection (libvirt's QMP add_client).
   * Our own pair, so QEMU's EXTERNAL authentication sees our uid (see native/libvirt.cc).
   */
  async openGraphics(key: string, index: number): Promise<number> {
    const [mine, theirs] = socketpair();
    try {
      await this.call('rw', key, (c) => c.openGraphics(key, isUuid(key), index, theirs));
      return mine;
    } catch (e) {
      fs.closeSync(mine);
      throw e;
    } finally {
      fs.closeSync(theirs);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [this.ro, this.rw].filter((p) => p !== undefined);
    this.ro = this.rw = undefined;
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => undefined)));
  }

  private async call<T>(mode: 'ro' | 'rw', key: string, fn: (c: NativeLibvirtConnection) => Promise<T>): Promise<T> {
    const c = await this.connection(mode);
    try {
      return await fn(c);
    } catch (e) {
      throw this.explain(e, key, mode);
    }
  }

  private connection(mode: 'ro' | 'rw'): Promise<NativeLibvirtConnection> {
    if (this.closed) return Promise.reject(new LibvirtError('ELIBVIRT_CONNECT', `the connection to ${this.uri} is closed`, 'this is a bug: the bridge used a closed libvirt client'));
    const existing = mode === 'ro' ? this.ro : this.rw;
    if (existing) return existing;
    const conn = new native.LibvirtConnection();
    // Only the read-only connection listens: one event per change, whichever connection serves calls.
    const onEvent = mode === 'ro' ? (e: NativeLibvirtEvent) => this.onEvent(conn, e) : undefined;
    const p = conn.open(this.uri, mode === 'ro', onEvent).then(
      () => conn,
      (e: unknown) => {
        this.forget(mode, p);
        throw this.explainOpen(e, mode);
      },
    );
    if (mode === 'ro') this.ro = p;
    else this.rw = p;
    return p;
  }

  private forget(mode: 'ro' | 'rw', p: Promise<NativeLibvirtConnection>): void {
    if (mode === 'ro' && this.ro === p) this.ro = undefined;
    if (mode === 'rw' && this.rw === p) this.rw = undefined;
  }

  private onEvent(conn: NativeLibvirtConnection, e: NativeLibvirtEvent): void {
    if (e.kind === 'closed') {
      // libvirtd went away: drop both connections; the next call opens new ones (and re-registers events).
      const ro = this.ro;
      const rw = this.rw;
      this.ro = this.rw = undefined;
      for (const p of [ro, rw]) void p?.then((c) => c.close()).catch(() => undefined);
      if (!ro) void conn.close().catch(() => undefined);
      this.emit('closed', e.reason);
      return;
    }
    this.emit('lifecycle', { name: e.name, uuid: e.uuid, id: e.id, event: e.event, detail: e.detail });
  }

  private explainOpen(e: unknown, mode: 'ro' | 'rw'): LibvirtError {
    const code = virCodeOf(e);
    const text = (e as Error).message;
    if (code === VIR_ERR.AUTH_FAILED || code === VIR_ERR.ACCESS_DENIED || code === VIR_ERR.OPERATION_DENIED || code === VIR_ERR.AUTH_UNAVAILABLE || code === VIR_ERR.AUTH_CANCELLED) {
      return new LibvirtError(
        'ELIBVIRT_DENIED',
        `libvirt at ${this.uri} refused a ${mode === 'rw' ? 'read-write' : 'read-only'} connection (${text})`,
        mode === 'rw' ? 'add this user to the libvirt group (or a polkit rule for org.libvirt.unix.manage), or use a qemu:///session VM of your own' : 'check the libvirt socket permissions for this user',
        { cause: e, virCode: code },
      );
    }
    return new LibvirtError(
      'ELIBVIRT_CONNECT',
      `cannot connect to libvirt at ${this.uri} (${text})`,
      this.uri.includes('/system') ? 'start libvirtd (systemctl start libvirtd) or pick the URI of your VM with --libvirt-uri' : 'check --libvirt-uri (qemu:///session is per user; qemu:///system is the system daemon)',
      { cause: e, virCode: code },
    );
  }

  private explain(e: unknown, key: string, mode: 'ro' | 'rw'): Error {
    const code = virCodeOf(e);
    const text = (e as Error).message;
    if (code === VIR_ERR.NO_DOMAIN) {
      return new LibvirtError('ELIBVIRT_NO_DOMAIN', `no libvirt domain ${isUuid(key) ? 'with UUID' : 'named'} '${key}' at ${this.uri}`, `check the name with: virsh -c ${this.uri} list --all`, { cause: e, virCode: code });
    }
    if (code === VIR_ERR.OPERATION_DENIED || code === VIR_ERR.ACCESS_DENIED || code === VIR_ERR.AUTH_FAILED) {
      return new LibvirtError(
        'ELIBVIRT_DENIED',
        `libvirt at ${this.uri} refused the call for domain '${key}' (${text})`,
        mode === 'rw' ? 'add this user to the libvirt group (or a polkit rule for org.libvirt.unix.manage)' : 'check the libvirt access rules for this user',
        { cause: e, virCode: code },
      );
    }
    if (code === VIR_ERR.NO_CONNECT || code === VIR_ERR.INVALID_CONN || code === VIR_ERR.RPC || code === VIR_ERR.SYSTEM_ERROR) {
      // The connection died under us: forget it so the next call reconnects.
      this.ro = this.rw = undefined;
      return new LibvirtError('ELIBVIRT_CONNECT', `lost the connection to libvirt at ${this.uri} (${text})`, 'the bridge connects again by itself once libvirtd is back', { cause: e, virCode: code });
    }
    return new LibvirtError('ELIBVIRT', `libvirt at ${this.uri}, domain '${key}': ${text}`, 'see the libvirt message; virsh shows the same state', { cause: e, virCode: code });
  }
}
