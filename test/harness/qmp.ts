// A tiny QMP client (QEMU Machine Protocol: one JSON object per line on a unix socket).
// It runs over usocket so that commands can carry file descriptors (SCM_RIGHTS), which QMP `getfd`
// needs and Node's own net sockets cannot send.
import { USocket } from '../../src/qemu/usocket';
import { markCloexec } from '../../src/qemu/transport';

export class QmpError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly qmpClass?: string,
  ) {
    super(message);
  }
}

interface Pending {
  cmd: string;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** One QMP connection, after capabilities negotiation. QEMU serves one client per QMP socket at a time: close() it. */
export class QmpSession {
  /** Asynchronous events (`{event, data, timestamp}`) seen on this connection. */
  readonly events: Array<Record<string, unknown>> = [];
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private greeting?: (v: unknown) => void;

  private constructor(
    private readonly sock: USocket,
    private readonly path: string,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('close', () => this.failAll(new QmpError(`qmp ${path}: connection closed`, 'EQMPCLOSED')));
    sock.on('error', (err: Error) => this.failAll(new QmpError(`qmp ${path}: ${err.message}`, 'EQMPIO')));
    sock.on('end', () => this.failAll(new QmpError(`qmp ${path}: connection closed by QEMU`, 'EQMPCLOSED')));
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpSession> {
    const sock = await new Promise<USocket>((resolve, reject) => {
      const s = new USocket({ path });
      const onError = (err: Error) => reject(new QmpError(`qmp ${path}: cannot connect: ${err.message}`, 'EQMPCONNECT'));
      s.once('error', onError);
      s.once('connected', () => {
        s.removeListener('error', onError);
        // usocket opens without close-on-exec: QEMUs started later would inherit this monitor.
        if (typeof s.fd === 'number') markCloexec(s.fd);
        resolve(s);
      });
    });
    const session = new QmpSession(sock, path);
    try {
      await withTimeout(
        new Promise((resolve) => {
          session.greeting = resolve;
        }),
        timeoutMs,
        `qmp ${path}: no greeting`,
      );
      await session.execute('qmp_capabilities', undefined, undefined, timeoutMs);
    } catch (err) {
      session.close();
      throw err;
    }
    return session;
  }

  /** Runs one command; resolves with its `return` value, rejects with QEMU's error description. */
  execute(cmd: string, args?: Record<string, unknown>, fds?: number[], timeoutMs = 10_000): Promise<unknown> {
    if (this.closed) return Promise.reject(new QmpError(`qmp ${this.path}: session closed`, 'EQMPCLOSED'));
    const id = `qdb-${this.nextId++}`;
    const line = Buffer.from(JSON.stringify(args ? { execute: cmd, arguments: args, id } : { execute: cmd, id }) + '\n');
    const reply = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { cmd, resolve, reject });
    });
    // The fds travel with the command's bytes in one sendmsg(); QEMU attaches them to this command.
    this.sock.write(fds && fds.length > 0 ? { data: line, fds } : line);
    return withTimeout(reply, timeoutMs, `qmp ${this.path}: no reply to ${cmd}`).finally(() => this.pending.delete(id));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.destroy();
    this.failAll(new QmpError(`qmp ${this.path}: session closed`, 'EQMPCLOSED'));
  }

  private onData(chunk: Buffer): void {
    this.buf += chunk.toString('utf8');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('QMP' in msg) {
      this.greeting?.(msg);
      return;
    }
    if ('event' in msg) {
      this.events.push(msg);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const p = id ? this.pending.get(id) : undefined;
    if (!p) return;
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new QmpError(`qmp ${p.cmd}: ${e.desc ?? 'error'} (${e.class ?? '?'})`, 'EQMPCOMMAND', e.class));
    } else {
      p.resolve(msg.return);
    }
  }

  private failAll(err: Error): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QmpError(`${what} within ${ms} ms`, 'ETIMEDOUT')), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
