// Child process for bench/audio-in.bench.ts: plays QEMU's side of one AudioInListener p2p
// connection (auth SERVER on fd 3, GetAll, Init, SetEnabled(true), then Read calls at QEMU's
// cadence) and prints one JSON line with the Read round-trip times it saw. A separate process, so
// the times are what a peer sees, not two halves of one event loop.
//
//   node audio-in-peer.js '{"durationMs":60000,"periodMs":10,"speed":1,"rate":44100}'
import * as dbus from 'dbus-native';
import * as net from 'net';

interface PeerConfig {
  durationMs: number;
  /** QEMU's audio timer period (7.2 default 10 ms) */
  periodMs: number;
  /** 1 = real time (KVM); ~1.37 = what QEMU 7.2 under TCG asked for in the lab */
  speed: number;
  rate: number;
  /**
   * 'raw': no D-Bus at all: each "Read" is an 8-byte size written on the socket, answered with
   * that many bytes. The same-cadence round trip of two processes on this machine: the floor.
   */
  mode?: 'dbus' | 'raw';
}

const PATH = '/org/qemu/Display1/AudioInListener';
const IFACE = 'org.qemu.Display1.AudioInListener';
const VOICE = 0x5611deadbeefn;

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as PeerConfig;
  const stream = new net.Socket({ fd: 3, readable: true, writable: true });
  if (cfg.mode === 'raw') return rawPeer(cfg, stream);
  const conn = dbus.createClient({ stream, server: true, direct: true, authMethods: ['EXTERNAL'] } as dbus.ConnectionOptions);
  conn.connection.on('error', (e: Error) => {
    process.stderr.write(`peer: connection error ${e.message}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    conn.connection.once('connect', () => resolve());
    conn.connection.once('error', reject);
  });
  const call = (member: string, signature: string, body: unknown[], reply: boolean): Promise<unknown> => {
    const msg: dbus.Message = { path: PATH, interface: IFACE, member, signature, body };
    if (!reply) msg.flags = 1;
    return conn.invoke(msg, { timeout: 25_000 }) as unknown as Promise<unknown>;
  };
  await conn.invoke({ path: PATH, interface: 'org.freedesktop.DBus.Properties', member: 'GetAll', signature: 's', body: [IFACE] });
  const bytesPerFrame = 4;
  await call('Init', 'tybbuyuub', [VOICE, 16, true, false, cfg.rate, 2, bytesPerFrame, cfg.rate * bytesPerFrame, false], false);
  await call('SetVolume', 'tbay', [VOICE, false, Buffer.from([255, 255])], false);
  await call('SetEnabled', 'tb', [VOICE, true], false);

  const read = async (size: number): Promise<number> => {
    const reply = (await call('Read', 'tt', [VOICE, BigInt(size)], true)) as Buffer;
    return reply ? reply.length : -1;
  };
  await cadence(cfg, read);
  // No Fini: QEMU sends it only when it exits, and the bench reads the voice's counters after.
  await call('SetEnabled', 'tb', [VOICE, false], false);
  stream.end();
  setTimeout(() => process.exit(0), 100).unref();
}

/** Like QEMU's audio timer: every period, ask for the frames that became due (at `speed`). */
async function cadence(cfg: PeerConfig, read: (size: number) => Promise<number>): Promise<void> {
  const bytesPerFrame = 4;
  const rttUs: number[] = [];
  const sizes: number[] = [];
  let wrongSize = 0;
  const t0 = performance.now();
  let framesAsked = 0;
  let next = t0;
  while (performance.now() - t0 < cfg.durationMs) {
    next += cfg.periodMs;
    const due = Math.floor((((performance.now() - t0) / 1000) * cfg.rate * cfg.speed));
    const frames = Math.min(due - framesAsked, 1024); // 7.2 asks at most 4096 bytes per Read
    if (frames > 0) {
      const size = frames * bytesPerFrame;
      const a = process.hrtime.bigint();
      const got = await read(size);
      const b = process.hrtime.bigint();
      rttUs.push(Number(b - a) / 1000);
      sizes.push(size);
      if (got !== size) wrongSize++;
      framesAsked += frames;
    }
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  process.stdout.write(JSON.stringify({ rttUs, bytes: sizes.reduce((x, y) => x + y, 0), reads: sizes.length, wrongSize, wallMs: performance.now() - t0 }) + '\n');
}

async function rawPeer(cfg: PeerConfig, stream: net.Socket): Promise<void> {
  let want = 0;
  let have = 0;
  let wake: (() => void) | undefined;
  stream.on('data', (d: Buffer) => {
    have += d.length;
    if (have >= want && wake) wake();
  });
  const req = Buffer.alloc(8);
  const read = (size: number): Promise<number> =>
    new Promise((resolve) => {
      want = size;
      have = 0;
      wake = () => {
        wake = undefined;
        resolve(have);
      };
      req.writeBigUInt64LE(BigInt(size));
      stream.write(req);
    });
  await cadence(cfg, read);
  stream.end();
  setTimeout(() => process.exit(0), 100).unref();
}

main().catch((e: unknown) => {
  process.stderr.write(`peer: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
