// A fake QEMU `-display dbus` peer on a real bus, for what QEMU 7.2 cannot show (8.1+/9.2+
// interfaces, Listener.Unix.Map with a memfd) and for fault injection (malformed calls, a peer
// that stops answering, a peer that vanishes). Built on dbus-native like the code under test,
// but sharing none of src/qemu's listener code: it plays QEMU's side (auth SERVER on the p2p
// socket, GetAll at registration, then the calls QEMU makes).
import * as dbus from 'dbus-native';
import * as fs from 'fs';
import * as path from 'path';
import { USocket } from '../../src/qemu/usocket';
import type { AudioOutHandler, PcmFormat } from '../../src/qemu/handlers';

type FakeFlavour = '7.2' | '10.1';

export interface FakeQemuOptions {
  busAddress: string;
  name: string;
  uuid?: string;
  /** '7.2': what the lab recorded of QEMU 7.2. '10.1': Interfaces properties, MultiTouch, NSamples, Unix.Map. */
  flavour?: FakeFlavour;
  /** export /org/qemu/Display1/Audio (default true) */
  audio?: boolean;
  /** export org.qemu.Display1.VM (default true): false = "unsupported QEMU" */
  vmInterface?: boolean;
  width?: number;
  height?: number;
  /** ms between connecting (Hello) and asking for org.qemu, as a QEMU still starting up takes (default 0) */
  requestNameAfterMs?: number;
  /**
   * Graphic consoles (default 1): Console_0 … Console_{heads-1}, the heads of one display device
   * (Label "VGA", Head N), each with its own listeners. Keyboard, Mouse and MultiTouch are on
   * Console_0 only: the extra heads are for the camera side.
   */
  heads?: number;
}

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** read-only D-Bus properties of the given types */
const props = (o: Record<string, string>): Record<string, { type: string; access: 'read' }> => Object.fromEntries(Object.entries(o).map(([k, t]) => [k, { type: t, access: 'read' as const }]));

const { marshall } = require('dbus-native/lib/message') as { marshall: (m: dbus.Message) => Buffer };

/**
 * A full-frame Listener.Update of width x height XRGB pixels as QEMU writes it on the listener
 * socket (NO_REPLY_EXPECTED, like every display call), marshalled once: for senders that write
 * the same bytes many times (benchmarks) without marshalling each one.
 */
export function marshalledUpdate(width: number, height: number): Buffer {
  return marshall({
    type: 1,
    flags: 1,
    serial: 7,
    path: '/org/qemu/Display1/Listener',
    interface: 'org.qemu.Display1.Listener',
    member: 'Update',
    signature: 'iiiiuuay',
    body: [0, 0, width, height, width * 4, 0x20020888, Buffer.alloc(width * height * 4, 0x5a)],
  });
}

function fdTransport(us: USocket): dbus.ConnectionOptions['stream'] {
  const t = us as unknown as { writeWithFds: (b: Buffer, fds: number[]) => boolean; closeFds: (f: number[]) => void };
  t.writeWithFds = (b, fds) => {
    us.write({ data: b, fds });
    return true;
  };
  t.closeFds = (fds) => fds.forEach((fd) => fs.closeSync(fd));
  return us as unknown as dbus.ConnectionOptions['stream'];
}

async function connectUs(socketPath: string): Promise<USocket> {
  const us = new USocket({ path: socketPath });
  await new Promise<void>((resolve, reject) => {
    us.once('connected', () => resolve());
    us.once('error', reject);
  });
  return us;
}

/** QEMU's side of one listener p2p connection. */
export class FakeListenerPeer {
  /** Interfaces the client listed in GetAll (8.1+ QEMU reads them once). */
  interfaces: string[] = [];
  getAllReply: Record<string, unknown> = {};
  /** set once QEMU's GetAll at registration has been answered (the listener is usable) */
  registered = false;
  /** calls that could not be sent (a Write on a closed socket...): tests assert this stays empty */
  readonly sendErrors: string[] = [];
  closed = false;
  readonly ready: Promise<void>;

