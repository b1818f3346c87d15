// How QemuVm reaches its QEMU, and finds it again after it went away. Two strategies behind one
// interface: on a bus (bus-attachment.ts: discovery by name/UUID, NameOwnerChanged) and bus-less
// on QEMU's peer-to-peer main connection (p2p-attachment.ts: QMP add_client or a socket from
// libvirt, re-opened to look again). The façade (../vm.ts) never asks which one it has.
import type { Capabilities } from '../capabilities';
import type { VmSelector } from '../discovery';
import type { QemuDbusError } from '../errors';
import type { QemuLink } from '../remote-object';

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
  /**
   * How often to look while the VM is gone. Default 250 ms. On a bus, where the bus itself says
   * when a QEMU arrives (arrivals.ts), the looks after that slow down, doubling up to
   * REATTACH_POLL_MAX_MS, and start again at this period at each arrival.
   */
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

/** Why the VM is considered gone. 'bus-closed' is ours, not the VM's: nothing comes back on it. */
export type VmGoneKind = 'name-vanished' | 'listener-eof' | 'no-owner' | 'bus-closed' | 'p2p-closed';

/** What a strategy reports to the façade. */
export interface AttachEvents {
  isAttached(): boolean;
  isClosed(): boolean;
  /** the VM, or our connection to it, is gone */
  gone(reason: string, kind: VmGoneKind): void;
  /** a QEMU may have appeared: look now rather than at the next poll */
  lookNow(): void;
  error(err: QemuDbusError): void;
}

export interface Attachment {
  /** bus-less: capabilities are read for a p2p main connection */
  readonly p2p: boolean;
  /** Mutable on purpose: proxies handed out keep working after a re-attach. */
  readonly link: QemuLink;
  /** Start reporting to `events` (once, right after the first attach). */
  watch(events: AttachEvents): Promise<void>;
  /** Look once for the VM `sel` names; on a hit the link points at it and its info is returned. */
  find(sel: VmSelector): Promise<VmInfo | undefined>;
  close(): Promise<void>;
}

/** A first attach: the strategy, the VM it found and what that QEMU can do. */
export interface Attached {
  attachment: Attachment;
  info: VmInfo;
  caps: Capabilities;
}
