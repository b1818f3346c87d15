// What an evdev device is, from its capabilities: one rule (describeDevice) for the forwarder's
// selection (`all-keyboards`, `all-mice`: EvdevSource reads the capabilities through libevdev)
// and for the CLI's listing (`devices`, `doctor`: inputDevices() reads the same bitmaps from
// sysfs, so nothing is opened and no addon is needed). `root` is "/" on a real machine; unit
// tests pass a fake /sys + /dev tree.
import * as fs from 'fs';
import * as path from 'path';
import type { EvdevRawInfo } from '../native-api/evdev';
import type { InputDeviceInfo } from './device';
import type { AbsRange } from './forwarder';
import {
  ABS_MT_POSITION_X,
  ABS_MT_POSITION_Y,
  ABS_MT_SLOT,
  ABS_X,
  ABS_Y,
  BTN_GAMEPAD,
  BTN_JOYSTICK,
  BTN_LEFT,
  BTN_TOOL_PEN,
  BTN_TOUCH,
  EV_ABS,
  EV_KEY,
  EV_LED,
  EV_REL,
  INPUT_PROP_DIRECT,
  KEY_A,
  KEY_ENTER,
  KEY_Z,
  REL_WHEEL_HI_RES,
  REL_X,
  REL_Y,
} from './events';

/** Where the kernel puts evdev nodes (the hot-plug watcher's default directory, too). */
export const INPUT_DEV_DIR = '/dev/input';

function isJoystick(raw: EvdevRawInfo): boolean {
  const keys = raw.events[EV_KEY];
  return (keys?.includes(BTN_JOYSTICK) ?? false) || (keys?.includes(BTN_GAMEPAD) ?? false);
}

/** Classifies a device from its capabilities. */
export function describeDevice(raw: EvdevRawInfo): InputDeviceInfo {
  const has = (type: number, code: number) => raw.events[type]?.includes(code) ?? false;
  const keyboard = has(EV_KEY, KEY_A) && has(EV_KEY, KEY_Z) && has(EV_KEY, KEY_ENTER);
  const mouse = has(EV_REL, REL_X) && has(EV_REL, REL_Y) && has(EV_KEY, BTN_LEFT);
  const joystick = isJoystick(raw);
  const absolutePointer =
    !joystick && has(EV_ABS, ABS_X) && has(EV_ABS, ABS_Y) && (has(EV_KEY, BTN_LEFT) || has(EV_KEY, BTN_TOUCH) || has(EV_KEY, BTN_TOOL_PEN));
  const range = (code: number): AbsRange | undefined => {
    const r = raw.abs[code];
    return r ? [r[0], r[1]] : undefined;
  };
  const slotMax = raw.abs[ABS_MT_SLOT]?.[1];
  const touchscreen =
    (raw.props?.includes(INPUT_PROP_DIRECT) ?? false) && has(EV_ABS, ABS_MT_POSITION_X)
      ? { x: range(ABS_MT_POSITION_X), y: range(ABS_MT_POSITION_Y), slots: has(EV_ABS, ABS_MT_SLOT) && slotMax !== undefined ? slotMax + 1 : 1 }
      : undefined;
  return {
    name: raw.name ?? '',
    phys: raw.phys ?? '',
    uniq: raw.uniq ?? '',
    bustype: raw.bustype,
    vendor: raw.vendor,
    product: raw.product,
    version: raw.version,
    keyboard,
    mouse,
    absolutePointer,
    absX: range(ABS_X),
    absY: range(ABS_Y),
    hiResWheel: has(EV_REL, REL_WHEEL_HI_RES),
    hasLeds: (raw.events[EV_LED]?.length ?? 0) > 0,
    ...(touchscreen ? { touchscreen } : {}),
  };
}

export type InputKind = 'keyboard' | 'mouse' | 'tablet' | 'joystick' | 'other';

/** One word for a device in listings, by the same rule the forwarder's selection uses. */
export function deviceKind(raw: EvdevRawInfo): InputKind {
  const info = describeDevice(raw);
  if (info.keyboard) return 'keyboard';
  if (info.mouse) return 'mouse';
  if (info.absolutePointer) return 'tablet';
  if (isJoystick(raw)) return 'joystick';
  return 'other';
}

/**
 * Capability bitmaps in sysfs are space-separated hex `unsigned long` words (unpadded), most
 * significant first: the word size is the kernel's, which matches this (native) process.
 */
const BITS_PER_LONG = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(process.arch) ? 64 : 32;

/** The set bits of a sysfs bitmap, lowest first ([] for a missing file). */
export function bitmapCodes(bitmap: string | undefined): number[] {
  if (!bitmap) return [];
  const out: number[] = [];
  bitmap
    .trim()
    .split(/\s+/)
    .reverse()
    .forEach((word, i) => {
      let w = BigInt('0x' + word);
      for (let bit = 0; w !== 0n; bit++, w >>= 1n) if (w & 1n) out.push(i * BITS_PER_LONG + bit);
    });
  return out;
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function list(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch {
    return [];
  }
}

/**
 * What libevdev would report about /dev/input/<event>, from sysfs: capabilities, properties and
 * ids (no ABS ranges: those need the device opened).
 */
export function sysfsDeviceInfo(root: string, event: string): EvdevRawInfo {
  const dev = path.join(root, 'sys/class/input', event, 'device');
  const caps = (name: string) => bitmapCodes(readText(path.join(dev, 'capabilities', name)));
  const id = (name: string) => parseInt(readText(path.join(dev, 'id', name)) ?? '0', 16) || 0;
  return {
    name: readText(path.join(dev, 'name')) ?? null,
    phys: readText(path.join(dev, 'phys')) ?? null,
    uniq: readText(path.join(dev, 'uniq')) ?? null,
    bustype: id('bustype'),
    vendor: id('vendor'),
    product: id('product'),
    version: id('version'),
    driverVersion: 0,
    events: { [EV_KEY]: caps('key'), [EV_REL]: caps('rel'), [EV_ABS]: caps('abs'), [EV_LED]: caps('led') },
    abs: {},
    props: bitmapCodes(readText(path.join(dev, 'properties'))),
  };
}

export interface ListedInputDevice {
  /** /dev/input/eventN */
  node: string;
  /** Stable path to use in config (/dev/input/by-id/...), when udev made one. */
  byId?: string;
  name: string;
  kind: InputKind;
  readable: boolean;
}

/** The `devices()` listing: every /dev/input/eventN with its by-id name, kind and readability. */
export function inputDevices(root = '/'): ListedInputDevice[] {
  const devDir = path.join(root, INPUT_DEV_DIR);
  const byIdDir = path.join(devDir, 'by-id');
  const byIdFor = new Map<string, string>();
  for (const link of list(byIdDir)) {
    try {
      const target = path.basename(fs.readlinkSync(path.join(byIdDir, link)));
      // Prefer the "-event-kbd"/"-event-mouse" link over "-if01-event-..." siblings.
      if (!byIdFor.has(target)) byIdFor.set(target, `${INPUT_DEV_DIR}/by-id/${link}`);
    } catch {
      /* not a link */
    }
  }
  return list(devDir)
    .filter((n) => /^event\d+$/.test(n))
    .map((event) => {
      let readable = false;
      try {
        fs.accessSync(path.join(devDir, event), fs.constants.R_OK);
        readable = true;
      } catch {
        readable = false;
      }
      const raw = sysfsDeviceInfo(root, event);
      return { node: `${INPUT_DEV_DIR}/${event}`, byId: byIdFor.get(event), name: raw.name ?? '(unknown)', kind: deviceKind(raw), readable };
    });
}