  constructor(
    readonly kind: 'console' | 'audio-out' | 'audio-in',
    readonly conn: dbus.MessageBus,
    readonly stream: USocket,
    readonly path: string,
    readonly iface: string,
    /** the N of the Console_N it was registered on (0 for audio listeners) */
    readonly console = 0,
  ) {
    conn.connection.on('error', () => undefined);
    const done = (): void => {
      this.closed = true;
    };
    conn.connection.on('end', done);
    conn.connection.on('close', done);
    this.ready = new Promise((resolve, reject) => {
      conn.connection.once('connect', () => resolve());
      conn.connection.once('error', reject);
    });
  }

  /** A call the way QEMU makes it: NO_REPLY_EXPECTED unless `reply`. Resolves with the reply body. */
  call(member: string, signature: string, body: unknown[], opts: { reply?: boolean; fds?: number[]; iface?: string; path?: string; timeoutMs?: number } = {}): Promise<unknown> {
    const msg: dbus.Message = { path: opts.path ?? this.path, interface: opts.iface ?? this.iface, member };
    if (signature) {
      msg.signature = signature;
      msg.body = body;
    }
    if (opts.fds) msg.fds = opts.fds;
    if (!opts.reply) msg.flags = 1;
    return this.conn.invoke(msg, { timeout: opts.timeoutMs ?? 5000 }) as unknown as Promise<unknown>;
  }

  /**
   * QEMU 7.2's side of an AudioOutListener as an AudioOutHandler: every method is the D-Bus call
   * QEMU makes (NO_REPLY_EXPECTED, QEMU's signatures), so anything that drives a handler (e.g.
   * feedTone, pacing Writes on QEMU's clock) drives the bridge's listener over the p2p socket.
   */
  audioOut(): AudioOutHandler {
    if (this.kind !== 'audio-out') throw new Error(`audioOut(): this is a ${this.kind} listener`);
    const send = (member: string, sig: string, body: unknown[]): void => {
      this.call(member, sig, body).catch((err: Error) => this.sendErrors.push(`${member}: ${err.message}`));
    };
    return {
      init: (id: bigint, f: PcmFormat) => send('Init', 'tybbuyuub', [id, f.bits, f.isSigned, f.isFloat, f.freq, f.nchannels, f.bytesPerFrame, f.bytesPerSecond, f.bigEndian]),
      setEnabled: (id: bigint, on: boolean) => send('SetEnabled', 'tb', [id, on]),
      setVolume: (id: bigint, mute: boolean, volume: Uint8Array) => send('SetVolume', 'tbay', [id, mute, Buffer.from(volume)]),
      // Copied: callers reuse their block buffer, the message must carry this block's bytes.
      write: (id: bigint, data: Uint8Array) => send('Write', 'tay', [id, Buffer.from(data)]),
      fini: (id: bigint) => send('Fini', 't', [id]),
    };
  }

  close(): void {
    if (this.closed) return;
    this.stream.destroy();
    this.closed = true;
    // usocket's destroy() emits nothing: tell our own bookkeeping (QEMU's 'closed' signal).
    this.conn.connection.emit('close');
  }
}

