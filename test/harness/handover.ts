// What both hand-over tests type (test/integration/handover.test.ts over replay FIFOs and real
// QEMU guests, test/kernel/guest/handover.guest.ts on a real uinput keyboard): the grab-next
// hotkey and the evdev codes of the keys they use (the same numbers as QEMU's qnums here).
export const KEY_LEFTCTRL = 29;
export const KEY_RIGHTALT = 100;
export const KEY_N = 49;
export const KEY_A = 30;
export const KEY_B = 48;
export const KEY_H = 35;
export const KEY_J = 36;
export const KEY_K = 37;
export const HOTKEY = 'KEY_LEFTCTRL+KEY_RIGHTALT+KEY_N';
/** the hotkey's keys in the order they are pressed */
export const HOTKEY_CODES = [KEY_LEFTCTRL, KEY_RIGHTALT, KEY_N];
