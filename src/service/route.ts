// What a route is to the service. A route bridges one kind of traffic between the attached VM
// and the host (audio out, audio in, camera, input). The Controller owns ordering, retries and
// shutdown; a route only knows how to start on one attached VM and how to stop.
import type { Logger } from '../log';

/** Fixed start order; stop runs in reverse (input first so keys are released before anything else goes). */
export const ROUTE_ORDER = ['audio-out', 'audio-in', 'camera', 'input'] as const;
export type RouteName = (typeof ROUTE_ORDER)[number];

/**
 * A route's own name in this bridge (logs, STATUS=, the status bus, RestartRoute): its kind
 * (RouteName) when the bridge runs one route of that kind, else kind-N. Only the camera has
 * several, one per `[[camera]]` entry: camera-0, camera-1, … (N is the entry's position).
 */
export type RouteId = RouteName | `camera-${number}`;

/** The id of entry `index` of several routes of `kind` (see RouteId). */
export const routeIdOf = (kind: 'camera', index: number): RouteId => `${kind}-${index}`;

/** The route's id (its `id`, else its name). */
export const idOfRoute = (r: { readonly name: RouteName; readonly id?: RouteId }): RouteId => r.id ?? r.name;

/** The id of one of several cameras (RouteId). */
export const CAMERA_ROUTE_ID = /^camera-(0|[1-9][0-9]{0,3})$/;

/** The kind of a route id, undefined for a string that names no route. */
export function routeKindOf(id: string): RouteName | undefined {
  if ((ROUTE_ORDER as readonly string[]).includes(id)) return id as RouteName;
  return CAMERA_ROUTE_ID.test(id) ? 'camera' : undefined;
}

/** The attached VM as the service sees it. The qemu layer's session satisfies this. */
export interface VmLink {
  readonly name: string;
  readonly uuid: string;
  /** Resolves (never rejects) with a reason when the link is gone: QEMU exited, bus closed. */
  readonly lost: Promise<string>;
  /** Drops our side of the link (idempotent). */
  close(): Promise<void>;
  /**
   * Optional: the VM went away / came back while the link stays up (QEMU restarted and the
   * qemu layer re-attached by itself). Routes keep running; the status line says so.
   */
  onPresence?(cb: (p: { present: boolean; reason?: string }) => void): () => void;
  /** Optional: what this QEMU offers, as short words (status bus QemuFeatures). */
  features?(): string[];
}

/** Finds the VM and connects to it. Retrying is the Controller's job, not the attacher's. */
export interface Attacher<V extends VmLink = VmLink> {
  /** Rejects (Error with `code`) when the VM is not reachable now. */
  attach(signal: AbortSignal): Promise<V>;
  /** e.g. "VM 'demo' on unix:path=/run/user/1000/bus" (for logs and STATUS=). */
  describe(): string;
  /** Optional: releases what the attacher holds between attaches (e.g. its libvirt connection). */
  close?(): Promise<void>;
  /**
   * Optional: after attach() failed, resolves as soon as trying again may succeed (a QEMU appeared
   * on the VM's bus), so the controller does not wait out its backoff; also resolves on abort.
   * Without it the controller retries on the backoff alone.
   */
  appeared?(signal: AbortSignal): Promise<void>;
}

export interface RouteContext<V extends VmLink = VmLink> {
  readonly vm: V;
  readonly log: Logger;
  /** Aborted when the Controller stops this route (shutdown, VM lost, or after fail()). */
  readonly signal: AbortSignal;
  /**
   * Report a failure AFTER start() resolved (sound server gone, device unplugged). The
   * Controller stops this route and starts it again with backoff; other routes carry on.
   */
  fail(err: Error): void;
  /** status() changed: the Controller refreshes STATUS= and the status line. */
  statusChanged(): void;
}

// Live counters, one typed shape per route (the status bus and `status --json` show them).
// Read on demand, at most once per second, never per block or frame: a route keeps them in the
// counters its parts already maintain and only copies them out here. `target` is what the route
// is connected to on the host side (sink, source, camera target, input devices).

export interface AudioOutCounters {
  route: 'audio-out';
  target: string;
  /** e.g. "s16le 44100 Hz 2ch"; '' while the guest plays nothing */
  format: string;
  /** frames per QEMU Write (0 = not known yet) */
  blockFrames: number;
  /** latency the voice aims for, and what the sound server reports now (ms; 0 = unknown) */
  targetLatencyMs: number;
  measuredLatencyMs: number;
  /** frames the guest played (received in Writes) */
  frames: number;
  /** frames queued in the ring now */
  fillFrames: number;
  /** times the sink ran dry while the guest played (it did not deliver in time) */
  underruns: number;
  /** frames dropped because the ring was full (the sound server did not take them in time) */
  overruns: number;
  /** frames lost while no stream was open (the sound server was gone) */
  lostFrames: number;
  /** frames of digital silence not queued because the ring already held two blocks more than it needs
   * (QEMU sends at its own clock; a sink running slow would otherwise let the backlog grow) */
  silenceSkippedFrames: number;
  /** streams opened again after the sound server went away */
  reconnects: number;
  /** (ratio - 1) * 1e6 of the drift controller */
  driftPpm: number;
  rateRatio: number;
}