export class FakeQemuPeer {
  readonly flavour: FakeFlavour;
  uniqueName = '';
  bus!: dbus.MessageBus;
  private us!: USocket;
  readonly listeners: FakeListenerPeer[] = [];
  readonly keys: ['press' | 'release', number][] = [];
  readonly buttons: ['press' | 'release', number][] = [];
  /** Mouse.SetAbsPosition / Mouse.RelMotion calls, in order */
  readonly absPositions: [number, number][] = [];
  readonly relMotions: [number, number][] = [];
  /** what the guest pointer really is; IsAbsolute keeps saying true (7.2's stale property) */
  mouseAbsolute = true;
  readonly touches: [number, bigint, number, number][] = [];
  /** set when a client sent a mouse button QEMU would assert on: a real QEMU would be dead now */
  aborted: string | undefined;
  /** Console.SetUIInfo calls: [console, widthMm, heightMm, xoff, yoff, width, height] */
  readonly uiInfos: [number, number, number, number, number, number, number][] = [];
  /**
   * Called after each SetUIInfo was recorded (default: nothing, like a device that ignores the
   * hint); a test plays the guest that re-renders at that size (a Scanout to that console).
   */
  onSetUIInfo: (console: number, width: number, height: number) => void = () => undefined;
  /** 7.2's "already registered" answers given so far */
  alreadyRegisteredRejections = 0;
  /** Console RegisterListener calls received so far (answered or held) */
  registerCalls = 0;
  /** while set, Console RegisterListener answers only once this settles (see holdRegistrations) */
  private registrationGate: Promise<void> | undefined;
  private frozen = false;
  private frozenQueue: [string, unknown[]][] = [];
  private readonly shmFiles: string[] = [];
  /** called after each listener handshake; default sends the first frame like QEMU does */
  onListener: (l: FakeListenerPeer) => Promise<void>;

  private constructor(readonly opts: FakeQemuOptions) {
    this.flavour = opts.flavour ?? '7.2';
    this.onListener = (l) => this.greet(l);
  }

  static async start(opts: FakeQemuOptions): Promise<FakeQemuPeer> {
    const p = new FakeQemuPeer(opts);
    await p.connect();
    return p;
  }

  get width(): number {
    return this.opts.width ?? 640;
  }
  get height(): number {
    return this.opts.height ?? 480;
  }

  private async connect(): Promise<void> {
    const socketPath = /unix:path=([^,;]+)/.exec(this.opts.busAddress)![1];
    this.us = await connectUs(socketPath);
    this.bus = dbus.createClient({ stream: fdTransport(this.us), direct: true });
    this.bus.connection.on('error', () => undefined);
    this.uniqueName = await this.bus.invokeDbus<string>({ member: 'Hello' });
    this.bus.name = this.uniqueName;
    this.installFreezeGate();
    this.export();
    if (this.opts.requestNameAfterMs) await new Promise((r) => setTimeout(r, this.opts.requestNameAfterMs));
    await this.bus.requestName('org.qemu', 0);
  }

  /** While frozen, incoming messages queue like in a QEMU whose main loop is blocked. */
  private installFreezeGate(): void {
    const conn = this.bus.connection as unknown as { emit: (ev: string, ...a: unknown[]) => boolean };
    const orig = conn.emit.bind(conn);
    conn.emit = (ev: string, ...args: unknown[]): boolean => {
      if (ev === 'message' && this.frozen) {
        this.frozenQueue.push([ev, args]);
        return true;
      }
      return orig(ev, ...args);
    };
    this.replay = () => {
      const q = this.frozenQueue;
      this.frozenQueue = [];
      for (const [ev, a] of q) orig(ev, ...a);
    };
  }
  private replay: () => void = () => undefined;

  freeze(): void {
    this.frozen = true;
  }

  /**
   * Hold every Console RegisterListener call (the rest of the bus keeps answering) until the
   * returned function is called: a registration that is in flight for as long as a test needs.
   */
  holdRegistrations(): () => void {
    let release!: () => void;
    this.registrationGate = new Promise<void>((r) => (release = r));
    return () => {
      this.registrationGate = undefined;
      release();
    };
  }
  thaw(): void {
    this.frozen = false;
    this.replay();
  }

  /** Console IDs: one per head */
  get consoleIds(): number[] {
    return Array.from({ length: this.opts.heads ?? 1 }, (_, i) => i);
  }

  private newer(): boolean {
    return this.flavour !== '7.2';
  }

  /** Keyboard.Modifiers: the guest's LED bits (1 scroll, 2 num, 4 caps); see setModifiers(). */
  private modifiers = 0;

