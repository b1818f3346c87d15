import { describe, expect, it } from 'vitest';
import { keyCodeByName, keyName, linuxToQnum, mappedKeyCodes } from '../../src/input/keymap';
import { LINUX_KEY_TABLE } from '../../src/input/keymap-linux-qnum';
import { parseHotkey } from '../../src/input/hotkey';
import * as fs from 'fs';
import * as path from 'path';

describe('generated linux -> qnum keymap', () => {
  it('matches the pairs verified against QEMU 7.2 and keycodemapdb (linux -> qnum)', () => {
    const known: Array<[string, number]> = [
      ['KEY_A', 0x1e],
      ['KEY_LEFTSHIFT', 0x2a],
      ['KEY_UP', 0xc8],
      ['KEY_DOWN', 0xd0],
      ['KEY_LEFT', 0xcb],
      ['KEY_RIGHT', 0xcd],
      ['KEY_RIGHTCTRL', 0x9d],
      ['KEY_RIGHTALT', 0xb8],
      ['KEY_KPENTER', 0x9c],
      ['KEY_KPSLASH', 0xb5],
      ['KEY_LEFTMETA', 0xdb],
      ['KEY_RIGHTMETA', 0xdc],
      ['KEY_COMPOSE', 0xdd],
      ['KEY_SYSRQ', 0x54],
      ['KEY_PAUSE', 0xc6],
      ['KEY_HOME', 0xc7],
      ['KEY_INSERT', 0xd2],
      ['KEY_DELETE', 0xd3],
      ['KEY_F11', 0x57],
      ['KEY_F12', 0x58],
      ['KEY_102ND', 0x56],
      ['KEY_ZENKAKUHANKAKU', 0x76],
      ['KEY_RO', 0x73],
      ['KEY_KPJPCOMMA', 0x5c],
      ['KEY_MUTE', 0xa0],
      ['KEY_VOLUMEDOWN', 0xae],
      ['KEY_VOLUMEUP', 0xb0],
      ['KEY_POWER', 0xde],
      ['KEY_F13', 0x5d],
      ['KEY_F16', 0x55],
      ['KEY_F17', 0x83],
      ['KEY_F18', 0xf7],
      ['KEY_F24', 0x6f],
      ['KEY_HANGEUL', 0x72],
      ['KEY_HANJA', 0x71],
      ['KEY_PLAYPAUSE', 0xa2],
      ['KEY_NEXTSONG', 0x99],
    ];
    for (const [name, qnum] of known) {
      const code = keyCodeByName(name);
      expect(code, name).toBeDefined();
      expect([name, linuxToQnum(code!)]).toEqual([name, qnum]);
    }
  });

  it('is the identity for KEY_ESC..KEY_KPDOT and KEY_102ND..KEY_F12 (keycodemapdb: qnum is the AT set-1 code there)', () => {
    for (let c = 1; c <= 83; c++) expect(linuxToQnum(c)).toBe(c);
    for (let c = 86; c <= 88; c++) expect(linuxToQnum(c)).toBe(c);
  });

  it('covers 236 Linux codes with distinct qnums, media keys included', () => {
    const codes = mappedKeyCodes();
    expect(codes.length).toBe(236);
    expect(codes.filter((c) => c >= 128).length).toBeGreaterThan(100);
    // distinct, except KEY_SYSRQ (99) and the unnamed code 84, both AT set1 0x54
    const qnums = codes.filter((c) => c !== 84).map(linuxToQnum);
    expect(new Set(qnums).size).toBe(qnums.length);
    expect(linuxToQnum(84)).toBe(0x54);
    for (const q of qnums) {
      expect(q).toBeGreaterThan(0);
      expect(q).toBeLessThan(0x100);
    }
  });

  it('has no qnum for codes QEMU cannot take (dropped, not sent as 0)', () => {
    expect(linuxToQnum(0)).toBe(0);
    expect(linuxToQnum(keyCodeByName('KEY_UNKNOWN')!)).toBe(0);
    expect(linuxToQnum(0x110)).toBe(0); // BTN_LEFT is not a key
    expect(linuxToQnum(99999)).toBe(0);
    expect(linuxToQnum(-1)).toBe(0);
  });

  it('names keys both ways', () => {
    expect(keyName(29)).toBe('KEY_LEFTCTRL');
    expect(keyName(42)).toBe('KEY_LEFTSHIFT');
    expect(keyCodeByName('KEY_SHIFT')).toBe(42);
    expect(keyCodeByName('leftctrl')).toBe(29);
    expect(keyCodeByName('KEY_F12')).toBe(88);
    expect(keyCodeByName('88')).toBe(88);
    expect(keyCodeByName('KEY_NOPE')).toBeUndefined();
  });

  it('is a generated file that says how to regenerate it, and the CSV is not in the repo', () => {
    const file = fs.readFileSync(path.join(__dirname, '../../src/input/keymap-linux-qnum.ts'), 'utf8');
    expect(file).toMatch(/GENERATED FILE/);
    expect(file).toMatch(/node scripts\/gen-keymap\.js \/path\/to\/keycodemapdb\/data\/keymaps\.csv > src\/input\/keymap-linux-qnum\.ts/);
    expect(LINUX_KEY_TABLE.length).toBeGreaterThan(400);
    expect(fs.existsSync(path.join(__dirname, '../../scripts/keymaps.csv'))).toBe(false);
  });
});

describe('toggle hotkey parsing', () => {
  it('knows the input-linux presets', () => {
    expect(parseHotkey()!.spec).toBe('ctrl-ctrl');
    expect(parseHotkey('ctrl-ctrl')!.slots.map((s) => [...s])).toEqual([[29], [97]]);
    expect(parseHotkey('alt-alt')!.slots.map((s) => [...s])).toEqual([[56], [100]]);
    expect(parseHotkey('shift-shift')!.slots.map((s) => [...s])).toEqual([[42], [54]]);
    expect(parseHotkey('meta-meta')!.slots.map((s) => [...s])).toEqual([[125], [126]]);
    expect(parseHotkey('scrolllock')!.slots.map((s) => [...s])).toEqual([[70]]);
    expect(parseHotkey('ctrl-scrolllock')!.slots.map((s) => [...s])).toEqual([[29, 97], [70]]);
    expect(parseHotkey('none')).toBeNull();
  });

  it('parses custom combinations', () => {
    const h = parseHotkey('KEY_LEFTCTRL+KEY_F12')!;
    expect(h.spec).toBe('KEY_LEFTCTRL+KEY_F12');
    expect(h.slots.map((s) => [...s])).toEqual([[29], [88]]);
    expect(parseHotkey('leftalt + f1')!.slots.map((s) => [...s])).toEqual([[56], [59]]);
  });

  it('rejects unknown names with one clear error that says what to use', () => {
    expect(() => parseHotkey('KEY_LEFTCTRL+KEY_BOGUS')).toThrow(/unknown key "KEY_BOGUS".*KEY_LEFTCTRL\+KEY_F12/);
    expect(() => parseHotkey('ctrl++')).toThrow(expect.objectContaining({ code: 'EINVALIDHOTKEY' }));
  });
});
