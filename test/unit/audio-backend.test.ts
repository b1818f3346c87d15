import { describe, expect, it } from 'vitest';
import { AudioBackendError, SoundServerChoice, audioBackendFor, pipewireSocketPath, pulseSocketPath, selectAudioBackend } from '../../src/audio/backend';
import type { AudioNativeApi } from '../../src/native-api/audio';
import type { CaptureNativeApi, CaptureStateListener, NativeCapture, NativeCaptureOptions } from '../../src/native-api/capture';
import { FakePlayback } from '../fakes/playback';

const native: AudioNativeApi = { PwPlayback: FakePlayback, PulsePlayback: FakePlayback };

/** Addon capture constructors that record what they were given. */
function recordingCapture(seen: { o: NativeCaptureOptions; cb: CaptureStateListener }[]): CaptureNativeApi {
  const Ctor = class {
    constructor(o: NativeCaptureOptions, cb: CaptureStateListener) {
      seen.push({ o, cb });
    }
  } as unknown as new (o: NativeCaptureOptions, cb: CaptureStateListener) => NativeCapture;
  return { PwCapture: Ctor, PulseCapture: Ctor };
}

const captureReq: NativeCaptureOptions = { format: 'S16LE', rate: 44100, channels: 2, streamName: 'mic', props: {}, latencyFrames: 441, ringFrames: 4410 };

describe('socket paths', () => {
  it('PipeWire: PIPEWIRE_REMOTE absolute, or a name in PIPEWIRE_RUNTIME_DIR / XDG_RUNTIME_DIR', () => {
    expect(pipewireSocketPath({ PIPEWIRE_REMOTE: '/a/b/pw' })).toBe('/a/b/pw');
    expect(pipewireSocketPath({ XDG_RUNTIME_DIR: '/run/user/7' })).toBe('/run/user/7/pipewire-0');
    expect(pipewireSocketPath({ XDG_RUNTIME_DIR: '/x', PIPEWIRE_RUNTIME_DIR: '/y', PIPEWIRE_REMOTE: 'pw-1' })).toBe('/y/pw-1');
  });
  it('PulseAudio: PULSE_SERVER unix: entry, else PULSE_RUNTIME_PATH, else XDG_RUNTIME_DIR/pulse/native', () => {
    expect(pulseSocketPath({ PULSE_SERVER: 'tcp:host unix:/s/native' })).toBe('/s/native');
    expect(pulseSocketPath({ PULSE_RUNTIME_PATH: '/p' })).toBe('/p/native');
    expect(pulseSocketPath({ XDG_RUNTIME_DIR: '/r' })).toBe('/r/pulse/native');
  });
});

