import { describe, expect, it } from 'vitest';
import type { PcmFormat } from '../../src/qemu/handlers';
import { applyGains, applyVolume, captureFormatFor, fillSilence, flipSignBits, gainOf, gainsOf, isSilence, sampleLayout } from '../../src/audio/format';

function fmt(bits: 8 | 16 | 32, isSigned: boolean, nchannels = 2, o: Partial<PcmFormat> = {}): PcmFormat {
  const bytesPerFrame = (bits / 8) * nchannels;
  return { bits, isSigned, isFloat: false, freq: 44100, nchannels, bytesPerFrame, bytesPerSecond: bytesPerFrame * 44100, bigEndian: false, ...o };
}

describe('captureFormatFor: guest format -> capture format', () => {
  it.each([
    [fmt(16, true), 'S16LE', 'S16LE', false],
    [fmt(16, true, 2, { bigEndian: true }), 'S16BE', 'S16BE', false],
    [fmt(8, false), 'U8', 'U8', false],
    [fmt(8, true), 'S8', 'U8', true],
    [fmt(16, false), 'U16LE', 'S16LE', true],
    [fmt(32, false, 2, { bigEndian: true }), 'U32BE', 'S32BE', true],
    [fmt(32, true), 'S32LE', 'S32LE', false],
    [{ ...fmt(32, true), isFloat: true }, 'F32LE', 'F32LE', false],
  ] as const)('%o -> guest %s, captured as %s (flip %s)', (f, guest, capture, flip) => {
    const l = captureFormatFor(f);
    expect(l.guest).toBe(guest);
    expect(l.capture).toBe(capture);
    expect(l.flipSign).toBe(flip);
  });

  it('refuses what QEMU never sends, with a code', () => {
    expect(() => captureFormatFor({ ...fmt(16, true), isFloat: true })).toThrow(expect.objectContaining({ code: 'EAUDIOFORMAT' }));
    expect(() => captureFormatFor({ ...fmt(16, true), bytesPerFrame: 3 })).toThrow(expect.objectContaining({ code: 'EAUDIOFORMAT' }));
  });
});

describe('fillSilence', () => {
  it('uses the mid value for unsigned formats and zero for signed/float', () => {
    const cases: [PcmFormat, number[]][] = [
      [fmt(8, false, 1), [0x80, 0x80, 0x80, 0x80]],
      [fmt(8, true, 1), [0, 0, 0, 0]],
      [fmt(16, false, 1), [0x00, 0x80, 0x00, 0x80]],
      [fmt(16, false, 1, { bigEndian: true }), [0x80, 0x00, 0x80, 0x00]],
      [fmt(32, false, 1), [0, 0, 0, 0x80]],
      [fmt(16, true, 1), [0, 0, 0, 0]],
      [{ ...fmt(32, true, 1), isFloat: true }, [0, 0, 0, 0]],
    ];
    for (const [f, want] of cases) {
      const b = new Uint8Array(4).fill(0x55);
      fillSilence(captureFormatFor(f), b, 0, 4);
      expect([...b], JSON.stringify(f)).toEqual(want);
    }
  });

  it('touches only [start, end)', () => {
    const b = new Uint8Array(6).fill(0x55);
    fillSilence(captureFormatFor(fmt(8, false, 1)), b, 2, 4);
    expect([...b]).toEqual([0x55, 0x55, 0x80, 0x80, 0x55, 0x55]);
  });
});

describe('isSilence', () => {
  const layouts: PcmFormat[] = [fmt(8, false, 1), fmt(8, true, 1), fmt(16, false, 2), fmt(16, false, 2, { bigEndian: true }), fmt(32, false, 1), fmt(16, true, 2), { ...fmt(32, true, 1), isFloat: true }];

  it('is true for exactly what fillSilence writes, in every layout', () => {
    for (const f of layouts) {
      const b = new Uint8Array(16).fill(0x55);
      fillSilence(captureFormatFor(f), b, 0, 16);
      expect(isSilence(captureFormatFor(f), b, 0, 16), JSON.stringify(f)).toBe(true);
    }
  });

  it('is false when any one byte differs from the silence fillSilence writes', () => {
    for (const f of layouts) {
      for (let i = 0; i < 16; i++) {
        const b = new Uint8Array(16);
        fillSilence(captureFormatFor(f), b, 0, 16);
        b[i] ^= 0x01;
        expect(isSilence(captureFormatFor(f), b, 0, 16), `${JSON.stringify(f)} byte ${i}`).toBe(false);
      }
    }
  });
});

