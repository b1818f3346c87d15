// Child process for bench/scale.bench.ts: hosts the fake VMs (test/fakes/qemu-peer.ts, QEMU 10's
// flavour) on the VM bus, in one process of their own so their CPU is measured apart from the
// bridges'. Each fake, once a bridge registered its audio listener, sends audio Writes at real time
// (one 10 ms block of 480 frames, 48 kHz S16 stereo, per 10 ms of wall time, catching up after a
// late timer like QEMU's audio timer) and, while its input voice is enabled (the guest records),
// Reads it on the same tick as QEMU does (audio_run_in on the audio timer runs the dbus backend's
// read for every enabled input voice: AudioInListener.Read of the block that became due, a call
// QEMU waits for, so a fake never has two in flight); a fake started with `updates` also sends full-frame
// 1280x800 Listener.Update calls at 30/s to its console listener (the copy path QEMU takes
// without Unix.Map; pre-marshalled, so the fake's cost is the socket write, not dbus-native).
//
// Commands on stdin, one JSON object a line:
//   {"cmd":"start","i":0,"name":"scale-0","camera":true}  -> {"ev":"up","i":0,"t":<ms>,"unique":":1.7"}
//   {"cmd":"stop","i":0}                                     -> {"ev":"down","i":0,"t":<ms>}
//   {"cmd":"updates","i":0,"on":true}                        -> {"ev":"updates","i":0,"on":true}
//   {"cmd":"mic","on":false}                                 -> {"ev":"mic","on":false} (SetEnabled on every audio-in voice)
//   {"cmd":"writes","on":false}                              -> {"ev":"writes","on":false} (the output voices stay enabled,
//                                                               no Writes: what wakes a bridge besides QEMU's audio)
//   {"cmd":"stats"}                                          -> {"ev":"stats","writes":N,"reads":N,"shortReads":N,"updates":N,"skipped":N}
// Events carry wall-clock times (performance.timeOrigin + performance.now(), ms), comparable with
// the bench process's. Unsolicited: {"ev":"listener","i":0,"kind":"audio-out","t":<ms>} when a
// listener's registration completed; {"ev":"error","message":"..."} on anything unexpected.
import * as readline from 'readline';
import { FakeQemuPeer, marshalledUpdate, type FakeListenerPeer } from '../test/fakes/qemu-peer';

const RATE = 48_000;
const BLOCK_FRAMES = 480; // what the 10.1 fake advertises as Audio.NSamples
const BYTES_PER_FRAME = 4;
const WIDTH = 1280;
const HEIGHT = 800;
const XRGB = 0x20020888;
/** A console socket with more than this queued is not written to (QEMU would stall, not queue). */
const MAX_QUEUED = 2 * WIDTH * HEIGHT * 4;

const now = (): number => performance.timeOrigin + performance.now();
const emit = (o: Record<string, unknown>): void => void process.stdout.write(JSON.stringify(o) + '\n');

interface Fake {
  peer: FakeQemuPeer;
  updates: boolean;
  /** the input voice is enabled (greet() enables it; the `mic` command toggles it) */
  recording: boolean;
  /** a Read is in flight (QEMU's main loop waits for its answer) */
  reading: boolean;
}

const busAddress = process.argv[2];
const fakes = new Map<number, Fake>();
const voice = 0x5611deadbeefn;
const block = Buffer.alloc(BLOCK_FRAMES * BYTES_PER_FRAME);
for (let i = 0; i < block.length; i += 2) block.writeInt16LE(Math.round(8000 * Math.sin((i / 4) * 0.0576)), i);
const update = marshalledUpdate(WIDTH, HEIGHT);
let writes = 0;
let reads = 0;
/** Reads answered with fewer bytes than asked (the bridge had less captured audio) */
let shortReads = 0;
let updatesSent = 0;
let skipped = 0;
/** the audio clock sends Writes (off: the voices stay enabled and nothing is sent) */
let writing = true;

function live(f: Fake, kind: FakeListenerPeer['kind']): FakeListenerPeer[] {
  return f.peer.listeners.filter((l) => l.kind === kind && l.registered && !l.closed);
}

