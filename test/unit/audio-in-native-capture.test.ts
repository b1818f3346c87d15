// The addon's capture constructors at the edges that need no server: what they reject (code
// EINVAL, never a bare TypeError/RangeError) and the error a missing PipeWire gives. What they
// do on a server is the capture contract (test/contracts/capture.contract.ts).
import { describe, expect, it } from 'vitest';
import { audioBackendFor } from '../../src/audio/backend';
import { native } from '../../src/native';
import type { NativeCaptureOptions } from '../../src/native-api/capture';

const req: NativeCaptureOptions = { format: 'S16LE', rate: 44100, channels: 2, streamName: 'x', props: { 'node.name': 'x' }, latencyFrames: 441, ringFrames: 4410 };
const einval = expect.objectContaining({ code: 'EINVAL' }) as Error;

describe('native capture constructors', () => {
  it('the built addon exports both capture classes', () => {
    expect(typeof native.PwCapture).toBe('function');
    expect(typeof native.PulseCapture).toBe('function');
  });

  it('reject bad options with code EINVAL naming the option, instead of crashing (abuse)', () => {
    const Pw = native.PwCapture!;
    const cb = (): undefined => undefined;
    expect(() => new Pw(undefined as unknown as NativeCaptureOptions, cb)).toThrow(einval);
    expect(() => new Pw(req, undefined as unknown as () => void)).toThrow(einval);
    expect(() => new Pw({ ...req, rate: 'fast' } as unknown as NativeCaptureOptions, cb)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/option rate/) }));
    expect(() => new Pw({ ...req, channels: 0 }, cb)).toThrow(einval);
    expect(() => new Pw({ ...req, rate: 44100.5 }, cb)).toThrow(einval);
    expect(() => new Pw({ ...req, props: { 'node.name': 7 } } as unknown as NativeCaptureOptions, cb)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/props\.node\.name/) }));
    expect(() => new Pw({ ...req, positions: ['FL'] }, cb)).toThrow(einval);
    expect(() => new native.PulseCapture!({ ...req, format: 'U16LE' }, cb)).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/PulseAudio cannot record U16LE/) }));
  });

  it('a PipeWire that is not there: the addon names the socket (EPIPEWIRE); the backend adds what to check', () => {
    const remote = '/nonexistent/qdb/pipewire-0';
    const raw = ((): unknown => {
      try {
        new native.PwCapture!({ ...req, remote }, () => undefined);
      } catch (err) {
        return err;
      }
    })();
    expect((raw as { code?: string }).code).toBe('EPIPEWIRE');
    expect((raw as Error).message).toMatch(/^cannot connect to PipeWire at \/nonexistent\/qdb\/pipewire-0 \(.+\)$/);
    const backend = audioBackendFor('pipewire', { PIPEWIRE_REMOTE: remote });
    expect(() => backend.openCapture(req, () => undefined)).toThrow(
      expect.objectContaining({ name: 'NativeError', code: 'EPIPEWIRE', problem: expect.stringMatching(/^cannot connect to PipeWire at \/nonexistent\/qdb\/pipewire-0 \(.+\)$/), fix: expect.stringMatching(/PIPEWIRE_REMOTE.*--audio pulse/) }),
    );
  });
});