export interface AudioInCounters {
  route: 'audio-in';
  target: string;
  /** a microphone stream is open (the guest records) */
  open: boolean;
  reads: number;
  /** Reads that had to be padded with silence */
  paddedReads: number;
  underruns: number;
}

export interface CameraCounters {
  route: 'camera';
  target: string;
  /** frames handed to the sink per second, over the last reading interval */
  fps: number;
  converted: number;
  /** frames written again unchanged (nothing changed on the guest screen) */
  repeated: number;
  dropped: number;
  /** guest Update -> frame handed to the sink, over the last reading interval (ms; 0 = none) */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** someone consumes the camera */
  viewer: boolean;
}

export interface InputCounters {
  route: 'input';
  target: string;
  devices: string[];
  /** where input goes now: 'guest' (forwarded) or 'host' (released; the hotkey or Release()) */
  forwardTo: 'guest' | 'host';
  /** a real device is held exclusively (forwarding to the guest with grabbing on; replay streams never are) */
  grabbed: boolean;
  forwarded: number;
  dropped: number;
  /** '' when nothing failed */
  lastError: string;
  /** [input] ring_order / --ring-order: this bridge's place in the grab-next ring (lowest first) */
  ringOrder: number;
}

export type RouteCounters = AudioOutCounters | AudioInCounters | CameraCounters | InputCounters;
export type CountersOf<N extends RouteName> = Extract<RouteCounters, { route: N }>;

/** A route's counters before anything happened (what a route that never started shows). */
export function emptyCounters<N extends RouteName>(route: N, target = ''): CountersOf<N> {
  const all: { [K in RouteName]: CountersOf<K> } = {
    'audio-out': { route: 'audio-out', target, format: '', blockFrames: 0, targetLatencyMs: 0, measuredLatencyMs: 0, frames: 0, fillFrames: 0, underruns: 0, overruns: 0, lostFrames: 0, silenceSkippedFrames: 0, reconnects: 0, driftPpm: 0, rateRatio: 1 },
    'audio-in': { route: 'audio-in', target, open: false, reads: 0, paddedReads: 0, underruns: 0 },
    camera: { route: 'camera', target, fps: 0, converted: 0, repeated: 0, dropped: 0, latencyP50Ms: 0, latencyP99Ms: 0, viewer: false },
    input: { route: 'input', target, devices: [], forwardTo: 'guest', grabbed: false, forwarded: 0, dropped: 0, lastError: '', ringOrder: 0 },
  };
  return all[route];
}

/**
 * The input route's side of the hand-over between bridges (grab-next hotkey): the status bus
 * registers for the hotkey and, knowing the other bridges, releases here or takes over here.
 */
export interface HandOverPort {
  /** Who hears the grab-next hotkey (undefined: nobody; the hotkey then does nothing). */
  onNext(handler: ((stampUs: number, forwarding: boolean) => void) | undefined): void;
  /** Input to the host; resolves once this VM has every key and button released and the devices are let go. */
  release(): Promise<void>;
  /** Input to this VM for grab-next press `stampUs`; false when the route is not running. */
  takeOver(stampUs: number): boolean;
  /** Whether input went to this VM when press `stampUs` fired (now, if not seen yet). */
  forwardingAt(stampUs: number): boolean;
}

/** Grab()/Release()/ToggleGrab() from outside (the status bus). */
export type GrabRequest = 'grab' | 'release' | 'toggle';

export interface Route<V extends VmLink = VmLink> {
  /** The kind: start order, the counters' shape. */
  readonly name: RouteName;
  /** Set when the bridge runs several routes of this kind (RouteId); default `name`. */
  readonly id?: RouteId;
  /** Sets the route up on this VM. Rejects if it cannot (the Controller retries with backoff). */
  start(ctx: RouteContext<V>): Promise<void>;
  /** Orderly stop: keys released, audio drained, camera closed. Must finish well within 1 s. */
  stop(): Promise<void>;
  /** One short phrase, e.g. "audio 44100 Hz 2ch → vm-sink". Called on state changes only. */
  status(): string;
  /**
   * Live counters (see RouteCounters); valid before start() and after stop() too (zeros). Its
   * state changes are reported by the route through ctx.statusChanged() when they happen, from
   * the event that changes them (never by polling).
   */
  counters(): RouteCounters;
  /**
   * The input route only: forward to the guest (grab) or release to the host. True when input
   * now goes to the guest; undefined when the route is not running (nothing changed).
   */
  setGrab?(want: GrabRequest): boolean | undefined;
  /** The input route only: hand-over between bridges. */
  readonly handOver?: HandOverPort;
}

// Every error the service raises is a CodedError (src/errors.ts). A permanent one (a failure
// retrying cannot fix) is reported once by a route, which stays off until the next attach; an
// attacher's ends the service with the error's `exitCode`.
export { CodedError, errorCode, errorMessage, errorProblem, isPermanent } from '../errors';
