// The one table from D-Bus error names to codes, both ways across the wire: a reply QEMU (or the
// bus) sent us becomes a RemoteCallError with one of these codes, and a MethodError we throw in a
// served listener carries the code of the name it replies with. Nothing in the project looks at
// the text of a D-Bus error: it branches on the code.
//
// QEMU answers several causes with one name (org.qemu.Display1.Error.Invalid), so a row may name
// the call it holds for; the first matching row wins. What each call's Invalid means is from QEMU
// 7.2's ui/dbus-console.c and audio/dbusaudio.c (unchanged through 10.0):
//   Console.RegisterListener, Audio.Register{Out,In}Listener: "`<sender>` is already registered!"
//     (7.2 keeps one listener per sender; a re-registration races QEMU's handling of our EOF)
//   Mouse.SetAbsPosition: "Mouse is not absolute", or "Invalid mouse position" (x >= Width or
//     y >= Height): the two share the name, so Mouse.setAbsPosition tells them apart by the size
//   Mouse.RelMotion: "Mouse is not relative"

export const DBUS_ERR = {
  FAILED: 'org.freedesktop.DBus.Error.Failed',
  INVALID_ARGS: 'org.freedesktop.DBus.Error.InvalidArgs',
  UNKNOWN_METHOD: 'org.freedesktop.DBus.Error.UnknownMethod',
  UNKNOWN_INTERFACE: 'org.freedesktop.DBus.Error.UnknownInterface',
  UNKNOWN_OBJECT: 'org.freedesktop.DBus.Error.UnknownObject',
  UNKNOWN_PROPERTY: 'org.freedesktop.DBus.Error.UnknownProperty',
  PROPERTY_READ_ONLY: 'org.freedesktop.DBus.Error.PropertyReadOnly',
  NAME_HAS_NO_OWNER: 'org.freedesktop.DBus.Error.NameHasNoOwner',
  SERVICE_UNKNOWN: 'org.freedesktop.DBus.Error.ServiceUnknown',
  NO_REPLY: 'org.freedesktop.DBus.Error.NoReply',
  DISCONNECTED: 'org.freedesktop.DBus.Error.Disconnected',
  ACCESS_DENIED: 'org.freedesktop.DBus.Error.AccessDenied',
  QEMU_FAILED: 'org.qemu.Display1.Error.Failed',
  QEMU_INVALID: 'org.qemu.Display1.Error.Invalid',
  QEMU_UNSUPPORTED: 'org.qemu.Display1.Error.Unsupported',
} as const;

export type DbusErrorCode =
  /** the peer has no such method, interface, object or property (an older QEMU) */
  | 'EUNKNOWN_MEMBER'
  /** the arguments did not fit the signature or the callee's limits */
  | 'EINVALID_ARGS'
  /** a property that cannot be written */
  | 'EREAD_ONLY'
  /** the destination has no owner on the bus (QEMU went away) */
  | 'ENO_OWNER'
  /** no reply in time: our deadline or the bus's (NoReply) */
  | 'ENO_REPLY'
  /** the connection closed before the reply */
  | 'EDISCONNECTED'
  /** the bus refused to deliver the call */
  | 'EACCESS'
  /** 7.2: this sender already has a listener of that kind registered */
  | 'EALREADY_REGISTERED'
  /** SetAbsPosition while the guest pointer is relative */
  | 'EMOUSE_NOT_ABSOLUTE'
  /** SetAbsPosition outside the console's current Width x Height */
  | 'EMOUSE_POSITION'
  /** RelMotion while the guest pointer is absolute */
  | 'EMOUSE_NOT_RELATIVE'
  /** org.qemu.Display1.Error.Unsupported: the device or build cannot do it (e.g. SetUIInfo on std VGA) */
  | 'EUNSUPPORTED'
  /** org.qemu.Display1.Error.Invalid on a call without a row of its own */
  | 'EINVALID'
  /** any other failure */
  | 'EFAILED';

interface Row {
  name: string;
  /** `interface.Member` the row holds for; every call when absent */
  call?: string;
  code: DbusErrorCode;
}

const ROWS: readonly Row[] = [
  { name: DBUS_ERR.QEMU_INVALID, call: 'org.qemu.Display1.Console.RegisterListener', code: 'EALREADY_REGISTERED' },
  { name: DBUS_ERR.QEMU_INVALID, call: 'org.qemu.Display1.Audio.RegisterOutListener', code: 'EALREADY_REGISTERED' },
  { name: DBUS_ERR.QEMU_INVALID, call: 'org.qemu.Display1.Audio.RegisterInListener', code: 'EALREADY_REGISTERED' },
  { name: DBUS_ERR.QEMU_INVALID, call: 'org.qemu.Display1.Mouse.SetAbsPosition', code: 'EMOUSE_NOT_ABSOLUTE' },
  { name: DBUS_ERR.QEMU_INVALID, call: 'org.qemu.Display1.Mouse.RelMotion', code: 'EMOUSE_NOT_RELATIVE' },
  { name: DBUS_ERR.QEMU_INVALID, code: 'EINVALID' },
  { name: DBUS_ERR.QEMU_UNSUPPORTED, code: 'EUNSUPPORTED' },
  { name: DBUS_ERR.QEMU_FAILED, code: 'EFAILED' },
  { name: DBUS_ERR.FAILED, code: 'EFAILED' },
  { name: DBUS_ERR.INVALID_ARGS, code: 'EINVALID_ARGS' },
  { name: DBUS_ERR.UNKNOWN_METHOD, code: 'EUNKNOWN_MEMBER' },
  { name: DBUS_ERR.UNKNOWN_INTERFACE, code: 'EUNKNOWN_MEMBER' },
  { name: DBUS_ERR.UNKNOWN_OBJECT, code: 'EUNKNOWN_MEMBER' },
  { name: DBUS_ERR.UNKNOWN_PROPERTY, code: 'EUNKNOWN_MEMBER' },
  { name: DBUS_ERR.PROPERTY_READ_ONLY, code: 'EREAD_ONLY' },
  { name: DBUS_ERR.NAME_HAS_NO_OWNER, code: 'ENO_OWNER' },
  { name: DBUS_ERR.SERVICE_UNKNOWN, code: 'ENO_OWNER' },
  // dbus-native gives its own deadline this name too (TimeoutError), like libdbus does.
  { name: DBUS_ERR.NO_REPLY, code: 'ENO_REPLY' },
  { name: DBUS_ERR.DISCONNECTED, code: 'EDISCONNECTED' },
  { name: DBUS_ERR.ACCESS_DENIED, code: 'EACCESS' },
];

/** The code of a D-Bus error `name` answered to `call` ('interface.Member'); EFAILED for the rest. */
export function dbusErrorCode(name: string | undefined, call?: string): DbusErrorCode {
  if (name === undefined) return 'EFAILED';
  for (const r of ROWS) if (r.name === name && (r.call === undefined || r.call === call)) return r.code;
  return 'EFAILED';
}
