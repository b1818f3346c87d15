// Input proxies and the audio-in listener against the real QEMU 7.2 guest: what the guest's evdev
// sees for Keyboard/Mouse calls, and the guest recording exactly the bytes our Read replies carried.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../harness/procs';
import { startGuest, type Guest } from '../harness/qemu';
import { QemuVm, type AudioInHandler, type PcmFormat } from '../../src/qemu';

/** Answers every Read with a repeating L=0x1234 R=0x5678 frame, continuous across reads. */
class PatternMic implements AudioInHandler {
  private phase = 0;
  reads = 0;
  format: PcmFormat | undefined;
  init(_id: bigint, f: PcmFormat): void {
    this.format = f;
  }
  fini(): void {}
  setEnabled(): void {}
  setVolume(): void {}
  read(_id: bigint, size: number): Uint8Array {
    const pat = [0x34, 0x12, 0x78, 0x56];
    const out = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) out[i] = pat[(this.phase + i) % 4];
    this.phase = (this.phase + size) % 4;
    this.reads++;
    return out;
  }
}

describe('QEMU 7.2 input and microphone', () => {
  let guest: Guest;
  let vm: QemuVm;

  beforeAll(async () => {
    guest = await startGuest({ scenario: 'record', params: { rec_ms: 1000 } });
    vm = await QemuVm.connect({ busAddress: guest.busAddress });
    vm.on('error', () => undefined);
  });
  afterAll(async () => {
    await vm?.close();
    await guest?.stop();
  });

  it('the guest records exactly what our Read replies carried', async () => {
    const mic = new PatternMic();
    await vm.addAudioInListener(mic);
    const m = await guest.waitForSerial(/MARK rec-done bytes=(\d+) md5=([0-9a-f]+)/, 120_000);
    expect(mic.format).toMatchObject({ freq: 44100, nchannels: 2, bits: 16 });
    expect(mic.reads).toBeGreaterThan(10);
    expect(Number(m[1])).toBe(176400);
    // md5 of 44100 x (34 12 78 56), as recorded in the lab with a GDBus client
    expect(m[2]).toBe('80ae216f8fc011e4d3705661a23001da');
  });

  it('Keyboard.Press/Release(qnum) and Mouse buttons reach the guest evdev', async () => {
    await guest.waitForSerial(/MARK ready/, 120_000);
    const from = guest.serial().length;
    const c = vm.console();
    await c.keyboard.press(0x1e); // A
    await c.keyboard.release(0x1e);
    await c.keyboard.press(0xc8); // Up (E0 48)
    await c.keyboard.release(0xc8);
    await guest.waitForSerial(/EV event\d+ type=1 code=30 value=1/, 30_000, from);
    await guest.waitForSerial(/EV event\d+ type=1 code=30 value=0/, 30_000, from);
    await guest.waitForSerial(/EV event\d+ type=1 code=103 value=1/, 30_000, from);
    await c.mouse.press(0);
    await c.mouse.release(0);
    await guest.waitForSerial(/EV event\d+ type=1 code=272 value=1/, 30_000, from);
    await guest.waitForSerial(/EV event\d+ type=1 code=272 value=0/, 30_000, from);
    expect(() => c.mouse.press(9)).toThrow(/0\.\.6/);
    await waitFor('QEMU still alive', 2000, () => guest.isRunning());
  });
});
