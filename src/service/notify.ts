// sd_notify(3) protocol for Type=notify units: READY=1 once attached, STATUS= on every change,
// WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on shutdown. A no-op outside systemd
// (no NOTIFY_SOCKET). The datagram itself is sent by the addon (src/native.ts sdNotify),
// loaded lazily so `--help` and config errors never need the native build.

export type NotifySend = (text: string) => boolean;

export interface NotifierOptions {
  send?: NotifySend;
  env?: NodeJS.ProcessEnv;
  pid?: number;
}

function nativeSend(text: string): boolean {
  // Deferred require: the addon is loaded only when there is a socket to talk to.
  const { sdNotify } = require('../native') as typeof import('../native');
  return sdNotify(text);
}

export class SystemdNotifier {
  private readonly send: NotifySend;
  private readonly env: NodeJS.ProcessEnv;
  private readonly pid: number;
  private watchdog: NodeJS.Timeout | undefined;
  private lastStatus = '';
  private readyDone = false;

  constructor(opts: NotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.pid = opts.pid ?? process.pid;
    this.send = opts.send ?? ((t) => (this.env.NOTIFY_SOCKET ? nativeSend(t) : false));
  }

  /** Whether systemd asked for notifications at all. */
  get active(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  ready(status?: string): void {
    if (this.readyDone) return;
    this.readyDone = true;
    if (status !== undefined) this.lastStatus = status;
    this.safeSend(status !== undefined ? `READY=1\nSTATUS=${status}` : 'READY=1');
  }

  status(line: string): void {
    if (line === this.lastStatus) return;
    this.lastStatus = line;
    this.safeSend(`STATUS=${line}`);
  }

  stopping(): void {
    this.stopWatchdog();
    this.safeSend('STOPPING=1');
  }

  /** Interval in ms at which WATCHDOG=1 is sent, or undefined when no watchdog is configured. */
  watchdogIntervalMs(): number | undefined {
    const usec = Number.parseInt(this.env.WATCHDOG_USEC ?? '', 10);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    // WATCHDOG_PID names the process systemd expects pings from (absent: us).
    const wpid = this.env.WATCHDOG_PID;
    if (wpid !== undefined && Number.parseInt(wpid, 10) !== this.pid) return undefined;
    return Math.max(1, Math.floor(usec / 1000 / 2));
  }

  startWatchdog(): void {
    const ms = this.watchdogIntervalMs();
    if (ms === undefined || this.watchdog) return;
    this.safeSend('WATCHDOG=1');
    this.watchdog = setInterval(() => this.safeSend('WATCHDOG=1'), ms);
  }

  stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private safeSend(text: string): void {
    try {
      this.send(text);
    } catch {
      // Losing a notification must never take the bridge down; systemd's timeouts cover it.
    }
  }
}
