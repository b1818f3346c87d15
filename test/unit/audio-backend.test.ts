import { describe, expect, it } from 'vitest';
import { AudioBackendError, pipewireSocketPath, pulseSocketPath, selectAudioBackend } from '../../src/audio/backend';
import { FakePlayback } from '../../src/audio/out/fake-playback';
import type { AudioNativeApi } from '../../src/native-api/audio';

const native: AudioNativeApi = { PwPlayback: FakePlayback, PulsePlayback: FakePlayback };

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
