// The real capture streams: the addon's PwCapture / PulseCapture behind OpenCapture.
// Kept apart from capture-source.ts so that code using only the types and the fake never
// loads the addon.
import { native } from '../../native';
import type { NativeCaptureCtor } from '../../native-api/capture';
import { CHANNEL_LAYOUTS } from '../format';
import { APP_NAME, CaptureBackend, OpenCapture, micDescription, micNodeName } from './capture-source';

/** The media role meaning "voice communication" in each server's vocabulary. */
const COMMUNICATION_ROLE: Record<CaptureBackend, string> = { pipewire: 'Communication', pulse: 'phone' };

/**
 * The real opener for a backend, over the addon. `addon` is injectable so that tests can check
 * the options passed without a server.
 */
export function nativeCaptureOpener(backend: CaptureBackend, addon?: { PwCapture?: NativeCaptureCtor; PulseCapture?: NativeCaptureCtor }): OpenCapture {
  return (req) => {
    const api = addon ?? native;
    const Ctor = backend === 'pipewire' ? api.PwCapture : api.PulseCapture;
    if (!Ctor) {
      throw Object.assign(new Error(`the native addon has no ${backend} capture (built before it existed): rebuild it with npm run setup`), {
        code: 'ENATIVE',
      });
    }
    return new Ctor(
      {
        format: req.format,
        rate: req.rate,
        channels: req.channels,
        ...(req.source !== undefined ? { target: req.source } : {}),
        ...(req.remote !== undefined ? { remote: req.remote } : {}),
        nodeName: micNodeName(req.vmName),
        nodeDescription: micDescription(req.vmName),
        mediaRole: COMMUNICATION_ROLE[backend],
        appName: APP_NAME,
        latencyFrames: req.latencyFrames,
        ringFrames: req.ringFrames,
        // The same channel order as playback: one layout table, in TypeScript.
        ...(CHANNEL_LAYOUTS[req.channels] ? { positions: CHANNEL_LAYOUTS[req.channels] } : {}),
      },
      (state, message) => {
        // Called from the addon's ThreadSafeFunction, which cannot propagate a JS exception:
        // rethrow outside it so a bug shows up as an uncaught exception instead of vanishing.
        try {
          req.onState(state, message);
        } catch (err) {
          process.nextTick(() => {
            throw err;
          });
        }
      },
    );
  };
}

/**
 * The opener on the sound server that backend selection chose (src/audio/backend.ts
 * selectAudioBackend: `kind` + `where`, the PipeWire socket or PulseAudio server string), so the
 * microphone and the speaker always use the same server.
 */
export function captureOpenerFor(backend: { kind: CaptureBackend; where: string }, addon?: { PwCapture?: NativeCaptureCtor; PulseCapture?: NativeCaptureCtor }): OpenCapture {
  const open = nativeCaptureOpener(backend.kind, addon);
  return (req) => open({ ...req, remote: req.remote ?? backend.where });
}