describe('selectAudioBackend', () => {
  const env = { XDG_RUNTIME_DIR: '/r' };
  it('auto prefers PipeWire when its socket answers', async () => {
    const b = await selectAudioBackend('auto', { env, native, probe: async () => null });
    expect(b?.kind).toBe('pipewire');
    expect(b?.where).toBe('/r/pipewire-0');
  });
  it('auto falls back to PulseAudio', async () => {
    const b = await selectAudioBackend('auto', { env, native, probe: async (p) => (p.endsWith('pipewire-0') ? 'ECONNREFUSED' : null) });
    expect(b?.kind).toBe('pulse');
    expect(b?.where).toBe('unix:/r/pulse/native');
  });
  it('auto with neither answering names both sockets and the way out', async () => {
    const err = await selectAudioBackend('auto', { env, native, probe: async () => 'ENOENT' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AudioBackendError);
    expect((err as AudioBackendError).code).toBe('ENOAUDIOSERVER');
    expect((err as Error).message).toContain('/r/pipewire-0');
    expect((err as Error).message).toContain('/r/pulse/native');
    expect((err as Error).message).toContain('--audio none');
  });
  it('explicit choices are not probed (the server may come up later); none gives null', async () => {
    const probe = async (): Promise<string> => {
      throw new Error('must not probe');
    };
    expect((await selectAudioBackend('pulse', { env, native, probe }))?.kind).toBe('pulse');
    expect((await selectAudioBackend('pipewire', { env, native, probe }))?.kind).toBe('pipewire');
    expect(await selectAudioBackend('none', { env, native, probe })).toBeNull();
  });
  it('says how to fix an addon without playback, and rejects unknown names', async () => {
    await expect(selectAudioBackend('pipewire', { env, native: {} })).rejects.toMatchObject({ code: 'ENATIVE' });
    await expect(selectAudioBackend('alsa' as 'none', { env, native })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

describe('audioBackendFor: one server, both directions', () => {
  it('opens capture streams on the server it was chosen for, unless the caller names one', () => {
    const seen: { o: NativeCaptureOptions; cb: CaptureStateListener }[] = [];
    const b = audioBackendFor('pulse', { XDG_RUNTIME_DIR: '/r' }, { ...native, ...recordingCapture(seen) });
    b.openCapture(captureReq, () => undefined);
    b.openCapture({ ...captureReq, remote: 'unix:/elsewhere' }, () => undefined);
    expect(seen.map((x) => x.o.remote)).toEqual(['unix:/r/pulse/native', 'unix:/elsewhere']);
    expect(b.openPlayback({ format: 'S16LE', rate: 48000, channels: 1, positions: ['MONO'], ringFrames: 4800, startFrames: 0, latencyFrames: 480, streamName: 's', props: {} })).toBeInstanceOf(FakePlayback);
  });

  it('an addon without capture: ENATIVE with the rebuild command, at open (the speaker still plays)', () => {
    const b = audioBackendFor('pipewire', { XDG_RUNTIME_DIR: '/r' }, native);
    expect(() => b.openCapture(captureReq, () => undefined)).toThrow(expect.objectContaining({ code: 'ENATIVE', fix: expect.stringMatching(/npm run setup/) }));
  });

  it('a state listener that throws does not vanish inside the addon callback: it surfaces on the next tick', async () => {
    const seen: { o: NativeCaptureOptions; cb: CaptureStateListener }[] = [];
    const b = audioBackendFor('pipewire', {}, { ...native, ...recordingCapture(seen) });
    b.openCapture(captureReq, () => {
      throw new Error('listener bug');
    });
    const surfaced = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    expect(() => seen[0].cb('error', 'x')).not.toThrow();
    expect(await surfaced).toMatchObject({ message: 'listener bug' });
  });
});

describe('SoundServerChoice: one selection for both audio routes', () => {
  it('a route starting while another holds the server gets the same one without a new probe', async () => {
    let probes = 0;
    const choice = new SoundServerChoice('auto', { env: { XDG_RUNTIME_DIR: '/r' }, native, probe: async () => (probes++, null) });
    const [a, b] = await Promise.all([choice.acquire(), choice.acquire()]);
    expect(a).toBe(b);
    expect(probes).toBe(1);
    expect(await choice.acquire()).toBe(a);
    expect(probes).toBe(1);
  });

  it('probes again once every route released it (the user may have switched servers)', async () => {
    let answer: string | null = null;
    const choice = new SoundServerChoice('auto', { env: { XDG_RUNTIME_DIR: '/r' }, native, probe: async (p) => (p.endsWith('pipewire-0') ? answer : null) });
    expect((await choice.acquire())?.kind).toBe('pipewire');
    choice.release();
    answer = 'ECONNREFUSED';
    expect((await choice.acquire())?.kind).toBe('pulse');
  });

  it('a failed selection is not kept: the next start probes again', async () => {
    let up = false;
    const choice = new SoundServerChoice('auto', { env: { XDG_RUNTIME_DIR: '/r' }, native, probe: async () => (up ? null : 'ENOENT') });
    await expect(choice.acquire()).rejects.toMatchObject({ code: 'ENOAUDIOSERVER' });
    up = true;
    expect((await choice.acquire())?.kind).toBe('pipewire');
  });
});