async function start(i: number, name: string, camera: boolean): Promise<void> {
  const peer = await FakeQemuPeer.start({ busAddress, name, flavour: '10.1', width: camera ? WIDTH : 640, height: camera ? HEIGHT : 480 });
  const f: Fake = { peer, updates: false, recording: true, reading: false };
  peer.onListener = async (l) => {
    emit({ ev: 'listener', i, kind: l.kind, t: now() });
    if (l.kind === 'console') {
      // The copy path (no Unix.Map), whatever the bridge offers: Scanout carries the pixels.
      const stride = peer.width * 4;
      await l.call('Scanout', 'uuuuay', [peer.width, peer.height, stride, XRGB, Buffer.alloc(stride * peer.height, 0x40)]);
    } else await peer.greet(l);
  };
  fakes.set(i, f);
  emit({ ev: 'up', i, t: now(), unique: peer.uniqueName });
}

async function stop(i: number): Promise<void> {
  const f = fakes.get(i);
  if (!f) throw new Error(`no fake ${i}`);
  fakes.delete(i);
  await f.peer.stop();
  emit({ ev: 'down', i, t: now() });
}

/** Audio at real time: every 10 ms tick sends the blocks that became due since the last one. */
function audioClock(): void {
  const t0 = performance.now();
  let sentBlocks = 0;
  setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * (RATE / BLOCK_FRAMES));
    // After a long stall (a loaded machine) do not burst more than 10 blocks: QEMU drops, too.
    const n = Math.min(due - sentBlocks, 10);
    sentBlocks = due;
    for (let k = 0; writing && k < n; k++) {
      for (const f of fakes.values()) {
        for (const l of live(f, 'audio-out')) {
          l.call('Write', 'tay', [voice, block]).catch(() => undefined);
          writes++;
        }
      }
    }
    if (n > 0) for (const f of fakes.values()) if (f.recording && !f.reading) void record(f, n);
  }, 10);
}

/** QEMU's audio_run_in for one enabled input voice: Read the blocks that became due, one call at a time. */
async function record(f: Fake, blocks: number): Promise<void> {
  f.reading = true;
  try {
    for (let k = 0; k < blocks; k++) {
      for (const l of live(f, 'audio-in')) {
        const got = (await l.call('Read', 'tt', [voice, BigInt(block.length)], { reply: true })) as [Uint8Array] | Uint8Array | undefined;
        const data = Array.isArray(got) ? got[0] : got;
        reads++;
        if (!data || data.length < block.length) shortReads++;
      }
    }
  } catch {
    // The listener went away mid-Read (a VM stop): QEMU drops the voice's listener too.
  } finally {
    f.reading = false;
  }
}

/** 30 full-frame Updates a second to each console listener of a fake with updates on. */
function videoClock(): void {
  const t0 = performance.now();
  let sent = 0;
  setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * 30);
    if (due <= sent) return;
    sent = due;
    for (const f of fakes.values()) {
      if (!f.updates) continue;
      for (const l of live(f, 'console')) {
        if (l.stream.writableLength > MAX_QUEUED) {
          skipped++;
          continue;
        }
        l.stream.write(update);
        updatesSent++;
      }
    }
  }, 5);
}

async function handle(line: string): Promise<void> {
  const c = JSON.parse(line) as { cmd: string; i: number; name: string; camera?: boolean; on?: boolean };
  switch (c.cmd) {
    case 'start':
      return start(c.i, c.name, c.camera === true);
    case 'stop':
      return stop(c.i);
    case 'updates': {
      const f = fakes.get(c.i);
      if (!f) throw new Error(`no fake ${c.i}`);
      f.updates = c.on === true;
      emit({ ev: 'updates', i: c.i, on: f.updates });
      return;
    }
    case 'mic': {
      // The guest starts or stops recording: QEMU's SetEnabled on the input voice (greet() enabled it).
      const calls = [...fakes.values()].flatMap((f) => {
        f.recording = c.on === true;
        return live(f, 'audio-in').map((l) => l.call('SetEnabled', 'tb', [voice, c.on === true]));
      });
      await Promise.all(calls);
      emit({ ev: 'mic', on: c.on === true, voices: calls.length });
      return;
    }
    case 'writes':
      writing = c.on === true;
      emit({ ev: 'writes', on: writing });
      return;
    case 'stats':
      emit({ ev: 'stats', writes, reads, shortReads, updates: updatesSent, skipped });
      return;
    default:
      throw new Error(`unknown command ${c.cmd}`);
  }
}

audioClock();
videoClock();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  handle(line).catch((e: unknown) => emit({ ev: 'error', message: (e as Error).stack ?? String(e) }));
});
process.stdin.on('end', () => {
  void Promise.all([...fakes.keys()].map((i) => stop(i).catch(() => undefined))).then(() => process.exit(0));
});
