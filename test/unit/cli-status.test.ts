// `status` as a person reads it: one row per bridge, each route's cell says what matters or why
// it is not running.
import { describe, expect, it } from 'vitest';
import { cameraCell, routeCell, statusTable } from '../../src/cli/commands/status';
import { emptyCounters } from '../../src/service/route';
import type { RouteJson, StatusJson } from '../../src/service/status-bus/json';

const NOW = Date.parse('2026-01-01T00:00:00Z');

function route(over: Partial<RouteJson>): RouteJson {
  return { name: 'audio-out', state: 'running', reason: '', nextRetryAt: null, summary: '', target: '', counters: null, ...over };
}

describe('status table', () => {
  it('a retrying route says in how many seconds and why', () => {
    const r = route({ state: 'retrying', reason: 'EPIPEWIRE: no sound server', nextRetryAt: new Date(NOW + 4000).toISOString() });
    expect(routeCell(r, NOW)).toBe('retrying in 4s: EPIPEWIRE: no sound server');
  });

  it('an unavailable route gives its reason', () => {
    expect(routeCell(route({ state: 'unavailable', reason: 'EP2P_AUDIO: audio over p2p needs QEMU 8.0' }), NOW)).toBe('unavailable: EP2P_AUDIO: audio over p2p needs QEMU 8.0');
  });

  it('audio out playing: format, underruns and latency', () => {
    const counters = { ...emptyCounters('audio-out'), format: 's16le 48000 Hz 2ch', underruns: 3, measuredLatencyMs: 21.4 };
    expect(routeCell(route({ counters }), NOW)).toBe('48000 Hz 2ch, 3 underruns, 21 ms');
  });

  it('input: GRABBED only when a real device is held; released says so', () => {
    const c = emptyCounters('input');
    expect(routeCell(route({ name: 'input', counters: { ...c, devices: ['/dev/input/kbd'], grabbed: true } }), NOW)).toBe('GRABBED, 1 dev');
    expect(routeCell(route({ name: 'input', counters: { ...c, devices: ['/tmp/replay'] } }), NOW)).toBe('to guest, 1 dev');
    expect(routeCell(route({ name: 'input', counters: { ...c, forwardTo: 'host' } }), NOW)).toBe('released, 0 dev');
  });

  it('one row per bridge under a header; a route the bridge does not run is "-"', () => {
    const s: StatusJson = {
      version: 1,
      bridges: [
        { vm: 'a', uuid: '', pid: 10, busName: 'x', attached: true, status: '', qemuFeatures: [], routes: [route({ name: 'camera', counters: { ...emptyCounters('camera'), viewer: true, fps: 29.96, latencyP99Ms: 8.2 } })] },
        { vm: 'bb', uuid: '', pid: 200, busName: 'y', attached: false, status: '', qemuFeatures: [], routes: [] },
      ],
    };
    expect(statusTable(s, NOW)).toEqual([
      'VM  PID  VM LINK   AUDIO OUT  MIC  CAMERA              INPUT',
      'a   10   attached  -          -    30.0 fps, p99 8 ms  -',
      'bb  200  waiting   -          -    -                   -',
    ]);
  });

  it('several cameras share the CAMERA column, each as camera-N: its cell, in order', () => {
    const cam = emptyCounters('camera');
    const routes = [
      route({ name: 'camera-0', counters: { ...cam, viewer: true, fps: 5, latencyP99Ms: 12 } }),
      route({ name: 'camera-1', counters: cam }),
      route({ name: 'camera-2', state: 'unavailable', reason: 'ECONSOLE_UNKNOWN: no console 5', counters: cam }),
    ];
    expect(cameraCell(routes, NOW)).toBe('camera-0: 5.0 fps, p99 12 ms · camera-1: no viewer · camera-2: unavailable: ECONSOLE_UNKNOWN: no console 5');
  });

  it('no bridge: one line saying how to start one', () => {
    expect(statusTable({ version: 1, bridges: [] })).toEqual(['no bridge is running on the session bus (start one: systemctl --user start qemu-dbus-bridge@VM)']);
  });
});
