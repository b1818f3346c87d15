// Which routes run, from the config. A route that is configured off ("none", no input
// devices or replay) is not created at all, so it never shows in STATUS= or retries.
import type { BridgeConfig } from '../../config/schema';
import type { RouteName } from '../route';
import { AudioInRoute } from './audio-in';
import { AudioOutRoute, soundServerFor } from './audio-out';
import { CameraRoute } from './camera';
import { InputRoute } from './input';

export function enabledRoutes(config: BridgeConfig): RouteName[] {
  const out: RouteName[] = [];
  if (config.audio.backend !== 'none') {
    out.push('audio-out');
    if (config.audio.microphone) out.push('audio-in');
  }
  if (config.camera.device !== 'none') out.push('camera');
  if (config.input.devices.length > 0 || config.input.replay.length > 0) out.push('input');
  return out;
}

export type AnyRoute = AudioOutRoute | AudioInRoute | CameraRoute | InputRoute;

export function buildRoutes(config: BridgeConfig, opts: { audioMeter?: boolean } = {}): AnyRoute[] {
  // One sound-server selection for both audio routes: the microphone uses the speaker's server.
  const sound = soundServerFor(config);
  return enabledRoutes(config).map((name): AnyRoute => {
    switch (name) {
      case 'audio-out':
        return new AudioOutRoute(config, { meter: opts.audioMeter, sound });
      case 'audio-in':
        return new AudioInRoute(config, sound);
      case 'camera':
        return new CameraRoute(config);
      case 'input':
        return new InputRoute(config);
    }
  });
}

export { AudioInRoute, AudioOutRoute, CameraRoute, InputRoute };
