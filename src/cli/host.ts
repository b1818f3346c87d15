// Host inventory for `devices` and `doctor`: evdev input devices, sound sinks and sources
// (pw-dump / pactl), v4l2loopback webcams. Everything reads through an injectable Host so unit
// tests can point it at a fake /sys tree and canned command output.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Host {
  /** Root for /sys and /dev lookups ("/" on a real machine). */
  root: string;
  env: NodeJS.ProcessEnv;
  exec(cmd: string, args: string[], timeoutMs?: number): Promise<CommandResult>;
}

export function realHost(env: NodeJS.ProcessEnv = process.env): Host {
  return {
    root: '/',
    env,
    exec: (cmd, args, timeoutMs = 5000) =>
      new Promise((resolve) => {
        execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
          const code = e ? (typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1) : 0;
          resolve({ code, stdout: String(stdout), stderr: e && e.code === 'ENOENT' ? `${cmd}: not installed` : String(stderr) });
        });
      }),
  };
}

const at = (host: Host, p: string): string => path.join(host.root, p);
const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
};
const list = (dir: string): string[] => {
  try {
    return fs.readdirSync(dir).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  } catch {
    return [];
  }
};

export type InputKind = 'keyboard' | 'mouse' | 'tablet' | 'joystick' | 'other';

export interface InputDevice {
  /** /dev/input/eventN */
  node: string;
  /** Stable path to use in config (/dev/input/by-id/...), when udev made one. */
  byId?: string;
  name: string;
  kind: InputKind;
  readable: boolean;
}

/**
 * Capability bitmaps in /sys are space-separated hex `unsigned long` words (unpadded), most
 * significant first: the word size is the kernel's, which matches this (native) process.
 */
const BITS_PER_LONG = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(process.arch) ? 64 : 32;
function hasBit(bitmap: string | undefined, bit: number): boolean {
  if (!bitmap) return false;
  const words = bitmap.split(/\s+/).reverse();
  const bitsPerWord = BITS_PER_LONG;
  const word = words[Math.floor(bit / bitsPerWord)];
  if (!word) return false;
  return (BigInt('0x' + word) >> BigInt(bit % bitsPerWord)) & 1n ? true : false;
}

function classify(host: Host, event: string): InputKind {
  const caps = at(host, `/sys/class/input/${event}/device/capabilities`);
  const key = readText(path.join(caps, 'key'));
  const rel = readText(path.join(caps, 'rel'));
  const abs = readText(path.join(caps, 'abs'));
  const KEY_A = 30;
  const BTN_LEFT = 0x110;
  const BTN_JOYSTICK = 0x120;
  const REL_X = 0;
  const ABS_X = 0;
  if (hasBit(key, KEY_A)) return 'keyboard';
  if (hasBit(rel, REL_X) && hasBit(key, BTN_LEFT)) return 'mouse';
  if (hasBit(abs, ABS_X) && hasBit(key, BTN_LEFT)) return 'tablet';
  if (hasBit(key, BTN_JOYSTICK)) return 'joystick';
  return 'other';
}

export function inputDevices(host: Host): InputDevice[] {
  const byIdDir = at(host, '/dev/input/by-id');
  const byIdFor = new Map<string, string>();
  for (const link of list(byIdDir)) {
    try {
      const target = path.basename(fs.readlinkSync(path.join(byIdDir, link)));
      // Prefer the "-event-kbd"/"-event-mouse" link over "-if01-event-..." siblings.
      if (!byIdFor.has(target)) byIdFor.set(target, `/dev/input/by-id/${link}`);
    } catch {
      /* not a link */
    }
  }
  return list(at(host, '/dev/input'))
    .filter((n) => /^event\d+$/.test(n))
    .map((event) => {
      let readable = false;
      try {
        fs.accessSync(at(host, `/dev/input/${event}`), fs.constants.R_OK);
        readable = true;
      } catch {
        readable = false;
      }
      return {
        node: `/dev/input/${event}`,
        byId: byIdFor.get(event),
        name: readText(at(host, `/sys/class/input/${event}/device/name`)) ?? '(unknown)',
        kind: classify(host, event),
        readable,
      };
    });
}

