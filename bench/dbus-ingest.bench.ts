// How fast the p2p listener (src/qemu/peer-listener.ts, the code QEMU's Scanout/Update calls
// land in) ingests display calls, against a raw read of the SAME bytes over the same kind of
// socket in the same run.
//
// A worker thread plays QEMU: it answers our SASL handshake as the auth server, then writes
// pre-marshalled Listener.Update calls (NO_REPLY_EXPECTED, exactly QEMU's wire format) flat out.
// The baseline sends the identical byte stream to a plain net.Socket reader that only counts.
//   8 MB rows: 1920x1080x4 Update bodies, MB/s; ratio = listener / raw (1.0 = as fast as reading).
//   4 KB rows: 32x32x4 Updates, calls/s; the raw baseline is expressed in calls/s of the same size.
import * as net from 'net';
import { Worker } from 'worker_threads';
import { socketpair } from '../src/native';
import { consoleListenerOptions } from '../src/qemu/console-listener';
import type { ConsoleListenerHandler } from '../src/qemu/handlers';
import { PeerListener } from '../src/qemu/peer-listener';
import { marshalledUpdate } from '../test/fakes/qemu-peer';
import type { BenchContext, BenchRow } from './lib';


/** The QEMU side, as inline worker code: optional server handshake, then a write loop. */
const SENDER = `
const { workerData, parentPort } = require('worker_threads');
const net = require('net');
const { fd, message, count, handshake } = workerData;
const msg = Buffer.from(message);
const s = new net.Socket({ fd, readable: true, writable: true });
let sent = 0;
function blast() {
  parentPort.postMessage('start');
  const pump = () => {
    while (sent < count) {
      sent++;
      if (!s.write(msg)) return s.once('drain', pump);
    }
    s.end();
  };
  pump();
}
if (!handshake) blast();
else {
  let buf = '';
  const onData = (d) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\\r\\n')) >= 0) {
      const line = buf.slice(0, i).replace(/^\\0/, '');
      buf = buf.slice(i + 2);
      if (line.startsWith('AUTH')) s.write('OK 0123456789abcdef0123456789abcdef\\r\\n');
      else if (line.startsWith('NEGOTIATE_UNIX_FD')) s.write('ERROR\\r\\n');
      else if (line.startsWith('BEGIN')) { s.removeListener('data', onData); s.pause(); blast(); return; }
    }
  };
  s.on('data', onData);
}
s.on('error', () => {});
s.on('close', () => parentPort.postMessage('closed'));
`;

function startSender(fd: number, message: Buffer, count: number, handshake: boolean): { started: Promise<number>; worker: Worker } {
  const worker = new Worker(SENDER, { eval: true, workerData: { fd, message, count, handshake } });
  const started = new Promise<number>((resolve, reject) => {
    worker.on('message', (m) => {
      if (m === 'start') resolve(performance.now());
    });
    worker.on('error', reject);
  });
  return { started, worker };
}

/** Raw baseline: read `total` bytes and discard them. Returns seconds from the sender's start. */
async function rawRead(message: Buffer, count: number): Promise<number> {
  const [mine, theirs] = socketpair();
  const sock = new net.Socket({ fd: mine, readable: true, writable: true });
  const total = message.length * count;
  let got = 0;
  const { started, worker } = startSender(theirs, message, count, false);
  const done = new Promise<number>((resolve) => {
    sock.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= total) resolve(performance.now());
    });
  });
  const [t0, t1] = await Promise.all([started, done]);
  sock.destroy();
  await worker.terminate();
  return (t1 - t0) / 1000;
}

/** The listener under test: PeerListener + the console listener interfaces, a handler that counts. */
async function listenerRead(message: Buffer, count: number, fds = false): Promise<number> {
  const [mine, theirs] = socketpair();
  let calls = 0;
  let finished: (t: number) => void = () => undefined;
  const done = new Promise<number>((r) => (finished = r));
  const handler: ConsoleListenerHandler = {
    scanout() {},
    update() {
      if (++calls === count) finished(performance.now());
    },
    disable() {},
    cursorDefine() {},
    mouseSet() {},
  };
  const listener = new PeerListener(mine, consoleListenerOptions(handler, { fds }));
  const { started, worker } = startSender(theirs, message, count, true);
  // A lost call would otherwise leave nothing pending and the process would just exit.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`listener handled ${calls} of ${count} calls in 120 s`)), 120_000);
  });
  const [t0, t1] = await Promise.race([Promise.all([started, done]), deadline]).finally(() => clearTimeout(timer));
  if (listener.stats.rejected) throw new Error(`listener rejected ${listener.stats.rejected} calls`);
  listener.close();
  await worker.terminate();
  return (t1 - t0) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const rounds = 3;

  const big = marshalledUpdate(1920, 1080);
  const bigCount = Math.max(20, Math.round(120 * ctx.durationScale));
  const bigMB = (big.length * bigCount) / 1e6;
  const rawBig: number[] = [];
  const lisBig: number[] = [];
  for (let i = 0; i < rounds; i++) {
    rawBig.push(bigMB / (await rawRead(big, bigCount)));
    lisBig.push(bigMB / (await listenerRead(big, bigCount)));
    ctx.log(`8 MB round ${i + 1}: raw ${rawBig[i].toFixed(0)} MB/s, listener ${lisBig[i].toFixed(0)} MB/s`);
  }
  rows.push({
    name: `8 MB Update ingest (${bigCount} x ${big.length} B)`,
    value: median(lisBig),
    unit: 'MB/s',
    baseline: { name: 'raw net.Socket read of the same bytes', value: median(rawBig) },
    better: 'higher',
    note: `median of ${rounds}; ${(1000 / median(lisBig) * (big.length / 1e6)).toFixed(2)} ms per 1080p frame through the listener`,
  });

  // The same through usocket: what a Listener.Unix.Map-capable handler gets (fd passing).
  const usBig: number[] = [];
  for (let i = 0; i < rounds; i++) usBig.push(bigMB / (await listenerRead(big, bigCount, true)));
  ctx.log(`8 MB over usocket: ${usBig.map((v) => v.toFixed(0)).join(', ')} MB/s`);
  rows.push({
    name: '8 MB Update ingest, fd-capable listener (usocket)',
    value: median(usBig),
    unit: 'MB/s',
    baseline: { name: 'raw net.Socket read of the same bytes', value: median(rawBig) },
    better: 'higher',
    note: `median of ${rounds}; only used when the handler implements scanoutMap (QEMU 9.2+ then sends no pixels at all)`,
  });

  const small = marshalledUpdate(32, 32);
  const smallCount = Math.max(20_000, Math.round(150_000 * ctx.durationScale));
  const rawSmall: number[] = [];
  const lisSmall: number[] = [];
  for (let i = 0; i < rounds; i++) {
    rawSmall.push(smallCount / (await rawRead(small, smallCount)));
    lisSmall.push(smallCount / (await listenerRead(small, smallCount)));
    ctx.log(`4 KB round ${i + 1}: raw ${rawSmall[i].toFixed(0)} msg/s, listener ${lisSmall[i].toFixed(0)} calls/s`);
  }
  rows.push({
    name: `4 KB Update calls (${smallCount} x ${small.length} B)`,
    value: median(lisSmall),
    unit: 'calls/s',
    baseline: { name: 'raw read of the same bytes, in messages/s', value: median(rawSmall) },
    better: 'higher',
    note: `median of ${rounds}; ${(1e6 / median(lisSmall)).toFixed(1)} us per call through the listener`,
  });
  return rows;
}
