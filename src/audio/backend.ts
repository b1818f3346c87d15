// Sound-server choice for the audio routes: --audio pipewire|pulse|none|auto.
// auto = PipeWire if its socket answers, else PulseAudio (which is also what pipewire-pulse
// serves), else one error naming both sockets tried. An explicit choice is not probed: the
// service may start before the user's sound server, and the voices retry with backoff.
//
// The chosen server is ONE AudioBackend that opens both directions' streams (PlaybackBackend for
// the speaker, CaptureBackend for the microphone), and SoundServerChoice shares one selection
// between the two audio routes, so the microphone and the speaker always use the same server.
import * as net from 'net';
import * as path from 'path';
import { CodedError } from '../errors';
import { callNative, native as addon } from '../native';
import type { AudioNativeApi, NativePlayback, NativePlaybackOptions, NativeSpeakerCore, NativeSpeakerIntake, SpeakerCoreOptions } from '../native-api/audio';
import type { CaptureNativeApi, CaptureStateListener, NativeCapture, NativeCaptureOptions } from '../native-api/capture';
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
  /** Throws (with a `code`) when the addon cannot create the stream; server trouble shows in stats(). */
  openPlayback(opts: NativePlaybackOptions): NativePlayback;
  /** The speaker's per-Write core (native/speaker_core.h) in this server's addon. */
  openSpeakerCore(opts: SpeakerCoreOptions): NativeSpeakerCore;
  /** The speaker's intake thread on a listener connection (native/speaker_intake.h); absent: Writes come through JS. */
  openSpeakerIntake?(core: NativeSpeakerCore, fd: number, pending: Uint8Array, onEvent: (kind: 0 | 1 | 2 | 3, data: Buffer | string) => void): NativeSpeakerIntake;
}

/** Opens native capture streams on one sound server. */
export interface CaptureBackend {
  readonly kind: AudioBackendKind;
  readonly where: string;
  /**
   * Throws (with a `code`) when the server cannot be reached; later trouble arrives through
   * `onState` ('error'). `onState` runs on the JS thread; an exception it throws is rethrown
   * outside the addon's callback instead of vanishing there.
   */
  openCapture(opts: NativeCaptureOptions, onState: CaptureStateListener): NativeCapture;
}

/** One sound server, both directions. */
export type AudioBackend = PlaybackBackend & CaptureBackend;

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
  native?: AudioNativeApi & CaptureNativeApi;
  probe?: (socketPath: string) => Promise<string | null>;
}

function missing(what: string): never {
  throw new AudioBackendError('ENATIVE', `the native addon has no ${what}`, 'rebuild it with: npm run setup');
}

