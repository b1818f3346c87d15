// The usocket transport must always end in 'close': usocket's own destroy() emits nothing, and
// Node calls destroy() itself when a write fails. Without the 'close', dbus-native never learns
// that QEMU is gone (seen with a real QEMU killed while we wrote to it).
import * as fs from 'fs';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../harness/procs';
import { socketpair } from '../../src/native';
import { streamOnFd } from '../../src/qemu/transport';

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
});
