// nativeCaptureOpener / captureOpenerFor: what the addon constructors receive (no server needed:
// the constructors are injected). The real constructors are exercised by the capture contract.
import { describe, expect, it } from 'vitest';
import type { CaptureStateListener, NativeCapture, NativeCaptureOptions } from '../../src/native-api/capture';
import { captureOpenerFor, nativeCaptureOpener } from '../../src/audio/in/native-capture';
import { native } from '../../src/native';

function recordingCtor(seen: NativeCaptureOptions[]) {
  return class {
    constructor(o: NativeCaptureOptions, _cb: CaptureStateListener) {
      seen.push(o);
    }
  } as unknown as new (o: NativeCaptureOptions, cb: CaptureStateListener) => NativeCapture;
}

const req = { format: 'S16LE' as const, rate: 44100, channels: 2, vmName: 'win11', latencyFrames: 441, ringFrames: 22050, onState: () => undefined };

describe('native capture opener', () => {
  it('PipeWire: node qemu-<vm>-mic, "<vm> microphone", role Communication, target only when a source is named', () => {
    const seen: NativeCaptureOptions[] = [];
    const Ctor = recordingCtor(seen);
    nativeCaptureOpener('pipewire', { PwCapture: Ctor })(req);
    nativeCaptureOpener('pipewire', { PwCapture: Ctor })({ ...req, source: 'usb-mic' });
    expect(seen[0]).toEqual({
      format: 'S16LE',
      rate: 44100,
      channels: 2,
      nodeName: 'qemu-win11-mic',
      nodeDescription: 'win11 microphone',
      mediaRole: 'Communication',
      appName: 'qemu-dbus-bridge',
      latencyFrames: 441,
      ringFrames: 22050,
      positions: ['FL', 'FR'],
    });
    expect(seen[1].target).toBe('usb-mic');
  });

  it('PulseAudio: the communication role is "phone"; captureOpenerFor uses the selected server', () => {
    const seen: NativeCaptureOptions[] = [];
    captureOpenerFor({ kind: 'pulse', where: 'unix:/run/user/1000/pulse/native' }, { PulseCapture: recordingCtor(seen) })(req);
    expect(seen[0]).toMatchObject({ mediaRole: 'phone', remote: 'unix:/run/user/1000/pulse/native', nodeName: 'qemu-win11-mic' });
  });

  it('an addon without capture gives one clear ENATIVE error', () => {
    expect(() => nativeCaptureOpener('pulse', {})(req)).toThrow(expect.objectContaining({ code: 'ENATIVE', message: expect.stringMatching(/npm run setup/) }));
  });

  it('the built addon exports both capture classes', () => {
    expect(typeof native.PwCapture).toBe('function');
    expect(typeof native.PulseCapture).toBe('function');
  });

  it('the addon rejects bad options with TypeError/RangeError instead of crashing (abuse)', () => {
    const Pw = native.PwCapture!;
    const cb = () => undefined;
    expect(() => new Pw(undefined as unknown as NativeCaptureOptions, cb)).toThrow(TypeError);
    expect(() => new Pw({ ...req, nodeName: 'x', nodeDescription: 'x', mediaRole: 'x', appName: 'x', rate: 'fast' } as unknown as NativeCaptureOptions, cb)).toThrow(TypeError);
    expect(() => new Pw({ format: 'S16LE', rate: 44100, channels: 0, nodeName: 'x', nodeDescription: 'x', mediaRole: 'x', appName: 'x', latencyFrames: 441, ringFrames: 4410 }, cb)).toThrow(RangeError);
    expect(() => new native.PulseCapture!({ format: 'U16LE', rate: 44100, channels: 2, nodeName: 'x', nodeDescription: 'x', mediaRole: 'x', appName: 'x', latencyFrames: 441, ringFrames: 4410 }, cb)).toThrow(
      /PulseAudio cannot record U16LE/,
    );
  });

  it('a PipeWire that is not there: EPIPEWIRE with what to check', () => {
    const Pw = native.PwCapture!;
    const o: NativeCaptureOptions = { format: 'S16LE', rate: 44100, channels: 2, nodeName: 'x', nodeDescription: 'x', mediaRole: 'x', appName: 'x', latencyFrames: 441, ringFrames: 4410, remote: '/nonexistent/qdb/pipewire-0' };
    expect(() => new Pw(o, () => undefined)).toThrow(expect.objectContaining({ code: 'EPIPEWIRE', message: expect.stringMatching(/PIPEWIRE_REMOTE/) }));
  });
});
