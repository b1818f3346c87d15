// One contract for every camera sink (fake, file/FIFO, v4l2 over the fake loopback device, and
// the real PipeWire node in test/integration/camera-pipewire.test.ts): what the pipeline relies on.
import { afterEach, describe, expect, it } from 'vitest';
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
  describe(`camera sink contract: ${name}`, () => {
    let cur: SinkUnderTest | undefined;
    afterEach(async () => {
      await cur?.sink.close();
      await cur?.cleanup?.();
      cur = undefined;
    });

    const active = async (): Promise<{ sink: CameraSink; format: CameraPixelFormat }> => {
      cur = await make();
      if (cur.consume) await cur.consume();
      const format = cur.sink.wantedFormat();
      expect(format, 'a consuming sink names the format it wants').not.toBeNull();
      return { sink: cur.sink, format: format! };
    };

    it('describes itself: kind, target, even size, fps', async () => {
      cur = await make();
      const s = cur.sink;
      expect(s.kind).toMatch(/^(fake|file|v4l2|pipewire)$/);
      expect(s.target.length).toBeGreaterThan(0);
      expect(s.width % 2).toBe(0);
      expect(s.height % 2).toBe(0);
      expect(s.fps).toBeGreaterThan(0);
      expect(typeof s.repeatsItself).toBe('boolean');
    });

    it('takes whole frames of the wanted format and counts them', async () => {
      const { sink, format } = await active();
      const frame = Buffer.alloc(frameBytes(format, sink.width, sink.height), 0x80);
      let ok = 0;
      for (let i = 0; i < 3; i++) {
        frame[0] = 16 + i;
        if (sink.writeFrame(frame, format)) ok++;
        await new Promise((r) => setTimeout(r, 1000 / sink.fps));
      }
      expect(ok).toBeGreaterThan(0);
      await sink.close();
      expect(sink.stats().written + sink.stats().dropped).toBe(3);
      if (cur?.received) {
        const got = await cur.received();
        expect(got.length).toBe(sink.stats().written);
        for (const f of got) expect(f.length).toBe(frame.length);
      }
    });

    it('refuses a frame of the wrong size (ERANGE) or the wrong format (EFORMAT)', async () => {
      const { sink, format } = await active();
      const n = frameBytes(format, sink.width, sink.height);
      expect(codeOf(() => sink.writeFrame(Buffer.alloc(n - 2), format))).toBe('ERANGE');
      const other: CameraPixelFormat = format === 'YUY2' ? 'NV12' : 'YUY2';
      expect(codeOf(() => sink.writeFrame(Buffer.alloc(frameBytes(other, sink.width, sink.height)), other))).toBe('EFORMAT');
      expect(sink.stats().written).toBe(0);
    });

    it('close() is idempotent; afterwards nothing is wanted and writes throw ECLOSED', async () => {
      const { sink, format } = await active();
      await sink.close();
      await sink.close();
      expect(sink.wantedFormat()).toBeNull();
      expect(codeOf(() => sink.writeFrame(Buffer.alloc(frameBytes(format, sink.width, sink.height)), format))).toBe('ECLOSED');
    });
  }, opts.timeoutMs);
}
