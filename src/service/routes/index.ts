// Which routes run, from the config. A route that is configured off ("none", no input
// devices or replay) is not created at all, so it never shows in STATUS= or retries.
import { cameraEntries, type BridgeConfig, type CameraEntry } from '../../config/schema';
import { routeIdOf, type RouteId } from '../route';
import { AudioInRoute } from './audio-in';
import { AudioOutRoute, soundServerFor } from './audio-out';
import { CameraRoute } from './camera';
import { InputRoute } from './input';

/** The routes the config turns on, by id (a camera per `[[camera]]` entry: camera-N, N its position). */
export function enabledRoutes(config: BridgeConfig): RouteId[] {
  return enabled(config).map((r) => r.id);
}

type Enabled = { id: RouteId; kind: 'audio-out' | 'audio-in' | 'input' } | { id: RouteId; kind: 'camera'; camera: CameraEntry };

function enabled(config: BridgeConfig): Enabled[] {
  const out: Enabled[] = [];
  if (config.audio.backend !== 'none') {
    out.push({ id: 'audio-out', kind: 'audio-out' });
    if (config.audio.microphone) out.push({ id: 'audio-in', kind: 'audio-in' });
  }
  for (const camera of cameraEntries(config)) {
    if (camera.settings.device === 'none') continue;
    out.push({ id: camera.index === undefined ? 'camera' : routeIdOf('camera', camera.index), kind: 'camera', camera });
  }
  if (config.input.devices.length > 0 || config.input.replay.length > 0) out.push({ id: 'input', kind: 'input' });
  return out;
}

export type AnyRoute = AudioOutRoute | AudioInRoute | CameraRoute | InputRoute;

export function buildRoutes(config: BridgeConfig, opts: { audioMeter?: boolean } = {}): AnyRoute[] {
  // One sound-server selection for both audio routes: the microphone uses the speaker's server.
  const sound = soundServerFor(config);
  return enabled(config).map((r): AnyRoute => {
    switch (r.kind) {
      case 'audio-out':
        return new AudioOutRoute(config, { meter: opts.audioMeter, sound });
      case 'audio-in':
        return new AudioInRoute(config, sound);
      case 'camera':
        return new CameraRoute(r.camera);
      case 'input':
        return new InputRoute(config);
    }
  });
}

export { AudioInRoute, AudioOutRoute, CameraRoute, InputRoute };
