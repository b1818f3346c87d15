// The capture contract against the fake capture server (the same suite runs against PipeWire and
// PulseAudio in test/integration/capture.real.test.ts).
import type { NativeSampleFormat } from '../../src/audio/format';
import type { NativeCapture } from '../../src/native-api/capture';
import { captureContract } from '../contracts/capture.contract';
import { FakeCaptureServer, FakeCaptureStream } from '../fakes/capture';

type CaptureStream = NativeCapture;

/** Encodes one sample (-1..1) of `format` at data[i]. */
function encode(format: NativeSampleFormat, view: DataView, i: number, v: number): void {
  const le = !format.endsWith('BE');
  switch (format) {
    case 'U8':
      view.setUint8(i, Math.round(v * 127) + 128);
      break;
    case 'S8':
      view.setInt8(i, Math.round(v * 127));
      break;
    case 'S16LE':
    case 'S16BE':
      view.setInt16(i, Math.round(v * 32767), le);
      break;
    case 'U16LE':
    case 'U16BE':
      view.setUint16(i, Math.round(v * 32767) + 32768, le);
      break;
    case 'S32LE':
    case 'S32BE':
      view.setInt32(i, Math.round(v * 2147483647), le);
      break;
    case 'U32LE':
    case 'U32BE':
      view.setUint32(i, Math.round(v * 2147483647) + 2147483648, le);
      break;
    default:
      view.setFloat32(i, v, le);
  }
}

/** Server side of the fake: delivers 10 ms periods of a sine (or silence) every 2 ms. */
function deliverPeriods(stream: FakeCaptureStream, hz: number, ms: number): { done: Promise<void>; stop(): Promise<void> } {
  const { format, rate, channels } = stream.request;
  const frames = Math.round(rate / 100);
  const bps = stream.frameBytes / channels;
  let phase = 0;
  let left = Math.ceil(ms / 10);
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    const tick = (): void => {
      if (left-- <= 0 || stream.closed) {
        resolve();
        return;
      }
      const buf = new Uint8Array(frames * stream.frameBytes);
      const view = new DataView(buf.buffer);
      for (let f = 0; f < frames; f++) {
        const v = hz > 0 ? 0.5 * Math.sin((2 * Math.PI * hz * phase++) / rate) : 0;
        for (let c = 0; c < channels; c++) encode(format, view, f * stream.frameBytes + c * bps, v);
      }
      stream.deliver(buf);
      timer = setTimeout(tick, 2);
    };
    tick();
  });
  return {
    done,
    stop: async () => {
      left = 0;
      clearTimeout(timer);
      await Promise.resolve();
    },
  };
}

const server = new FakeCaptureServer();

captureContract('fake', {
  setup: async () => undefined,
  teardown: async () => undefined,
  backend: () => server,
  source: () => undefined,
  startTone: async (stream: CaptureStream, hz, ms) => deliverPeriods(stream as FakeCaptureStream, hz, ms),
  idle: async (stream: CaptureStream, ms) => {
    await deliverPeriods(stream as FakeCaptureStream, 0, ms).done;
  },
});
