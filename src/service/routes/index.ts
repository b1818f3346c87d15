// Which routes run, from the config. A route that is configured off ("none", no input
// devices) is not created at all, so it never shows in STATUS= or retries.
import type { BridgeConfig } from '../../config/schema';
import type { Logger } from '../../log';
import { CodedError, Route, RouteName, VmLink } from '../route';

/** Placeholder for a route whose implementation has not landed: fails honestly, is retried. */
function notYet(name: RouteName, what: string): Route<VmLink> {
  return {
    name,
    start: () => Promise.reject(new CodedError('ENOTREADY', `${what} is not implemented yet`)),
    stop: () => Promise.resolve(),
    status: () => `${name} not implemented`,
  };
}

export function enabledRoutes(config: BridgeConfig): RouteName[] {
  const out: RouteName[] = [];
  if (config.audio.backend !== 'none') {
    out.push('audio-out');
    if (config.audio.microphone) out.push('audio-in');
  }
  if (config.camera.device !== 'none') out.push('camera');
  if (config.input.devices.length > 0 || config.input.replay !== undefined) out.push('input');
  return out;
}

export function buildRoutes(config: BridgeConfig, _log: Logger): Route<VmLink>[] {
  return enabledRoutes(config).map((name) => {
    switch (name) {
      case 'audio-out':
        return notYet(name, 'the audio output route (src/audio)');
      case 'audio-in':
        return notYet(name, 'the microphone route (src/audio/in)');
      case 'camera':
        return notYet(name, 'the camera route (src/camera)');
      case 'input':
        return notYet(name, 'the input route (src/input)');
    }
  });
}