  /** The guest changed its keyboard LEDs: the property and its PropertiesChanged, as QEMU sends them. */
  setModifiers(bits: number): void {
    this.modifiers = bits;
    this.bus.emitPropertiesChanged('/org/qemu/Display1/Console_0', 'org.qemu.Display1.Keyboard', { Modifiers: bits });
  }

  private export(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this; // read by the exported Modifiers getter
    const b = this.bus;
    const root = '/org/qemu/Display1';
    b.exportObjectManager(root);
    if (this.opts.vmInterface !== false) {
      b.exportInterface(
        { Name: this.opts.name, UUID: this.opts.uuid ?? ZERO_UUID, ConsoleIDs: this.consoleIds, ...(this.newer() ? { Interfaces: [] } : {}) },
        `${root}/VM`,
        { name: 'org.qemu.Display1.VM', methods: {}, properties: props({ Name: 's', UUID: 's', ConsoleIDs: 'au', ...(this.newer() ? { Interfaces: 'as' } : {}) }) } as dbus.InterfaceDescriptor,
      );
    } else {
      b.exportInterface({ Hello: () => 'hi' }, `${root}/Something`, { name: 'org.example.NotQemu', methods: { Hello: ['', 's', [], []] } } as dbus.InterfaceDescriptor);
    }
    for (const id of this.consoleIds) this.exportConsole(id);
    const c = `${root}/Console_0`;
    b.exportInterface(
      {
        get Modifiers() {
          return self.modifiers;
        },
        Press: (k: number) => {
          this.keys.push(['press', k]);
          return null;
        },
        Release: (k: number) => {
          this.keys.push(['release', k]);
          return null;
        },
      },
      c,
      { name: 'org.qemu.Display1.Keyboard', methods: { Press: ['u', '', [], []], Release: ['u', '', [], []] }, properties: props({ Modifiers: 'u' }) } as dbus.InterfaceDescriptor,
    );
    const button = (kind: 'press' | 'release') => (bt: number) => {
      // QEMU 7.2 asserts on buttons >= INPUT_BUTTON__MAX (9) and dies.
      if (bt >= 9) this.aborted = `mouse button ${bt}`;
      this.buttons.push([kind, bt]);
      return null;
    };
    b.exportInterface(
      {
        IsAbsolute: true,
        Press: button('press'),
        Release: button('release'),
        // QEMU's checks and error names (ui/dbus-console.c): the mode first, then the size.
        SetAbsPosition: (x: number, y: number) => {
          if (!this.mouseAbsolute) throw Object.assign(new Error('Mouse is not absolute'), { dbusName: 'org.qemu.Display1.Error.Invalid' });
          if (x >= this.width || y >= this.height) throw Object.assign(new Error('Invalid mouse position'), { dbusName: 'org.qemu.Display1.Error.Invalid' });
          this.absPositions.push([x, y]);
          return null;
        },
        RelMotion: (dx: number, dy: number) => {
          if (this.mouseAbsolute) throw Object.assign(new Error('Mouse is not relative'), { dbusName: 'org.qemu.Display1.Error.Invalid' });
          this.relMotions.push([dx, dy]);
          return null;
        },
      },
      c,
      {
        name: 'org.qemu.Display1.Mouse',
        methods: { Press: ['u', '', [], []], Release: ['u', '', [], []], SetAbsPosition: ['uu', '', [], []], RelMotion: ['ii', '', [], []] },
        properties: props({ IsAbsolute: 'b' }),
      } as dbus.InterfaceDescriptor,
    );
    if (this.newer()) {
      b.exportInterface(
        {
          MaxSlots: 10,
          SendEvent: (kind: number, slot: bigint, x: number, y: number) => {
            this.touches.push([kind, slot, x, y]);
            return null;
          },
        },
        c,
        { name: 'org.qemu.Display1.MultiTouch', methods: { SendEvent: ['utdd', '', [], []] }, properties: props({ MaxSlots: 'i' }) } as dbus.InterfaceDescriptor,
      );
    }
    if (this.opts.audio !== false) {
      const reg = (kind: 'audio-out' | 'audio-in') => (fdIndex: number, msg: dbus.Message) => {
        const fd = msg.fds![fdIndex];
        const p = kind === 'audio-out' ? ['/org/qemu/Display1/AudioOutListener', 'org.qemu.Display1.AudioOutListener'] : ['/org/qemu/Display1/AudioInListener', 'org.qemu.Display1.AudioInListener'];
        this.acceptListener(kind, fd, p[0], p[1]);
        return null;
      };
      b.exportInterface(
        { RegisterOutListener: reg('audio-out'), RegisterInListener: reg('audio-in'), ...(this.newer() ? { NSamples: 480, Interfaces: [] } : {}) },
        `${root}/Audio`,
        {
          name: 'org.qemu.Display1.Audio',
          methods: { RegisterOutListener: ['h', '', [], []], RegisterInListener: ['h', '', [], []] },
          properties: this.newer() ? props({ NSamples: 'u', Interfaces: 'as' }) : {},
        } as dbus.InterfaceDescriptor,
      );
    }
    b.exportInterface({ Register: () => null, Unregister: () => null }, `${root}/Clipboard`, {
      name: 'org.qemu.Display1.Clipboard',
      methods: { Register: ['', '', [], []], Unregister: ['', '', [], []] },
      properties: {},
    } as dbus.InterfaceDescriptor);
  }

