// The host<->guest toggle hotkey: named presets as QEMU's input-linux offers them, or a custom
// combination of KEY_* names joined with "+".
import { keyCodeByName, keyName } from './keymap';
import { InputError } from './errors';

const KEY_LEFTCTRL = 29;
const KEY_RIGHTCTRL = 97;
const KEY_LEFTALT = 56;
const KEY_RIGHTALT = 100;
const KEY_LEFTSHIFT = 42;
const KEY_RIGHTSHIFT = 54;
const KEY_LEFTMETA = 125;
const KEY_RIGHTMETA = 126;
const KEY_SCROLLLOCK = 70;

/** Each slot is satisfied by any one of its codes; the hotkey fires when every slot is held. */
export interface Hotkey {
  readonly spec: string;
  readonly slots: ReadonlyArray<ReadonlySet<number>>;
}

export const HOTKEY_PRESETS: Record<string, number[][]> = {
  'ctrl-ctrl': [[KEY_LEFTCTRL], [KEY_RIGHTCTRL]],
  'alt-alt': [[KEY_LEFTALT], [KEY_RIGHTALT]],
  'shift-shift': [[KEY_LEFTSHIFT], [KEY_RIGHTSHIFT]],
  'meta-meta': [[KEY_LEFTMETA], [KEY_RIGHTMETA]],
  scrolllock: [[KEY_SCROLLLOCK]],
  'ctrl-scrolllock': [[KEY_LEFTCTRL, KEY_RIGHTCTRL], [KEY_SCROLLLOCK]],
};

export const DEFAULT_HOTKEY = 'ctrl-ctrl';

function invalid(spec: string, why: string, option: string): InputError {
  return new InputError(
    'EINVALIDHOTKEY',
    `invalid ${option} "${spec}": ${why}`,
    `use one of ${Object.keys(HOTKEY_PRESETS).join(', ')}, "none", or a combination like KEY_LEFTCTRL+KEY_F12`,
  );
}

/**
 * Parses a hotkey spec; null for "none" (no toggling: forwarding stays on). `option` names the
 * flag in the error (--grab-toggle, --grab-next).
 */
export function parseHotkey(spec: string = DEFAULT_HOTKEY, option = '--grab-toggle'): Hotkey | null {
  const s = spec.trim();
  if (s.toLowerCase() === 'none') return null;
  const preset = HOTKEY_PRESETS[s.toLowerCase()];
  if (preset) return { spec: s.toLowerCase(), slots: preset.map((alts) => new Set(alts)) };
  const parts = s.split('+').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw invalid(spec, 'empty key name', option);
  const slots = parts.map((p) => {
    const code = keyCodeByName(p);
    if (code === undefined) throw invalid(spec, `unknown key "${p}"`, option);
    return new Set([code]);
  });
  return { spec: parts.map((p) => keyName(keyCodeByName(p)!)).join('+'), slots };
}

/** True when every slot of the hotkey has one of its keys in `down`. */
export function hotkeyHeld(hotkey: Hotkey, isDown: (code: number) => boolean): boolean {
  for (const slot of hotkey.slots) {
    let any = false;
    for (const c of slot) if (isDown(c)) any = true;
    if (!any) return false;
  }
  return true;
}

export function hotkeyIncludes(hotkey: Hotkey, code: number): boolean {
  return hotkey.slots.some((slot) => slot.has(code));
}
