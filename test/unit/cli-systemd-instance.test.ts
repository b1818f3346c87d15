// The VM name inside a systemd instance name: the unit passes %i (raw) because %I turns '-' into
// '/'. The raw forms a user can produce: typed by hand (win-11), `systemd-escape` output, and
// systemctl's own mangling of spaces and non-ASCII (the same \xNN escapes).
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/config/errors';
import { vmFromSystemdInstance } from '../../src/cli/systemd-instance';

describe('vmFromSystemdInstance', () => {
  it('keeps a dash typed by hand as a dash', () => {
    expect(vmFromSystemdInstance('win-11')).toBe('win-11');
  });

  it('decodes systemd-escape output: \\x2d, \\x20, a leading \\x2e', () => {
    expect(vmFromSystemdInstance('win\\x2d11')).toBe('win-11');
    expect(vmFromSystemdInstance('my\\x20vm')).toBe('my vm');
    expect(vmFromSystemdInstance('\\x2ehidden')).toBe('.hidden');
  });

  it('decodes escaped UTF-8 bytes into the characters, and passes unescaped ones through', () => {
    expect(vmFromSystemdInstance('\\xc3\\xbcn\\xc3\\xafcode')).toBe('ünïcode');
    expect(vmFromSystemdInstance('ünïcode')).toBe('ünïcode');
  });

  it('refuses a backslash that starts no \\xNN escape, bytes that are not UTF-8, and an empty name', () => {
    expect(() => vmFromSystemdInstance('win\\y')).toThrow(UsageError);
    expect(() => vmFromSystemdInstance('a\\x4')).toThrow(/must start a \\xNN escape/);
    expect(() => vmFromSystemdInstance('\\xff')).toThrow(/not UTF-8/);
    expect(() => vmFromSystemdInstance('')).toThrow(/empty/);
  });
});