  /** Console_id's Console interface: its own listeners (7.2: one per sender and console). */
  private exportConsole(id: number): void {
    const registered = new Set<string>();
    this.bus.exportInterface(
      {
        Label: 'VGA',
        Head: id,
        Type: 'Graphic',
        Width: this.width,
        Height: this.height,
        DeviceAddress: 'pci/0000/02.0',
        ...(this.newer() ? { Interfaces: id === 0 ? ['org.qemu.Display1.Keyboard', 'org.qemu.Display1.Mouse', 'org.qemu.Display1.MultiTouch'] : [] } : {}),
        RegisterListener: async (fdIndex: number, msg: dbus.Message) => {
          this.registerCalls++;
          if (this.registrationGate) await this.registrationGate;
          const fd = msg.fds![fdIndex];
          const sender = msg.sender ?? '';
          // 7.2: one display listener per sender (until QEMU saw the old socket's EOF).
          if (!this.newer() && registered.has(sender)) {
            fs.closeSync(fd);
            this.alreadyRegisteredRejections++;
            throw Object.assign(new Error(`\`${sender}\` is already registered!`), { dbusName: 'org.qemu.Display1.Error.Invalid' });
          }
          registered.add(sender);
          const l = this.acceptListener('console', fd, '/org/qemu/Display1/Listener', 'org.qemu.Display1.Listener', id);
          const drop = (): void => {
            registered.delete(sender);
          };
          l.conn.connection.on('end', drop);
          l.conn.connection.on('close', drop);
          return null;
        },
        SetUIInfo: (wMm: number, hMm: number, x: number, y: number, w: number, h: number) => {
          this.uiInfos.push([id, wMm, hMm, x, y, w, h]);
          this.onSetUIInfo(id, w, h);
          return null;
        },
      },
      `/org/qemu/Display1/Console_${id}`,
      {
        name: 'org.qemu.Display1.Console',
        methods: { RegisterListener: ['h', '', [], []], SetUIInfo: ['qqiiuu', '', [], []] },
        properties: props({ Label: 's', Head: 'u', Type: 's', Width: 'u', Height: 'u', DeviceAddress: 's', ...(this.newer() ? { Interfaces: 'as' } : {}) }),
      } as dbus.InterfaceDescriptor,
    );
  }

