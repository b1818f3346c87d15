// How the VM's native streams present themselves in pavucontrol / Helvum / wpctl / the camera
// portal: the ONE place that names them. The addon (native/pw_audio.cc, pulse_audio.cc,
// pw_capture.cc, pulse_capture.cc, pw_video.cc) takes `streamName` + `props` as given and adds
// nothing but the period it was asked for (node.latency). Shared by src/audio and src/camera, so
// it lives at the top of src/ like log.ts.

/** The server a stream goes to: PulseAudio spells keys with underscores and roles in lower case. */
export type SoundServerKind = 'pipewire' | 'pulse';

export interface StreamIdentity {
  /** pw_stream / pa_stream name. */
  streamName: string;
  /** PipeWire properties or PulseAudio proplist entries. */
  props: Record<string, string>;
}

/**
 * media.role: "Game". A VM's speaker carries a whole OS's mix (often games, calls, video) and
 * must stay low-latency and must not be ducked or corked: PulseAudio's module-role-cork pauses
 * "music"/"video" streams while a "phone" stream plays (the guest may itself be in that call),
 * and module-intended-roles would steer "phone" to a headset. "Game" has no such policy
 * attached and tells session managers it is interactive audio.
 */
export const SPEAKER_MEDIA_ROLE = 'Game';

/**
 * media.role of the microphone: voice communication ("Communication" in PipeWire, "phone" in
 * PulseAudio), so echo cancellation and headset routing treat it as a call's input.
 */
const MIC_MEDIA_ROLE: Record<SoundServerKind, string> = { pipewire: 'Communication', pulse: 'phone' };

/** freedesktop icon name; Debian's qemu-system-gui installs hicolor apps/qemu.svg. */
export const APP_ICON_NAME = 'qemu';

/** application.name of the microphone stream (what `pactl list source-outputs` shows). */
export const APP_NAME = 'qemu-dbus-bridge';

/** node.name-safe form of a VM name: qemu-<vm>-speaker must be a plain token. */
export function nodeToken(vmName: string): string {
  const t = vmName.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
  return t || 'vm';
}

/** Properties for the speaker stream of `vmName` on `backend`, targeting `sink` (or the default). */
export function speakerIdentity(vmName: string, backend: SoundServerKind, sink?: string): StreamIdentity {
  const description = `${vmName} speaker`;
  const common: Record<string, string> = {
    'application.name': `QEMU ${vmName}`,
    'application.id': 'org.qemu.dbus-bridge',
    'media.name': description,
    'node.name': `qemu-${nodeToken(vmName)}-speaker`,
    'node.description': description,
  };
  if (backend === 'pipewire') {
    return {
      streamName: description,
      props: {
        // What pw_stream would derive from the direction anyway, stated once here.
        'media.class': 'Stream/Output/Audio',
        'media.type': 'Audio',
        'media.category': 'Playback',
        ...common,
        'media.role': SPEAKER_MEDIA_ROLE,
        'application.icon-name': APP_ICON_NAME,
        ...(sink ? { 'target.object': sink } : {}),
      },
    };
  }
  return {
    streamName: description,
    props: { ...common, 'media.role': SPEAKER_MEDIA_ROLE.toLowerCase(), 'application.icon_name': APP_ICON_NAME },
  };
}

/** node.name of the microphone stream for a VM (what pw-dump / pactl show). */
export function micNodeName(vmName: string): string {
  return `qemu-${nodeToken(vmName)}-mic`;
}

export function micDescription(vmName: string): string {
  return `${vmName} microphone`;
}

/**
 * Properties for the microphone stream of `vmName`, recording from `source` (or the default).
 * On PipeWire a named source that goes away must not silently turn into another microphone
 * (node.dont-reconnect); PulseAudio gets the source as the stream's device instead.
 */
export function micIdentity(vmName: string, backend: SoundServerKind, source?: string): StreamIdentity {
  const description = micDescription(vmName);
  const common: Record<string, string> = {
    'application.name': APP_NAME,
    'media.name': description,
    'media.role': MIC_MEDIA_ROLE[backend],
    // pipewire-pulse turns these into the node's name/description; PulseAudio just keeps them.
    'node.name': micNodeName(vmName),
    'node.description': description,
  };
  if (backend === 'pipewire') {
    return {
      streamName: micNodeName(vmName),
      props: {
        'media.class': 'Stream/Input/Audio',
        'media.type': 'Audio',
        'media.category': 'Capture',
        ...common,
        ...(source ? { 'target.object': source, 'node.dont-reconnect': 'true' } : {}),
      },
    };
  }
  return { streamName: description, props: common };
}

/**
 * node.name of the camera node for a VM: qemu-<vm>-camera, or qemu-<vm>-console<N>-camera for one
 * of several cameras (`[[camera]]` entries), which says the console it shows.
 */
export function cameraNodeName(vmName: string, console?: number): string {
  return `qemu-${vmName.replace(/[^A-Za-z0-9_.-]/g, '_')}${console === undefined ? '' : `-console${console}`}-camera`;
}

/** node.description of the camera node: "<vm> screen", or "<vm> screen (console N)" (see cameraNodeName). */
export function cameraDescription(vmName: string, console?: number): string {
  return `${vmName} screen${console === undefined ? '' : ` (console ${console})`}`;
}

/**
 * The camera node: a Video/Source with media.role Camera (what the camera portal and
 * WirePlumber's access-portal filter on), described as "<vm> screen".
 */
export function cameraIdentity(nodeName: string, description: string): StreamIdentity {
  return {
    streamName: nodeName,
    props: {
      'media.class': 'Video/Source',
      'media.role': 'Camera',
      'media.type': 'Video',
      'media.category': 'Capture',
      'node.name': nodeName,
      'node.description': description,
      'node.nick': description,
    },
  };
}
