// Host inventory for `devices` and `doctor`: evdev input devices and v4l2loopback webcams (the
// input and camera parts' own listings: the face reads no /sys or /dev itself), sound sinks and
// sources (pw-dump / pactl). Everything goes through an injectable Host so unit tests can point
// it at a fake /sys tree and canned command output.
import { execFile } from 'child_process';
import { loopbackDevices as listLoopbackDevices, v4l2loopbackModule as readV4l2loopbackModule, type LoopbackDevice, type V4l2LoopbackModule } from '../camera/loopback';
import { inputDevices as listInputDevices, type ListedInputDevice } from '../input/devices';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Host {
  /** Root of the tree the parts' device listings read ("/" on a real machine). */
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

/** The input part's listing of evdev devices (kinds by the forwarder's own rule). */
export function inputDevices(host: Host): ListedInputDevice[] {
  return listInputDevices(host.root);
}

/** The camera part's listing of v4l2loopback devices. */
export function loopbackDevices(host: Host): LoopbackDevice[] {
  return listLoopbackDevices(host.root);
}

export function v4l2loopbackModule(host: Host): V4l2LoopbackModule {
  return readV4l2loopbackModule(host.root);
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
