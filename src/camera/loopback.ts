// The host's v4l2loopback devices and module as sysfs shows them, without opening anything (no
// addon): for the CLI (`devices`, `doctor`) and for `--camera auto` (options.ts). `root` is "/" on
// a real machine; unit tests pass a fake tree.
import * as fs from 'fs';
import * as path from 'path';

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** video<N> entries of dir in numeric order ([] when dir is missing). */
export function videoNodes(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /^video\d+$/.test(n));
  } catch {
    return [];
  }
  return names.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
}

export interface LoopbackDevice {
  /** /dev/videoN */
  node: string;
  /** the card label (v4l2loopback card_label=) */
  name: string;
}

/** v4l2loopback devices: the ones under /sys/devices/virtual/video4linux, in numeric order. */
export function loopbackDevices(root = '/'): LoopbackDevice[] {
  const dir = path.join(root, 'sys/devices/virtual/video4linux');
  return videoNodes(dir).map((n) => ({ node: `/dev/${n}`, name: readText(path.join(dir, n, 'name')) ?? n }));
}

export interface V4l2LoopbackModule {
  loaded: boolean;
  /** exclusive_caps per device ("Y"/"N"), as the module reports it. */
  exclusiveCaps: string[];
}

export function v4l2loopbackModule(root = '/'): V4l2LoopbackModule {
  const mod = path.join(root, 'sys/module/v4l2loopback');
  if (!fs.existsSync(mod)) return { loaded: false, exclusiveCaps: [] };
  const caps = readText(path.join(mod, 'parameters', 'exclusive_caps')) ?? '';
  return { loaded: true, exclusiveCaps: caps.split(',').filter(Boolean) };
}
