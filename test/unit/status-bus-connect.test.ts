// Reaching the session bus for the status service (src/service/status-bus/service.ts): one
// attempt that timed out on a loaded host used to leave the bridge without status or hand-over
// for its whole life. The bus here is a real dbus-daemon behind a relay whose first connection
// is accepted and never answered, as a bus too busy to answer in time looks to the bridge.
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unixPathOf } from '../../src/qemu';
import { createLogger } from '../../src/log';
import { Controller } from '../../src/service/controller';
import { busNameFor } from '../../src/service/status-bus/interface';
import { StatusService } from '../../src/service/status-bus/service';
import { listNames, startDbusDaemon, type DbusDaemon } from '../harness/dbus';

describe('the status service reaching the session bus', () => {
  let bus: DbusDaemon;
  let dir: string;
  let relay: net.Server;
  const sockets: net.Socket[] = [];
  const lines: string[] = [];
  const log = createLogger({ format: 'text', level: 'info', write: (l) => lines.push(l), journal: false });
  const controller = (): Controller => new Controller({ attacher: { attach: () => new Promise(() => undefined) } as never, routes: [], log });

  /** A relay to the real bus that leaves its first `silent` connections unanswered. */
  async function relayTo(target: string, silent: number): Promise<string> {
    const at = path.join(dir, 'relay');
    let seen = 0;
    relay = net.createServer((c) => {
      sockets.push(c);
      if (seen++ < silent) return; // accepted, never answered
      const up = net.connect(unixPathOf(target));
      sockets.push(up);
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => relay.listen(at, r));
    return `unix:path=${at}`;
  }

  beforeEach(async () => {
    bus = await startDbusDaemon();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qdb-status-connect-'));
    lines.length = 0;
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise<void>((r) => relay.close(() => r()));
    await bus.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a first attempt that times out is followed by a second, and the bridge is published', async () => {
    const address = await relayTo(bus.address, 1);
    const s = await StatusService.start({ controller: controller(), log, vmName: 'slowbus', address, connectTriesMs: [300, 5000] });
    expect(s).toBeDefined();
    expect(await listNames(bus.address)).toContain(busNameFor('slowbus'));
    expect(lines.filter((l) => l.includes('trying once more for 5 s'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('status is unavailable'))).toHaveLength(0);
    await s!.close();
  });

  it('a bus that answers neither attempt: status is unavailable, said once', async () => {
    const address = await relayTo(bus.address, 2);
    const s = await StatusService.start({ controller: controller(), log, vmName: 'deadbus', address, connectTriesMs: [200, 300] });
    expect(s).toBeUndefined();
    expect(lines.filter((l) => l.includes('status is unavailable'))).toHaveLength(1);
    expect(await listNames(bus.address)).not.toContain(busNameFor('deadbus'));
  });
});