describe('flipSignBits', () => {
  it('turns S16 into U16 (LE and BE) and U8 into S8', () => {
    const le = Uint8Array.from([0x00, 0x00, 0xff, 0x7f]); // 0, 32767
    flipSignBits(captureFormatFor(fmt(16, false, 1)), le, 0, 4);
    expect([...le]).toEqual([0x00, 0x80, 0xff, 0xff]); // 32768, 65535
    const be = Uint8Array.from([0x00, 0x00, 0x80, 0x00]); // 0, -32768
    flipSignBits(captureFormatFor(fmt(16, false, 1, { bigEndian: true })), be, 0, 4);
    expect([...be]).toEqual([0x80, 0x00, 0x00, 0x00]);
    const u8 = Uint8Array.from([0x80, 0x00]);
    flipSignBits(captureFormatFor(fmt(8, true, 1)), u8, 0, 2);
    expect([...u8]).toEqual([0x00, 0x80]);
  });
});

describe('applyGains', () => {
  it('maps QEMU volume bytes linearly (vol/255)', () => {
    expect(gainOf(255)).toBe(1);
    expect(gainOf(0)).toBe(0);
    expect(gainOf(51)).toBeCloseTo(0.2);
  });

  it('scales S16LE per channel', () => {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    v.setInt16(0, 10000, true);
    v.setInt16(2, -10000, true);
    v.setInt16(4, -32768, true);
    v.setInt16(6, 32767, true);
    applyGains(captureFormatFor(fmt(16, true)), b, 0, 8, [0.5, 0.25]);
    expect([v.getInt16(0, true), v.getInt16(2, true), v.getInt16(4, true), v.getInt16(6, true)]).toEqual([5000, -2500, -16384, 8192]);
  });

  it('scales unsigned samples around the mid value, so silence stays silence', () => {
    const b = Uint8Array.from([0x80, 0xff, 0x00]);
    applyGains(captureFormatFor(fmt(8, false, 1)), b, 0, 3, [0.5]);
    expect([...b]).toEqual([0x80, 0x80 + 64, 0x80 - 64]);
    const w = new Uint8Array(4);
    const v = new DataView(w.buffer);
    v.setUint16(0, 0x8000, false);
    v.setUint16(2, 0xffff, false);
    applyGains(captureFormatFor(fmt(16, false, 1, { bigEndian: true })), w, 0, 4, [0]);
    expect([v.getUint16(0, false), v.getUint16(2, false)]).toEqual([0x8000, 0x8000]);
  });

  it('scales S8, S32 and F32BE', () => {
    const s8 = Uint8Array.from([100, 256 - 100]);
    applyGains(captureFormatFor(fmt(8, true, 1)), s8, 0, 2, [0.5]);
    expect([...s8]).toEqual([50, 256 - 50]);
    const s32 = new Uint8Array(4);
    new DataView(s32.buffer).setInt32(0, -2147483648, true);
    applyGains(captureFormatFor(fmt(32, true, 1)), s32, 0, 4, [0.5]);
    expect(new DataView(s32.buffer).getInt32(0, true)).toBe(-1073741824);
    const f = new Uint8Array(8);
    const fv = new DataView(f.buffer);
    fv.setFloat32(0, 0.5, false);
    fv.setFloat32(4, -1, false);
    applyGains(captureFormatFor({ ...fmt(32, true), isFloat: true, bigEndian: true }), f, 0, 8, [0.5, 0.25]);
    expect([fv.getFloat32(0, false), fv.getFloat32(4, false)]).toEqual([0.25, -0.25]);
  });
});

describe('gainsOf and applyVolume: the guest volume, for both directions', () => {
  it('takes one byte per channel, repeats the last for channels beyond, and full scale when none', () => {
    expect(gainsOf(Uint8Array.from([255, 51]), 2)).toEqual([1, 0.2]);
    expect(gainsOf(Uint8Array.from([51]), 3)).toEqual([0.2, 0.2, 0.2]);
    expect(gainsOf(new Uint8Array(0), 2)).toEqual([1, 1]);
  });

  it('mute writes the format silence (unsigned mid value), whatever the gains', () => {
    const b = Uint8Array.from([0x00, 0xff, 0x12, 0x34]);
    applyVolume(sampleLayout('U16LE', 1), b, 0, 4, true, [1]);
    expect([...b]).toEqual([0x00, 0x80, 0x00, 0x80]);
  });

  it('unity gains leave the bytes as they are; other gains scale per channel', () => {
    const b = Uint8Array.from([100, 156]);
    applyVolume(sampleLayout('S8', 2), b, 0, 2, false, [1, 1]);
    expect([...b]).toEqual([100, 156]);
    applyVolume(sampleLayout('S8', 2), b, 0, 2, false, [0.5, 1]);
    expect([...b]).toEqual([50, 156]);
  });
});
