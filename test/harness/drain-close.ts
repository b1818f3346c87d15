// Closes PipeWire playback streams in the middle of their drain, many times over: what a voice
// does when the guest re-Inits it or its drain outlasts voice.ts's limit. Run as a child process
// (a crash must fail the test, not take vitest down): test/integration/pw-close-while-running.test.ts.
//
//   node dist/test/harness/drain-close.js --remote SOCKET --rounds N [--addon FILE]
//
// Prints one JSON line {rounds, streams, drainedSeen, streamingSeen, ms} and exits 0; any crash of
// the process is the caller's to see (exit signal). --addon loads that .node file instead of the
// project's build (to run an older build against the same rounds).
import { native } from '../../src/native';
import type { NativePlayback, NativePlaybackCtor } from '../../src/native-api/audio';

const STREAMS_PER_ROUND = 4;
const RATE = 48000;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tone(frames: number): Uint8Array {
  const b = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / RATE));
    b.writeInt16LE(v, i * 4);
    b.writeInt16LE(v, i * 4 + 2);
  }
  return b;
}

async function main(): Promise<void> {
  const remote = arg('remote');
  const rounds = Number(arg('rounds') ?? '50');
  if (!remote || !(rounds > 0)) throw new Error('usage: drain-close.js --remote SOCKET --rounds N [--addon FILE]');
  const addon = arg('addon');
  const Ctor = (addon ? (require(addon) as { PwPlayback?: NativePlaybackCtor }).PwPlayback : native.PwPlayback);
  if (!Ctor) throw new Error('the addon lacks PwPlayback: build it with bash scripts/build-native.sh');
  const block = tone(480);
  let drainedSeen = 0;
  let streamingSeen = 0;
  const t0 = Date.now();
  for (let r = 0; r < rounds; r++) {
    const streams: NativePlayback[] = [];
    for (let k = 0; k < STREAMS_PER_ROUND; k++) {
      streams.push(
        new Ctor({
          format: 'S16LE',
          rate: RATE,
          channels: 2,
          positions: ['FL', 'FR'],
          ringFrames: 4800,
          startFrames: 64,
          latencyFrames: 128,
          streamName: `drain-close-${k}`,
          props: { 'node.name': `qdb-drain-close-${k}`, 'application.name': 'qdb drain-close' },
          remote,
        }),
      );
    }
    // Streaming first: a drain only ends in a running graph.
    const until = Date.now() + 3000;
    while (Date.now() < until && !streams.every((s) => s.stats().state === 'streaming')) await sleep(2);
    streamingSeen += streams.filter((s) => s.stats().state === 'streaming').length;
    for (const s of streams) {
      s.write(block);
      s.drain();
    }
    // Each stream is closed at its own moment of the drain (480 frames, three cycles of padding
    // and the last cycle take ~20 ms at this quantum), some before, some around, some after the
    // end; the closes of the others keep the loop lock busy meanwhile.
    const closeAt = streams.map(() => Math.random() * 40);
    const start = Date.now();
    let open = streams.length;
    const closed = streams.map(() => false);
    while (open > 0) {
      const now = Date.now() - start;
      for (let k = 0; k < streams.length; k++) {
        if (closed[k] || now < closeAt[k]) continue;
        if (streams[k].stats().drained) drainedSeen++;
        streams[k].close();
        closed[k] = true;
        open--;
      }
      if (open > 0) await sleep(1);
    }
    // Let the loop thread run whatever is still queued before the next round reuses the memory.
    await sleep(5);
  }
  console.log(JSON.stringify({ rounds, streams: rounds * STREAMS_PER_ROUND, drainedSeen, streamingSeen, ms: Date.now() - t0 }));
}

main().catch((e: Error) => {
  console.error(`drain-close: ${e.message}`);
  process.exit(1);
});
