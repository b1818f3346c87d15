// The audio routes as buildRoutes makes them: the speaker and the microphone share ONE
// sound-server selection (src/audio/backend.ts SoundServerChoice), so they cannot end up on
// different servers when both PipeWire and PulseAudio answer, or when one comes up between the
// two routes' starts.
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/load';
import { AudioInRoute, AudioOutRoute, buildRoutes } from '../../src/service/routes';

describe('audio routes', () => {
  it('buildRoutes gives the speaker and the microphone route the same selection, made from --audio', () => {
    const { config } = resolveConfig({ vm: 'routes-test', audio: 'pulse' }, { XDG_CONFIG_HOME: '/nonexistent/qdb-config' });
    const routes = buildRoutes(config);
    const out = routes.find((r): r is AudioOutRoute => r instanceof AudioOutRoute);
    const mic = routes.find((r): r is AudioInRoute => r instanceof AudioInRoute);
    expect(out?.sound).toBeDefined();
    expect(mic?.sound).toBe(out?.sound);
    expect(out?.sound.choice).toBe('pulse');
  });
});
