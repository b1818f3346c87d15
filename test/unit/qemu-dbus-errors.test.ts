// The one table from D-Bus error names to codes (src/qemu/dbus-errors.ts), and the two error
// classes that carry its codes across the wire: RemoteCallError (QEMU's replies to us) and
// MethodError (our replies to QEMU).
import { describe, expect, it } from 'vitest';
import { CodedError } from '../../src/errors';
import { DBUS_ERR, dbusErrorCode, MethodError, RemoteCallError } from '../../src/qemu';

describe('D-Bus error names -> codes', () => {
  it('QEMU\'s Error.Invalid means what the call it answers says', () => {
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID, 'org.qemu.Display1.Console.RegisterListener')).toBe('EALREADY_REGISTERED');
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID, 'org.qemu.Display1.Audio.RegisterOutListener')).toBe('EALREADY_REGISTERED');
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID, 'org.qemu.Display1.Audio.RegisterInListener')).toBe('EALREADY_REGISTERED');
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID, 'org.qemu.Display1.Mouse.SetAbsPosition')).toBe('EMOUSE_NOT_ABSOLUTE');
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID, 'org.qemu.Display1.Mouse.RelMotion')).toBe('EMOUSE_NOT_RELATIVE');
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID, 'org.qemu.Display1.MultiTouch.SendEvent')).toBe('EINVALID');
    expect(dbusErrorCode(DBUS_ERR.QEMU_INVALID)).toBe('EINVALID');
  });

  it('names that mean the same for every call map alike; unknown and missing names are EFAILED', () => {
    expect(dbusErrorCode(DBUS_ERR.QEMU_UNSUPPORTED, 'org.qemu.Display1.Console.SetUIInfo')).toBe('EUNSUPPORTED');
    for (const n of [DBUS_ERR.UNKNOWN_METHOD, DBUS_ERR.UNKNOWN_INTERFACE, DBUS_ERR.UNKNOWN_OBJECT, DBUS_ERR.UNKNOWN_PROPERTY]) expect(dbusErrorCode(n)).toBe('EUNKNOWN_MEMBER');
    expect(dbusErrorCode(DBUS_ERR.NO_REPLY)).toBe('ENO_REPLY');
    expect(dbusErrorCode(DBUS_ERR.NAME_HAS_NO_OWNER)).toBe('ENO_OWNER');
    expect(dbusErrorCode('org.example.Whatever')).toBe('EFAILED');
    expect(dbusErrorCode(undefined)).toBe('EFAILED');
  });

  it('RemoteCallError is a CodedError: code from the table for its call, dbusName kept, the text only in the problem', () => {
    const e = new RemoteCallError({ dbusName: DBUS_ERR.QEMU_INVALID, path: '/org/qemu/Display1/Console_0', iface: 'org.qemu.Display1.Console', member: 'RegisterListener', text: 'anything at all' });
    expect(e).toBeInstanceOf(CodedError);
    expect([e.code, e.dbusName, e.target]).toEqual(['EALREADY_REGISTERED', DBUS_ERR.QEMU_INVALID, '/org/qemu/Display1/Console_0 org.qemu.Display1.Console.RegisterListener']);
    expect(e.problem).toBe('org.qemu.Display1.Console.RegisterListener on /org/qemu/Display1/Console_0 failed: anything at all');
    expect(e.withCode('EMOUSE_POSITION').code).toBe('EMOUSE_POSITION');
  });

  it('MethodError is a CodedError with the code of the name it replies with', () => {
    const e = new MethodError(DBUS_ERR.INVALID_ARGS, 'Read: too much');
    expect(e).toBeInstanceOf(CodedError);
    expect([e.code, e.dbusName, e.problem]).toEqual(['EINVALID_ARGS', DBUS_ERR.INVALID_ARGS, 'Read: too much']);
  });
});