export interface VideoDevice {
  node: string;
  name: string;
}

/** v4l2loopback devices are the ones under /sys/devices/virtual/video4linux. */
export function loopbackDevices(host: Host): VideoDevice[] {
  const dir = at(host, '/sys/devices/virtual/video4linux');
  return list(dir)
    .filter((n) => /^video\d+$/.test(n))
    .map((n) => ({ node: `/dev/${n}`, name: readText(path.join(dir, n, 'name')) ?? n }));
}

export interface V4l2LoopbackModule {
  loaded: boolean;
  /** exclusive_caps per device ("Y"/"N"), as the module reports it. */
  exclusiveCaps: string[];
}

export function v4l2loopbackModule(host: Host): V4l2LoopbackModule {
  const mod = at(host, '/sys/module/v4l2loopback');
  if (!fs.existsSync(mod)) return { loaded: false, exclusiveCaps: [] };
  const caps = readText(path.join(mod, 'parameters', 'exclusive_caps')) ?? '';
  return { loaded: true, exclusiveCaps: caps.split(',').filter(Boolean) };
}

export interface AudioNode {
  server: 'pipewire' | 'pulse';
  direction: 'sink' | 'source';
  name: string;
  description: string;
}

export interface AudioInventory {
  pipewire: { reachable: boolean; error?: string; nodes: AudioNode[] };
  pulse: { reachable: boolean; error?: string; serverName?: string; nodes: AudioNode[] };
}

interface PwObject {
  type?: string;
  info?: { props?: Record<string, unknown> };
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

export async function audioInventory(host: Host): Promise<AudioInventory> {
  const inv: AudioInventory = { pipewire: { reachable: false, nodes: [] }, pulse: { reachable: false, nodes: [] } };
  const pw = await host.exec('pw-dump', ['--no-colors']);
  if (pw.code === 0) {
    try {
      const objs = JSON.parse(pw.stdout) as PwObject[];
      inv.pipewire.reachable = true;
      for (const o of objs) {
        if (o.type !== 'PipeWire:Interface:Node') continue;
        const p = o.info?.props ?? {};
        const cls = String(p['media.class'] ?? '');
        const direction = cls === 'Audio/Sink' ? 'sink' : cls.startsWith('Audio/Source') ? 'source' : undefined;
        if (!direction) continue;
        inv.pipewire.nodes.push({
          server: 'pipewire',
          direction,
          name: String(p['node.name'] ?? ''),
          description: String(p['node.description'] ?? p['node.nick'] ?? ''),
        });
      }
    } catch (err) {
      inv.pipewire.error = `pw-dump output unreadable: ${(err as Error).message}`;
    }
  } else {
    inv.pipewire.error = firstLine(pw.stderr) || `pw-dump exited with ${pw.code}`;
  }
  const info = await host.exec('pactl', ['info']);
  if (info.code === 0) {
    inv.pulse.reachable = true;
    inv.pulse.serverName = /Server Name: (.*)/.exec(info.stdout)?.[1];
    for (const direction of ['sink', 'source'] as const) {
      const r = await host.exec('pactl', ['list', 'short', `${direction}s`]);
      if (r.code !== 0) continue;
      for (const line of r.stdout.split('\n')) {
        const cols = line.split('\t');
        if (cols.length < 2) continue;
        // Monitors of sinks are not microphones.
        if (direction === 'source' && cols[1].endsWith('.monitor')) continue;
        inv.pulse.nodes.push({ server: 'pulse', direction, name: cols[1], description: cols[3] ?? '' });
      }
    }
  } else {
    inv.pulse.error = firstLine(info.stderr) || `pactl exited with ${info.code}`;
  }
  return inv;
}