/** Runs the addon's state callback's listener; a throw resurfaces as an uncaught exception. */
function guardedListener(onState: CaptureStateListener): CaptureStateListener {
  return (state, message) => {
    // Called from the addon's ThreadSafeFunction, which cannot propagate a JS exception.
    try {
      onState(state, message);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  };
}

/** What to check when the addon cannot reach the sound server, from the audio routes' side. */
const AUDIO_FIXES: Readonly<Record<string, string>> = {
  EPIPEWIRE: 'is PipeWire running for this user? Check XDG_RUNTIME_DIR / PIPEWIRE_REMOTE, or choose --audio pulse',
  EPULSE: 'is a PulseAudio server running for this user? Check PULSE_SERVER / XDG_RUNTIME_DIR, or choose --audio pipewire',
};

/**
 * The backend for `kind`, over `native` (injectable: unit tests pass test/fakes constructors).
 * What the addon throws surfaces as NativeError (a CodedError with the fix for audio).
 */
export function audioBackendFor(kind: AudioBackendKind, env: Env = process.env, native: AudioNativeApi & CaptureNativeApi = addon): AudioBackend {
  // PipeWire: the absolute socket path works even when the service's XDG_RUNTIME_DIR differs
  // from the daemon's. PulseAudio: a server string.
  const where = kind === 'pipewire' ? pipewireSocketPath(env) : `unix:${pulseSocketPath(env)}`;
  const Play = kind === 'pipewire' ? native.PwPlayback : native.PulsePlayback;
  const Capture = kind === 'pipewire' ? native.PwCapture : native.PulseCapture;
  const Core = kind === 'pipewire' ? native.PwSpeakerCore : native.PulseSpeakerCore;
  if (!Play) missing(kind === 'pipewire' ? 'PipeWire playback (PwPlayback)' : 'PulseAudio playback (PulsePlayback)');
  return {
    kind,
    where,
    openPlayback: (o) => callNative(() => new Play({ ...o, remote: o.remote ?? where }), AUDIO_FIXES),
    openSpeakerCore: (o) => {
      if (!Core) missing(kind === 'pipewire' ? 'PipeWire speaker core (PwSpeakerCore)' : 'PulseAudio speaker core (PulseSpeakerCore)');
      return callNative(() => new Core(o), AUDIO_FIXES);
    },
    openSpeakerIntake: (core, fd, pending, onEvent) => {
      const Intake = kind === 'pipewire' ? native.PwSpeakerIntake : native.PulseSpeakerIntake;
      if (!Intake) missing(kind === 'pipewire' ? 'PipeWire speaker intake (PwSpeakerIntake)' : 'PulseAudio speaker intake (PulseSpeakerIntake)');
      return callNative(() => new Intake(core, fd, pending, onEvent), AUDIO_FIXES);
    },
    openCapture: (o, onState) => {
      if (!Capture) missing(kind === 'pipewire' ? 'PipeWire capture (PwCapture)' : 'PulseAudio capture (PulseCapture)');
      return callNative(() => new Capture({ ...o, remote: o.remote ?? where }, guardedListener(onState)), AUDIO_FIXES);
    },
  };
}

/**
 * Returns the backend for `choice`, or null for 'none'. 'auto' probes the PipeWire socket,
 * then the PulseAudio one; when neither answers it throws AudioBackendError ENOAUDIOSERVER.
 */
export async function selectAudioBackend(choice: AudioChoice, opts: SelectOptions = {}): Promise<AudioBackend | null> {
  const env = opts.env ?? process.env;
  const native = opts.native ?? addon;
  const probe = opts.probe ?? probeUnixSocket;
  if (choice === 'none') return null;
  if (choice === 'pipewire' || choice === 'pulse') return audioBackendFor(choice, env, native);
  if (choice !== 'auto') throw new AudioBackendError('EINVAL', `unknown audio backend '${String(choice)}': use one of ${AUDIO_CHOICES.join(', ')}`);
  const pwPath = pipewireSocketPath(env);
  const pwErr = await probe(pwPath);
  if (pwErr === null) return audioBackendFor('pipewire', env, native);
  const paPath = pulseSocketPath(env);
  const paErr = await probe(paPath);
  if (paErr === null) return audioBackendFor('pulse', env, native);
  throw new AudioBackendError(
    'ENOAUDIOSERVER',
    `no sound server answers: tried PipeWire at ${pwPath} (${pwErr}) and PulseAudio at ${paPath} (${paErr})`,
    'start PipeWire or PulseAudio for this user (check XDG_RUNTIME_DIR), or run with --audio none',
  );
}

/**
 * One selection shared by the audio routes of a service: the first route to start probes, a
 * route starting while another holds the server gets the same one; once every holder released
 * it (the VM went away), the next start probes again (the user may have switched servers).
 */
export class SoundServerChoice {
  private current: Promise<AudioBackend | null> | undefined;
  private holders = 0;

  constructor(
    readonly choice: AudioChoice,
    private readonly opts: SelectOptions = {},
  ) {}

  /** The server to use; pair every successful acquire() with one release(). */
  async acquire(): Promise<AudioBackend | null> {
    this.current ??= selectAudioBackend(this.choice, this.opts);
    this.holders++;
    try {
      return await this.current;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  release(): void {
    if (this.holders > 0 && --this.holders === 0) this.current = undefined;
  }
}
