// Linux evdev key codes -> QEMU qnum, and KEY_* names, from the generated table.
import { LINUX_KEY_TABLE } from './keymap-linux-qnum';

const MAX_CODE = 0x2ff; // KEY_MAX

const qnumByCode = new Uint16Array(MAX_CODE + 1);
const nameByCode = new Map<number, string>();
const codeByName = new Map<string, number>();
for (const [code, qnum, names] of LINUX_KEY_TABLE) {
  if (code <= MAX_CODE) qnumByCode[code] = qnum;
  if (!names) continue;
  // aliases such as KEY_SHIFT|KEY_LEFTSHIFT: every one is accepted, the last is the kernel's name
  const list = names.split('|');
  nameByCode.set(code, list[list.length - 1]);
  for (const n of list) if (!codeByName.has(n)) codeByName.set(n, code);
}

/** qnum for a Linux KEY_* code, or 0 when QEMU has no number for it (the key is dropped). */
export function linuxToQnum(code: number): number {
  return code >= 0 && code <= MAX_CODE ? qnumByCode[code] : 0;
}

export function keyName(code: number): string {
  return nameByCode.get(code) ?? `KEY_${code}`;
}

/** "KEY_LEFTCTRL", "leftctrl" or a number -> code; undefined when unknown. */
export function keyCodeByName(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const upper = t.toUpperCase();
  return codeByName.get(upper.startsWith('KEY_') ? upper : `KEY_${upper}`);
}

/** Every Linux code that has a qnum (for tests and `devices` listings). */
export function mappedKeyCodes(): number[] {
  const out: number[] = [];
  for (let c = 0; c <= MAX_CODE; c++) if (qnumByCode[c] !== 0) out.push(c);
  return out;
}
