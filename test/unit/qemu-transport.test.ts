// The usocket transport must always end in 'close': usocket's own destroy() emits nothing, and
// Node calls destroy() itself when a write fails. Without the 'close', dbus-native never learns
// that QEMU is gone (seen with a real QEMU killed while we wrote to it).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { USocket } from '../../src/qemu/usocket';
import { describe, expect, it } from 'vitest';
import { startDbusDaemon } from '../harness/dbus';
import { tempDir, waitFor } from '../harness/procs';
import { socketpair } from '../../src/native';
import { openBus } from '../../src/qemu';
import { streamOnFd } from '../../src/qemu/transport';

/** Whether a child process spawned now would hold `fd`. */
function inheritedByChild(fd: number): boolean {
  return execFileSync('sh', ['-c', `[ -e /proc/self/fd/${fd} ] && echo yes || echo no`]).toString().trim() === 'yes';
}

describe('fd-capable transport (usocket)', () => {
  it('a write to a dead peer ends in exactly one close event', async () => {
    const [mine, theirs] = socketpair();
    const s = streamOnFd(mine, true);
    let closes = 0;
    s.on('close', () => closes++);
    s.on('error', () => undefined);
    fs.closeSync(theirs);
    for (let i = 0; i < 5 && closes === 0; i++) {
      s.write(Buffer.alloc(1024));
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor('close', 2000, () => closes > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(closes).toBe(1);
  });

  it('destroy() by us also emits close once', async () => {
    const [mine, theirs] = socketpair();
    const s = streamOnFd(mine, true);
    let closes = 0;
    s.on('close', () => closes++);
    s.destroy();
    s.destroy();
    await waitFor('close', 2000, () => closes > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(closes).toBe(1);
    fs.closeSync(theirs);
  });

  it('peer EOF is seen as end + close', async () => {
    const [mine, theirs] = socketpair();
    const s = streamOnFd(mine, true);
    const ev: string[] = [];
    s.on('end', () => ev.push('end'));
    s.on('close', () => ev.push('close'));
    s.on('readable', () => {
      while (s.read() !== null) {
        /* drain */
      }
    });
    fs.closeSync(theirs);
    await waitFor('end', 2000, () => ev.includes('end'));
    s.destroy();
    await waitFor('close', 2000, () => ev.includes('close'));
  });

  it('our bus connection is not inherited by child processes (usocket makes it without CLOEXEC)', async () => {
    const bus = await startDbusDaemon();
    try {
      const c = await openBus(bus.address);
      const fd = (c.bus.connection.stream as unknown as { fd: number }).fd;
      expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/^socket:/);
      expect(inheritedByChild(fd)).toBe(false);
      await c.close();
    } finally {
      await bus.stop();
    }
  });

  it('descriptors received over the transport (ScanoutMap memfds) are not inherited either', async () => {
    const [mine, theirs] = socketpair();
    const s = streamOnFd(mine, true);
    const got: number[] = [];
    s.on('fds', (fds: number[]) => got.push(...fds));
    s.on('readable', () => {
      while (s.read() !== null) {
        /* drain */
      }
    });
    const file = path.join(tempDir('memfd'), 'frame');
    fs.writeFileSync(file, 'x');
    const toSend = fs.openSync(file, 'r');
    const sender = new USocket({ fd: theirs });
    sender.write({ data: Buffer.from('m'), fds: [toSend] });
    await waitFor('an fd', 2000, () => got.length === 1);
    fs.closeSync(toSend);
    expect(fs.readlinkSync(`/proc/self/fd/${got[0]}`)).toBe(file);
    expect(inheritedByChild(got[0])).toBe(false);
    fs.closeSync(got[0]);
    s.destroy();
    sender.destroy();
  });
});
