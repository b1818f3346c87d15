// Which console a route works on (src/qemu/console.ts): the one named by number, else the first
// graphic one; a number the VM lacks is ECONSOLE_UNKNOWN naming the consoles it has. And the one
// reading of QEMU's Console properties that `list` and the choice share (consoleInfoOf).
import { describe, expect, it } from 'vitest';
import { chooseConsole, consoleInfoOf, type ConsoleInfo } from '../../src/qemu/console';
import { MAX_DISPLAY_SIDE } from '../../src/qemu/limits';
import { errorCode, isPermanent } from '../../src/errors';
import { QemuDbusError } from '../../src/qemu/errors';

const text0 = consoleInfoOf(0, { Type: 'Text', Label: 'serial0', Head: 0, Width: 640, Height: 480 });
const vga = consoleInfoOf(1, { Type: 'Graphic', Label: 'VGA', Head: 0, Width: 1280, Height: 800 });
const second = consoleInfoOf(2, { Type: 'Graphic', Label: 'secondary-vga', Head: 0, Width: 1024, Height: 768 });

function thrown(fn: () => unknown): QemuDbusError {
  try {
    fn();
  } catch (e) {
    return e as QemuDbusError;
  }
  throw new Error('did not throw');
}

describe('consoleInfoOf', () => {
  it('takes Type, Label, Head, Width and Height as QEMU sent them', () => {
    expect(consoleInfoOf(3, { Type: 'Graphic', Label: 'virtio-gpu', Head: 1, Width: 800, Height: 600, DeviceAddress: 'pci/0000/04.0' })).toEqual({
      id: 3,
      type: 'Graphic',
      label: 'virtio-gpu',
      head: 1,
      width: 800,
      height: 600,
    });
  });

  it('a missing or mistyped property reads as empty / 0; a size is clamped to MAX_DISPLAY_SIDE', () => {
    expect(consoleInfoOf(0, { Type: 7, Head: -1, Width: 1e9, Height: 'x' })).toEqual({ id: 0, type: '', label: '', head: 0, width: MAX_DISPLAY_SIDE, height: 0 });
  });
});

describe('chooseConsole', () => {
  it('no number: the first graphic console, even when a text console comes first', () => {
    expect(chooseConsole([text0, vga, second], undefined, '--camera-console', 'vm')).toBe(vga);
  });

  it('no graphic console: the first console there is', () => {
    expect(chooseConsole([text0], undefined, '--camera-console', 'vm')).toBe(text0);
  });

  it('no console at all: console 0, as before there was a choice', () => {
    expect(chooseConsole([], undefined, '--input-console', 'vm').id).toBe(0);
  });

  it('a number the VM has: that console, text or graphic', () => {
    expect(chooseConsole([text0, vga, second], 2, '--camera-console', 'vm')).toBe(second);
    expect(chooseConsole([text0, vga, second], 0, '--input-console', 'vm')).toBe(text0);
  });

  it('a number the VM lacks: ECONSOLE_UNKNOWN, permanent, naming every console and the flag', () => {
    const e = thrown(() => chooseConsole([vga, second] as ConsoleInfo[], 5, '--input-console', 'win11'));
    expect(errorCode(e)).toBe('ECONSOLE_UNKNOWN');
    expect(isPermanent(e)).toBe(true);
    expect(e.problem).toBe('VM "win11" has no console 5; its consoles: 1 (Graphic "VGA" head 0, 1280x800), 2 (Graphic "secondary-vga" head 0, 1024x768)');
    expect(e.fix).toContain('--input-console');
  });
});