  /** QEMU's side: reply to Register* first (we return), then be the auth SERVER on the fd. */
  private acceptListener(kind: FakeListenerPeer['kind'], fd: number, objPath: string, iface: string, console = 0): FakeListenerPeer {
    const us = new USocket({ fd });
    const conn = dbus.createClient({ stream: fdTransport(us), server: true, direct: true, authMethods: ['EXTERNAL'] } as dbus.ConnectionOptions);
    const l = new FakeListenerPeer(kind, conn, us, objPath, iface, console);
    this.listeners.push(l);
    void l.ready
      .then(async () => {
        // Like GDBusProxy construction: synchronous GetAll right after the handshake.
        const all = (await l.call('GetAll', 's', [iface], { reply: true, iface: 'org.freedesktop.DBus.Properties' })) as Record<string, unknown>;
        l.getAllReply = all ?? {};
        l.interfaces = Array.isArray(all?.Interfaces) ? (all.Interfaces as string[]) : [];
        l.registered = true;
        await this.onListener(l);
      })
      .catch(() => undefined);
    return l;
  }

  /** The newest listener of `kind` whose registration completed (GetAll answered). */
  async waitForListener(kind: FakeListenerPeer['kind'], timeoutMs = 10_000): Promise<FakeListenerPeer> {
    const t0 = Date.now();
    for (;;) {
      const l = [...this.listeners].reverse().find((x) => x.kind === kind && x.registered && !x.closed);
      if (l) return l;
      if (Date.now() - t0 > timeoutMs) throw new Error(`fake QEMU "${this.opts.name}": no ${kind} listener registered within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** What QEMU sends right after a registration. */
  async greet(l: FakeListenerPeer): Promise<void> {
    if (l.kind === 'console') {
      if (this.newer() && l.interfaces.includes('org.qemu.Display1.Listener.Unix.Map')) {
        await this.scanoutMap(l);
      } else {
        const stride = this.width * 4;
        await l.call('Scanout', 'uuuuay', [this.width, this.height, stride, 0x20020888, Buffer.alloc(stride * this.height, 0x40)]);
      }
    } else {
      await l.call('Init', 'tybbuyuub', [0x5611deadbeefn, 16, true, false, 48000, 2, 4, 192000, false]);
      await l.call('SetEnabled', 'tb', [0x5611deadbeefn, true]);
    }
  }

  /** 9.2+: share the surface as a "memfd" (a /dev/shm file here: Node has no memfd_create). */
  async scanoutMap(l: FakeListenerPeer, offset = 0): Promise<void> {
    const stride = this.width * 4;
    const file = path.join('/dev/shm', `fake-qemu-${process.pid}-${this.shmFiles.length}`);
    this.shmFiles.push(file);
    const frame = Buffer.alloc(offset + stride * this.height, 0);
    frame.write('MAPPED-FRAME', offset, 'ascii');
    fs.writeFileSync(file, frame);
    const fd = fs.openSync(file, 'r');
    try {
      // Synchronous in QEMU (1 s); any error makes it fall back to Scanout/Update for good.
      await l.call('ScanoutMap', 'huuuuu', [0, offset, this.width, this.height, stride, 0x20020888], {
        reply: true,
        fds: [fd],
        iface: 'org.qemu.Display1.Listener.Unix.Map',
        timeoutMs: 1000,
      });
      await l.call('UpdateMap', 'iiii', [0, 0, 16, 16], { iface: 'org.qemu.Display1.Listener.Unix.Map' });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** The QEMU process "dies": bus connection and every listener socket close. */
  async stop(): Promise<void> {
    for (const l of this.listeners) l.close();
    this.frozen = false;
    // Like BusConnection.close(): the daemon's answer to our shutdown is awaited a moment, not
    // forever (bus.close() resolves only on 'close'/'end'), so a teardown cannot hang a suite;
    // when it does not come, say so (a suspected cause of a 120 s afterAll hang, never seen since).
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.bus.close().then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2000))),
    ]);
    clearTimeout(timer);
    if (!closed) console.warn(`fake QEMU "${this.opts.name}": its bus connection did not close within 2 s of shutdown; dropped`);
    this.us.destroy();
    for (const f of this.shmFiles) fs.rmSync(f, { force: true });
  }
}
