// Sound-server choice for the audio routes: --audio pipewire|pulse|none|auto.
// auto = PipeWire if its socket answers, else PulseAudio (which is also what pipewire-pulse
// serves), else one error naming both sockets tried. An explicit choice is not probed: the
// service may start before the user's sound server, and the voices retry with backoff.
import * as net from 'net';
import * as path from 'path';
import { CodedError } from '../errors';
import { native as addon } from '../native';
import type { AudioNativeApi, NativePlayback, NativePlaybackOptions } from '../native-api/audio';
import type { AudioBackendKind } from './format';

export type AudioChoice = AudioBackendKind | 'none' | 'auto';
export const AUDIO_CHOICES: readonly AudioChoice[] = ['auto', 'pipewire', 'pulse', 'none'];

export class AudioBackendError extends CodedError {
  constructor(code: string, problem: string, fix = '') {
    super(code, problem, fix);
    this.name = 'AudioBackendError';
  }
}

/** Opens native playback streams on one sound server. */
export interface PlaybackBackend {
  readonly kind: AudioBackendKind;
  /** Socket (PipeWire) or server string (PulseAudio) used, for logs and errors. */
  readonly where: string;
  openPlayback(opts: NativePlaybackOptions): NativePlayback;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Where a PipeWire client connects: PIPEWIRE_REMOTE (absolute, or a name in the runtime dir). */
export function pipewireSocketPath(env: Env): string {
  const remote = env.PIPEWIRE_REMOTE || 'pipewire-0';
  if (path.isAbsolute(remote)) return remote;
  const dir = env.PIPEWIRE_RUNTIME_DIR || env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`;
  return path.join(dir, remote);
}

/** Where a PulseAudio client connects: PULSE_SERVER (first unix: entry), else <runtime>/pulse/native. */
export function pulseSocketPath(env: Env): string {
  const server = env.PULSE_SERVER;
  if (server) {
    for (const part of server.split(/\s+/)) {
      const p = part.startsWith('unix:') ? part.slice(5) : part;
      if (path.isAbsolute(p)) return p;
    }
  }
  if (env.PULSE_RUNTIME_PATH) return path.join(env.PULSE_RUNTIME_PATH, 'native');
  const dir = env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`;
  return path.join(dir, 'pulse', 'native');
}

/** Resolves with null when something accepts a connection on the unix socket, else the errno code. */
export function probeUnixSocket(socketPath: string, timeoutMs = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socketPath });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('ETIMEDOUT');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(null);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? 'EIO');
    });
  });
}

export interface SelectOptions {
  env?: Env;
  native?: AudioNativeApi;
  probe?: (socketPath: string) => Promise<string | null>;
}

function backendFor(kind: AudioBackendKind, env: Env, native: AudioNativeApi): PlaybackBackend {
  if (kind === 'pipewire') {
    const Ctor = native.PwPlayback;
    if (!Ctor) throw new AudioBackendError('ENATIVE', 'the native addon has no PipeWire playback (PwPlayback); rebuild it with: npm run setup');
    const where = pipewireSocketPath(env);
    // Absolute path: works even when the service's XDG_RUNTIME_DIR differs from the daemon's.
    return { kind, where, openPlayback: (o) => new Ctor({ ...o, remote: o.remote ?? where }) };
  }
  const Ctor = native.PulsePlayback;
  if (!Ctor) throw new AudioBackendError('ENATIVE', 'the native addon has no PulseAudio playback (PulsePlayback); rebuild it with: npm run setup');
  const where = `unix:${pulseSocketPath(env)}`;
  return { kind, where, openPlayback: (o) => new Ctor({ ...o, remote: o.remote ?? where }) };
}

/**
 * Returns the backend for `choice`, or null for 'none'. 'auto' probes the PipeWire socket,
 * then the PulseAudio one; when neither answers it throws AudioBackendError ENOAUDIOSERVER.
 */
export async function selectAudioBackend(choice: AudioChoice, opts: SelectOptions = {}): Promise<PlaybackBackend | null> {
  const env = opts.env ?? process.env;
  const native = opts.native ?? addon;
  const probe = opts.probe ?? probeUnixSocket;
  if (choice === 'none') return null;
  if (choice === 'pipewire' || choice === 'pulse') return backendFor(choice, env, native);
  if (choice !== 'auto') throw new AudioBackendError('EINVAL', `unknown audio backend '${String(choice)}': use one of ${AUDIO_CHOICES.join(', ')}`);
  const pwPath = pipewireSocketPath(env);
  const pwErr = await probe(pwPath);
  if (pwErr === null) return backendFor('pipewire', env, native);
  const paPath = pulseSocketPath(env);
  const paErr = await probe(paPath);
  if (paErr === null) return backendFor('pulse', env, native);
  throw new AudioBackendError(
    'ENOAUDIOSERVER',
    `no sound server answers: tried PipeWire at ${pwPath} (${pwErr}) and PulseAudio at ${paPath} (${paErr}). ` +
      `Start PipeWire or PulseAudio for this user (check XDG_RUNTIME_DIR), or run with --audio none.`,
  );
}
