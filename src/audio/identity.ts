// How the VM's streams present themselves in pavucontrol / Helvum / wpctl.
import type { AudioBackendKind } from './format';

/**
 * media.role: "Game". A VM's speaker carries a whole OS's mix (often games, calls, video) and
 * must stay low-latency and must not be ducked or corked: PulseAudio's module-role-cork pauses
 * "music"/"video" streams while a "phone" stream plays (the guest may itself be in that call),
 * and module-intended-roles would steer "phone" to a headset. "Game" has no such policy
 * attached and tells session managers it is interactive audio.
 */
export const SPEAKER_MEDIA_ROLE = 'Game';

/** freedesktop icon name; Debian's qemu-system-gui installs hicolor apps/qemu.svg. */
export const APP_ICON_NAME = 'qemu';

/** node.name-safe form of a VM name: qemu-<vm>-speaker must be a plain token. */
export function nodeToken(vmName: string): string {
  const t = vmName.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
  return t || 'vm';
}

export interface SpeakerIdentity {
  streamName: string;
  props: Record<string, string>;
}

/** Properties for the speaker stream of `vmName` on `backend`, targeting `sink` (or the default). */
export function speakerIdentity(vmName: string, backend: AudioBackendKind, sink?: string): SpeakerIdentity {
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
        ...common,
        'media.role': SPEAKER_MEDIA_ROLE,
        'application.icon-name': APP_ICON_NAME,
        ...(sink ? { 'target.object': sink } : {}),
      },
    };
  }
  // PulseAudio spells its proplist keys with underscores and roles in lower case.
  return {
    streamName: description,
    props: { ...common, 'media.role': SPEAKER_MEDIA_ROLE.toLowerCase(), 'application.icon_name': APP_ICON_NAME },
  };
}
