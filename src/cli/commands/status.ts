// `status`, `grab`, `release`: the bridges on the session bus (src/service/status-bus), for a
// person (a table read at a glance) and for scripts (--json, schema in docs/status.schema.json).
import { UsageError } from '../../config/errors';
import { routeKindOf } from '../../service/route';
import type { StatusClient } from '../../service/status-bus/client';
import type { BridgeJson, RouteJson, StatusJson } from '../../service/status-bus/json';
import type { CliIo } from '../main';

function loadClient(): typeof StatusClient {
  return (require('../../service/status-bus/client') as typeof import('../../service/status-bus/client')).StatusClient;
}

const fixed = (n: number, d = 1): string => n.toFixed(d);

/** One route as a table cell: what matters at a glance, or why it is not running. */
export function routeCell(r: RouteJson | undefined, now = Date.now()): string {
  if (!r) return '-';
  if (r.state === 'retrying') {
    const inS = r.nextRetryAt ? Math.max(0, Math.round((Date.parse(r.nextRetryAt) - now) / 1000)) : undefined;
    return `retrying${inS !== undefined ? ` in ${inS}s` : ''}: ${r.reason}`;
  }
  if (r.state !== 'running') return r.reason ? `${r.state}: ${r.reason}` : r.state;
  const c = r.counters;
  if (!c) return 'running';
  switch (c.route) {
    case 'audio-out':
      return c.format ? `${c.format.replace(/^\S+ /, '')}, ${c.underruns} underruns, ${fixed(c.measuredLatencyMs, 0)} ms` : 'idle';
    case 'audio-in':
      return `${c.open ? 'recording' : 'idle'}, ${c.underruns} underruns`;
    case 'camera':
      return c.viewer ? `${fixed(c.fps)} fps, p99 ${fixed(c.latencyP99Ms, 0)} ms` : 'no viewer';
    case 'input':
      return `${c.forwardTo === 'guest' ? (c.grabbed ? 'GRABBED' : 'to guest') : 'released'}, ${c.devices.length} dev${c.lastError ? ', error' : ''}`;
  }
}

/** The CAMERA cell: the one camera's, or each of several as `camera-N: …` (the route ids), in order. */
export function cameraCell(routes: readonly RouteJson[], now = Date.now()): string {
  const cams = routes.filter((r) => r.name !== 'camera' && routeKindOf(r.name) === 'camera');
  if (cams.length === 0) return routeCell(routes.find((r) => r.name === 'camera'), now);
  return cams.map((r) => `${r.name}: ${routeCell(r, now)}`).join(' · ');
}

/** The table: one row per bridge. */
export function statusTable(s: StatusJson, now = Date.now()): string[] {
  if (s.bridges.length === 0) return ['no bridge is running on the session bus (start one: systemctl --user start qemu-dbus-bridge@VM)'];
  const head = ['VM', 'PID', 'VM LINK', 'AUDIO OUT', 'MIC', 'CAMERA', 'INPUT'];
  const rows = s.bridges.map((b: BridgeJson) => {
    const route = (n: string) => routeCell(b.routes.find((r) => r.name === n), now);
    return [b.vm, String(b.pid), b.attached ? 'attached' : 'waiting', route('audio-out'), route('audio-in'), cameraCell(b.routes, now), route('input')];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(head), ...rows.map(line)];
}

export async function statusCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  const vm = argv.vm as string | undefined;
  if (vm === '') throw new UsageError('--vm needs a VM name');
  const json = Boolean(argv.json);
  const watch = Boolean(argv.watch);
  const client = await loadClient().open(io.env.DBUS_SESSION_BUS_ADDRESS);
  try {
    const tty = Boolean(process.stdout.isTTY);
    for (;;) {
      const s = await client.status(vm);
      if (json) io.out(watch ? JSON.stringify(s) : JSON.stringify(s, null, 2));
      else {
        // In place on a terminal: home, clear, redraw. Elsewhere one table after the other.
        if (watch && tty) process.stdout.write('\x1b[H\x1b[2J');
        for (const l of statusTable(s)) io.out(l);
        if (watch && !tty) io.out('');
      }
      if (!watch) return 0;
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await client.close();
  }
}

async function grabOrRelease(argv: Record<string, unknown>, io: CliIo, member: 'Grab' | 'Release'): Promise<number> {
  const vm = argv.vm as string;
  const client = await loadClient().open(io.env.DBUS_SESSION_BUS_ADDRESS);
  try {
    const toGuest = await client.grab(vm, member);
    io.out(`VM '${vm}': input goes to the ${toGuest ? 'guest' : 'host'}`);
    return 0;
  } finally {
    await client.close();
  }
}

export const grabCommand = (argv: Record<string, unknown>, io: CliIo): Promise<number> => grabOrRelease(argv, io, 'Grab');
export const releaseCommand = (argv: Record<string, unknown>, io: CliIo): Promise<number> => grabOrRelease(argv, io, 'Release');
