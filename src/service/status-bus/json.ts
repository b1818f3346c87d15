// The schema of `qemu-dbus-bridge status --json`: one definition, used to build the output,
// checked against every route's counters type (a field missing here does not compile), written
// to docs/status.schema.json (JSON Schema; a unit test keeps the file equal to this) and used by
// the integration test to check what the command really prints.
import { z } from 'zod/v4';
import type { AudioInCounters, AudioOutCounters, CameraCounters, InputCounters } from '../route';
import { CAMERA_ROUTE_ID, ROUTE_ORDER } from '../route';

const count = z.number().int().min(0);

const audioOut = z
  .object({
    route: z.literal('audio-out'),
    target: z.string().describe('sink and sound server'),
    format: z.string().describe("e.g. 's16le 44100 Hz 2ch'; empty while the guest plays nothing"),
    blockFrames: count.describe('frames per QEMU Write (0: not known yet)'),
    targetLatencyMs: z.number().describe('latency the stream aims for'),
    measuredLatencyMs: z.number().describe('latency the sound server reports now (0: unknown)'),
    frames: count.describe('frames the guest played'),
    fillFrames: count.describe('frames queued now'),
    underruns: count.describe('times the sink ran dry while the guest played (the guest did not deliver in time)'),
    overruns: count.describe('frames dropped because the queue was full (the sound server did not take them in time)'),
    lostFrames: count.describe('frames lost while the sound server was gone'),
    silenceSkippedFrames: count.describe('frames of digital silence not queued because the queue already held two blocks more than needed (the sink ran slower than QEMU sends)'),
    reconnects: count.describe('streams opened again after the sound server went away'),
    driftPpm: z.number().describe('rate correction of the drift controller, parts per million'),
    rateRatio: z.number().describe('current resampling ratio (1 = none)'),
  })
  .strict() satisfies z.ZodType<AudioOutCounters>;

const audioIn = z
  .object({
    route: z.literal('audio-in'),
    target: z.string().describe('source'),
    open: z.boolean().describe('a microphone stream is open (the guest records)'),
    reads: count.describe('Reads answered'),
    paddedReads: count.describe('Reads padded with silence'),
    underruns: count.describe('times the microphone queue ran dry while the guest recorded'),
  })
  .strict() satisfies z.ZodType<AudioInCounters>;

const camera = z
  .object({
    route: z.literal('camera'),
    target: z.string().describe('v4l2 device, PipeWire camera or file'),
    fps: z.number().min(0).describe('frames delivered per second, over the last second'),
    converted: count,
    repeated: count.describe('frames written again unchanged'),
    dropped: count,
    latencyP50Ms: z.number().min(0).describe('guest Update to frame delivered, median over the last second (0: no change)'),
    latencyP99Ms: z.number().min(0),
    viewer: z.boolean().describe('somebody consumes the camera'),
  })
  .strict() satisfies z.ZodType<CameraCounters>;

const input = z
  .object({
    route: z.literal('input'),
    target: z.string().describe('devices or replay streams as configured or open'),
    devices: z.array(z.string()).describe('open devices and replay streams'),
    forwardTo: z.enum(['guest', 'host']).describe("where input goes: 'guest' (grabbed) or 'host' (released)"),
    grabbed: z.boolean().describe('a real device is held exclusively'),
    forwarded: count.describe('keys, buttons, motions, wheel notches and touches sent to the guest'),
    dropped: count,
    lastError: z.string(),
    ringOrder: z.number().int().describe("this bridge's place in the grab-next ring, lowest first ([input] ring_order)"),
  })
  .strict() satisfies z.ZodType<InputCounters>;

export const routeJson = z
  .object({
    name: z
      .union([z.enum(ROUTE_ORDER), z.string().regex(CAMERA_ROUTE_ID)])
      .describe('the route: its kind, or camera-N for the Nth of several [[camera]] entries (counters.route is then camera)'),
    state: z.enum(['idle', 'starting', 'running', 'retrying', 'unavailable', 'stopping', 'stopped']),
    reason: z.string().describe('why it is retrying or unavailable; empty otherwise'),
    nextRetryAt: z.string().nullable().describe('ISO 8601 time of the next start attempt, null when none is due'),
    summary: z.string().describe('the route status phrase'),
    target: z.string(),
    counters: z.discriminatedUnion('route', [audioOut, audioIn, camera, input]).nullable().describe('null when the bridge gave none for this route'),
  })
  .strict();

export const bridgeJson = z
  .object({
    vm: z.string().describe('VM name'),
    uuid: z.string().describe('empty while not attached'),
    pid: z.number().int().describe('the bridge process'),
    busName: z.string().describe('its well-known name on the session bus'),
    attached: z.boolean(),
    status: z.string().describe('the one-line status (STATUS=)'),
    qemuFeatures: z.array(z.string()),
    routes: z.array(routeJson),
  })
  .strict();

/** Top level of `status --json`: every bridge found on the session bus (or the one --vm names). */
export const statusJson = z
  .object({
    version: z.literal(1).describe('schema version; bumped when a field changes meaning or goes'),
    bridges: z.array(bridgeJson),
  })
  .strict();

export type StatusJson = z.infer<typeof statusJson>;
export type BridgeJson = z.infer<typeof bridgeJson>;
export type RouteJson = z.infer<typeof routeJson>;

/** The JSON Schema committed as docs/status.schema.json. */
export function statusJsonSchema(): unknown {
  return { ...z.toJSONSchema(statusJson), title: 'qemu-dbus-bridge status --json' };
}
