// The camera sink boundary: what the pipeline relies on from every CameraSink. Run against the
// fakes (test/unit/camera-sink.fake.test.ts: the in-memory sink, V4l2Sink over the fake
// v4l2loopback backend), the real sinks on this host (test/integration/camera-sink.real.test.ts:
// the PipeWire node with a real consumer, the file sink) and V4l2Sink over the real backend on a
// real v4l2loopback device (test/kernel/guest/v4l2.guest.ts). No per-test hooks: the kernel
// tier's runner has describe/it/beforeAll/afterAll only, so each test closes what it opened.
import { describe, expect, it } from 'vitest';
import { CameraPixelFormat, CameraSink, frameBytes } from '../../src/camera/sinks/types';

export interface SinkUnderTest {
  sink: CameraSink;
  /** makes somebody consume (PipeWire: link a capture); resolves when wantedFormat() is non-null */
  consume?: () => Promise<void>;
  /** frames the consumer saw, in order, if it can tell (byte-exact sinks) */
  received?: () => Promise<Buffer[]>;
  cleanup?: () => Promise<void>;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

export function sinkContract(name: string, make: () => Promise<SinkUnderTest>, opts: { timeoutMs?: number } = {}): void {
  /** Runs `fn` on a fresh sink (consumed first when `active`), then closes and cleans up. */
  const withSink = async (active: boolean, fn: (s: SinkUnderTest, format: CameraPixelFormat) => Promise<void>): Promise<void> => {
    const cur = await make();
    try {
      if (active && cur.consume) await cur.consume();
      const format = cur.sink.wantedFormat();
      if (active) expect(format, 'a consuming sink names the format it wants').not.toBeNull();
      await fn(cur, format ?? 'YUY2');
    } finally {
      await cur.sink.close();
      await cur.cleanup?.();
    }
  };

  describe(`camera sink contract: ${name}`, () => {
    it('describes itself: kind, target, even size, fps', () =>
      withSink(false, async ({ sink: s }) => {
        expect(['file', 'v4l2', 'pipewire']).toContain(s.kind);
        expect(s.target.length).toBeGreaterThan(0);
        expect(s.width % 2).toBe(0);
        expect(s.height % 2).toBe(0);
        expect(s.fps).toBeGreaterThan(0);
        // only PipeWire's driver node repeats the last frame by itself (the pipeline relies on it)
        expect(s.repeatsItself).toBe(s.kind === 'pipewire');
      }));

    it('takes whole frames of the wanted format and counts them', () =>
      withSink(true, async (cur, format) => {
        const sink = cur.sink;
        const frame = Buffer.alloc(frameBytes(format, sink.width, sink.height), 0x80);
        let ok = 0;
        for (let i = 0; i < 3; i++) {
          frame[0] = 16 + i;
          if (sink.writeFrame(frame, format)) ok++;
          await new Promise((r) => setTimeout(r, 1000 / sink.fps));
        }
        expect(ok).toBeGreaterThan(0);
        await sink.close();
        expect(sink.stats().written).toBe(ok);
        expect(sink.stats().written + sink.stats().dropped).toBe(3);
        if (cur.received) {
          const got = await cur.received();
          expect(got.length).toBe(sink.stats().written);
          for (const f of got) expect(f.length).toBe(frame.length);
        }
      }));

    it('refuses a frame of the wrong size (ERANGE) or the wrong format (EFORMAT)', () =>
      withSink(true, async ({ sink }, format) => {
        const n = frameBytes(format, sink.width, sink.height);
        expect(codeOf(() => sink.writeFrame(Buffer.alloc(n - 2), format))).toBe('ERANGE');
        const other: CameraPixelFormat = format === 'YUY2' ? 'NV12' : 'YUY2';
        expect(codeOf(() => sink.writeFrame(Buffer.alloc(frameBytes(other, sink.width, sink.height)), other))).toBe('EFORMAT');
        expect(sink.stats().written).toBe(0);
      }));

    it('close() is idempotent; afterwards nothing is wanted and writes throw ECLOSED', () =>
      withSink(true, async ({ sink }, format) => {
        await sink.close();
        await sink.close();
        expect(sink.wantedFormat()).toBeNull();
        expect(codeOf(() => sink.writeFrame(Buffer.alloc(frameBytes(format, sink.width, sink.height)), format))).toBe('ECLOSED');
      }));
  }, opts.timeoutMs);
}
