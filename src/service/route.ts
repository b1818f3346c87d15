// What a route is to the service. A route bridges one kind of traffic between the attached VM
// and the host (audio out, audio in, camera, input). The Controller owns ordering, retries and
// shutdown; a route only knows how to start on one attached VM and how to stop.
import type { Logger } from '../log';

/** Fixed start order; stop runs in reverse (input first so keys are released before anything else goes). */
export const ROUTE_ORDER = ['audio-out', 'audio-in', 'camera', 'input'] as const;
export type RouteName = (typeof ROUTE_ORDER)[number];

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
}

/** Finds the VM and connects to it. Retrying is the Controller's job, not the attacher's. */
export interface Attacher<V extends VmLink = VmLink> {
  /** Rejects (Error with `code`) when the VM is not reachable now. */
  attach(signal: AbortSignal): Promise<V>;
  /** e.g. "VM 'demo' on unix:path=/run/user/1000/bus" (for logs and STATUS=). */
  describe(): string;
  /** Optional: releases what the attacher holds between attaches (e.g. its libvirt connection). */
  close?(): Promise<void>;
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

export interface Route<V extends VmLink = VmLink> {
  readonly name: RouteName;
  /** Sets the route up on this VM. Rejects if it cannot (the Controller retries with backoff). */
  start(ctx: RouteContext<V>): Promise<void>;
  /** Orderly stop: keys released, audio drained, camera closed. Must finish well within 1 s. */
  stop(): Promise<void>;
  /** One short phrase, e.g. "audio 44100 Hz 2ch → vm-sink". Called on state changes only. */
  status(): string;
}

// Every error the service raises is a CodedError (src/errors.ts). A permanent one (a failure
// retrying cannot fix) is reported once by a route, which stays off until the next attach; an
// attacher's ends the service with the error's `exitCode`.
export { CodedError, errorCode, errorMessage, errorProblem, isPermanent } from '../errors';
