// Every failure of the QEMU D-Bus layer that a user can act on is a QemuDbusError: one line
// saying what is wrong, a stable `code` for programs, and the `fix` a person should apply.

import { CodedError } from '../errors';

export type QemuDbusErrorCode =
  /** no bus at the address (socket missing, refused, bad address) */
  | 'EBUS_UNREACHABLE'
  /** the bus socket exists but we may not use it (EACCES, auth rejected) */
  | 'EBUS_PERMISSION'
  /** nobody owns org.qemu on the bus */
  | 'ENO_QEMU'
  /** a name/UUID was asked for and no QEMU on the bus has it */
  | 'EVM_UNKNOWN'
  /** several QEMUs and no name given */
  | 'EVM_AMBIGUOUS'
  /** QEMU runs without `audiodev=` on `-display dbus`: no /org/qemu/Display1/Audio */
  | 'ENO_AUDIO'
  /** the peer lacks org.qemu.Display1.VM or a method/interface we rely on */
  | 'EQEMU_UNSUPPORTED'
  /** QEMU 7.2-era p2p main connection: audio listener registration crashes/breaks QEMU */
  | 'EP2P_AUDIO'
  /** the QMP socket for bus-less mode could not be used */
  | 'EQMP'
  /** the VM went away while we were talking to it */
  | 'EVM_GONE'
  /** QEMU did not answer a property read in time (main loop blocked or process stopped) */
  | 'EQEMU_UNRESPONSIVE'
  /** the peer-to-peer listener connection could not be set up */
  | 'ELISTENER'
  /** a listener connection closed while the VM kept running (registered again once) */
  | 'ELISTENER_DROPPED'
  /** QEMU sent a listener a call we refused, or its handler failed on it (counted, logged once) */
  | 'ELISTENER_CALL'
  /** an argument we refuse to send because QEMU would misbehave (e.g. abort) */
  | 'EBAD_ARGUMENT'
  /** a console was asked for by number (--camera-console, --input-console) and the VM has no such console */
  | 'ECONSOLE_UNKNOWN';

export class QemuDbusError extends CodedError<QemuDbusErrorCode> {
  /** The D-Bus error name when the failure came back from a peer. */
  readonly dbusName?: string;

  /** `permanent`: retrying cannot help while this QEMU runs (e.g. EP2P_AUDIO). */
  constructor(code: QemuDbusErrorCode, problem: string, fix: string, opts?: { cause?: unknown; dbusName?: string; permanent?: boolean }) {
    super(code, problem, fix, { cause: opts?.cause, permanent: opts?.permanent });
    this.name = 'QemuDbusError';
    if (opts?.dbusName) this.dbusName = opts.dbusName;
  }
}

export function isQemuDbusError(e: unknown, code?: QemuDbusErrorCode): e is QemuDbusError {
  return e instanceof QemuDbusError && (code === undefined || e.code === code);
}

/** The D-Bus error name of a failed call (dbus-native's DBusError has `.name`/`.dbusName`). */
export function dbusErrorName(e: unknown): string | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const o = e as { dbusName?: unknown; name?: unknown; type?: unknown };
  for (const v of [o.dbusName, o.type, o.name]) {
    if (typeof v === 'string' && v.includes('.')) return v;
  }
  return undefined;
}

export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
