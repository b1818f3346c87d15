// org.qemu.Display1.Keyboard on Console_N: Press/Release take QEMU "qnum" numbers (XT set-1
// scancodes, E0-prefixed keys as 0x80|code), NOT evdev codes. Mapping lives in src/input/.
import { QemuDbusError } from './errors';
import { KeyboardProxy } from './generated/display1';
import type { RemoteObject } from './remote-object';

/** Guest keyboard LED bits of the `Modifiers` property (it is NOT the modifier-key state). */
export const LED_SCROLL_LOCK = 1;
export const LED_NUM_LOCK = 2;
export const LED_CAPS_LOCK = 4;

function checkQnum(qnum: number): void {
  if (!Number.isInteger(qnum) || qnum < 1 || qnum > 0xff) {
    throw new QemuDbusError('EBAD_ARGUMENT', `keyboard qnum ${qnum} is outside 1..255`, 'map evdev KEY_* codes to qnum first (src/input keymap); E0 keys are 0x80|code');
  }
}

export class Keyboard {
  readonly proxy: KeyboardProxy;
  constructor(object: RemoteObject) {
    this.proxy = new KeyboardProxy(object);
  }
  press(qnum: number): Promise<void> {
    checkQnum(qnum);
    return this.proxy.press(qnum);
  }
  release(qnum: number): Promise<void> {
    checkQnum(qnum);
    return this.proxy.release(qnum);
  }
  /** LED bitmask (LED_* above). */
  leds(): Promise<number> {
    return this.proxy.getModifiers();
  }
  onLedsChanged(cb: (leds: number) => void): Promise<() => Promise<void>> {
    return this.proxy.onPropertiesChanged((c) => {
      if (typeof c.Modifiers === 'number') cb(c.Modifiers);
    });
  }
}
