import { describe, expect, it } from 'vitest';
import { AudioFormatError, CHANNEL_LAYOUTS, flipSignBits, gainOf, streamFormatFor } from '../../src/audio/format';
import { cameraIdentity, micIdentity, nodeToken, speakerIdentity } from '../../src/stream-identity';
import type { PcmFormat } from '../../src/qemu/handlers';

const f = (o: Partial<PcmFormat>): PcmFormat => {
  const bits = o.bits ?? 16;
  const nchannels = o.nchannels ?? 2;
  return { bits, isSigned: true, isFloat: false, freq: 44100, nchannels, bytesPerFrame: (bits / 8) * nchannels, bytesPerSecond: 0, bigEndian: false, ...o };
};

describe('streamFormatFor', () => {
  it("maps QEMU's default (S16LE 44.1 kHz stereo) straight through", () => {
    const s = streamFormatFor(f({}), 'pipewire');
    expect(s).toMatchObject({ nativeFormat: 'S16LE', rate: 44100, channels: 2, positions: ['FL', 'FR'], bytesPerFrame: 4 });
    expect(s.convert).toBe(false);
  });

  it('keeps big-endian and float formats native on both servers', () => {
    expect(streamFormatFor(f({ bigEndian: true }), 'pulse').nativeFormat).toBe('S16BE');
    expect(streamFormatFor(f({ bits: 32, isFloat: true, bigEndian: true, bytesPerFrame: 8 }), 'pipewire').nativeFormat).toBe('F32BE');
    expect(streamFormatFor(f({ bits: 8, isSigned: false, bytesPerFrame: 2 }), 'pulse').nativeFormat).toBe('U8');
  });

  it('converts U16LE to S16LE by flipping the sign bit of the high byte', () => {
    const s = streamFormatFor(f({ isSigned: false }), 'pipewire');
    expect(s.nativeFormat).toBe('S16LE');
    const b = new Uint8Array([0x00, 0x80, 0xff, 0xff, 0x00, 0x00, 0x34, 0x12]); // 32768, 65535, 0, 0x1234
    flipSignBits(s.layout, b, 0, b.length);
    const v = new DataView(b.buffer);
    expect([v.getInt16(0, true), v.getInt16(2, true), v.getInt16(4, true), v.getInt16(6, true)]).toEqual([0, 32767, -32768, 0x1234 - 32768]);
  });

  it('converts U32BE to S32BE (sign byte first) and S8 to U8 on PulseAudio only', () => {
    const s = streamFormatFor(f({ bits: 32, isSigned: false, bigEndian: true, bytesPerFrame: 8 }), 'pulse');
    expect(s.nativeFormat).toBe('S32BE');
    const b = new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 0]);
    flipSignBits(s.layout, b, 0, b.length);
    expect(new DataView(b.buffer).getInt32(0, false)).toBe(0);
    expect(new DataView(b.buffer).getInt32(4, false)).toBe(-2147483648);
    const s8 = streamFormatFor(f({ bits: 8, bytesPerFrame: 2 }), 'pulse');
    expect(s8.nativeFormat).toBe('U8');
    const c = new Uint8Array([0x00, 0x7f]);
    flipSignBits(s8.layout, c, 0, c.length);
    expect([...c]).toEqual([0x80, 0xff]);
    expect(streamFormatFor(f({ bits: 8, bytesPerFrame: 2 }), 'pipewire').convert).toBe(false);
  });

  it('gives every channel count 1..8 a layout with distinct positions (5.1 = FL FR FC LFE RL RR)', () => {
    for (let n = 1; n <= 8; n++) {
      const s = streamFormatFor(f({ nchannels: n, bytesPerFrame: 2 * n }), 'pipewire');
      expect(s.positions).toHaveLength(n);
      expect(new Set(s.positions).size).toBe(n);
    }
    expect(CHANNEL_LAYOUTS[6]).toEqual(['FL', 'FR', 'FC', 'LFE', 'RL', 'RR']);
  });

  it('rejects what no server can play, with a code and a fix', () => {
    const bad: Array<Partial<PcmFormat>> = [
      { bits: 24 as 16 },
      { nchannels: 9, bytesPerFrame: 18 },
      { freq: 10 },
      { bits: 16, isFloat: true },
      { bytesPerFrame: 3 },
    ];
    for (const b of bad) {
      try {
        streamFormatFor(f(b), 'pipewire');
        expect.unreachable(`accepted ${JSON.stringify(b)}`);
      } catch (e) {
        expect(e).toBeInstanceOf(AudioFormatError);
        expect((e as AudioFormatError).code).toBe('EAUDIOFORMAT');
        expect((e as Error).message).toMatch(/audiodev/);
      }
    }
  });

  it('maps QEMU volume bytes linearly', () => {
    expect(gainOf(255)).toBe(1);
    expect(gainOf(0)).toBe(0);
    expect(gainOf(128)).toBeCloseTo(0.502, 3);
  });
});

describe('speakerIdentity', () => {
  it('names the stream after the VM on PipeWire, with role, icon and target', () => {
    const id = speakerIdentity('win 11', 'pipewire', 'hdmi-sink');
    expect(id.props).toMatchObject({
      'application.name': 'QEMU win 11',
      'node.name': 'qemu-win-11-speaker',
      'node.description': 'win 11 speaker',
      'media.role': 'Game',
      'application.icon-name': 'qemu',
      'target.object': 'hdmi-sink',
      'media.class': 'Stream/Output/Audio',
    });
  });

  it('uses PulseAudio proplist spellings and follows the default sink when none is given', () => {
    const id = speakerIdentity('vm', 'pulse');
    expect(id.props).toMatchObject({ 'media.role': 'game', 'application.icon_name': 'qemu' });
    expect(id.props['target.object']).toBeUndefined();
  });

  it('makes node names plain tokens', () => {
    expect(nodeToken('a/b c..d')).toBe('a-b-c..d');
    expect(nodeToken('///')).toBe('vm');
  });
});

describe('micIdentity and cameraIdentity', () => {
  it('microphone on PipeWire: Communication role, capture category, a named source that is never replaced by another', () => {
    const id = micIdentity('win 11', 'pipewire', 'usb-mic');
    expect(id.streamName).toBe('qemu-win-11-mic');
    expect(id.props).toEqual({
      'media.class': 'Stream/Input/Audio',
      'media.type': 'Audio',
      'media.category': 'Capture',
      'application.name': 'qemu-dbus-bridge',
      'media.name': 'win 11 microphone',
      'media.role': 'Communication',
      'node.name': 'qemu-win-11-mic',
      'node.description': 'win 11 microphone',
      'target.object': 'usb-mic',
      'node.dont-reconnect': 'true',
    });
    expect(micIdentity('vm', 'pipewire').props['target.object']).toBeUndefined();
  });

  it('microphone on PulseAudio: role "phone", the source goes to the stream device instead of a property', () => {
    const id = micIdentity('vm', 'pulse', 'usb-mic');
    expect(id.streamName).toBe('vm microphone');
    expect(id.props).toMatchObject({ 'media.role': 'phone', 'node.name': 'qemu-vm-mic' });
    expect(id.props['target.object']).toBeUndefined();
  });

  it('camera: a Video/Source with role Camera, named as given', () => {
    const id = cameraIdentity('qemu-vm-camera', 'vm screen');
    expect(id.streamName).toBe('qemu-vm-camera');
    expect(id.props).toMatchObject({ 'media.class': 'Video/Source', 'media.role': 'Camera', 'node.name': 'qemu-vm-camera', 'node.description': 'vm screen' });
  });
});
