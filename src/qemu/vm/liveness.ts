// Is the attached QEMU alive, gone, or stuck? A property read (VM.Name), not Ping: GDBus answers
// Ping from its worker thread even while QEMU's main loop is blocked, and the main loop is what
// serves our listeners. Read once after a listener EOF, and while attached whenever QEMU has sent
// nothing for `intervalMs`: the calls QEMU makes to our listeners (audio Writes and Reads from its
// audio timer, console Updates from the display refresh) are queued by its main loop, so each one
// already says the main loop ran when it was sent, and a read then would prove nothing new (it
// cost a D-Bus round trip a second per VM). When QEMU stops (SIGSTOP, a blocked main loop, a
// paused VM) its calls stop, and the read comes `intervalMs` after the last one: a stuck QEMU is
// reported `intervalMs + timeoutMs` after it last showed life, the latest it was before.
import { errorCode } from '../../errors';
import { RemoteObject, type QemuLink } from '../remote-object';
import { VM_IFACE, VM_PATH } from '../vm-object';

/** 'ok' | 'gone' (no owner / connection closed) | 'stuck' (no reply in time) */
export type Probe = 'ok' | 'gone' | 'stuck';

export async function probeVm(link: QemuLink, timeoutMs: number): Promise<Probe> {
  try {
    await new RemoteObject(link, VM_PATH).getProperty(VM_IFACE, 'Name', timeoutMs);
    return 'ok';
  } catch (e) {
    return errorCode(e) === 'ENO_REPLY' ? 'stuck' : 'gone';
  }
}

export interface LivenessEvents {
  /** the first read that timed out after answers (reported once until it answers again) */
  unresponsive(timeoutMs: number): void;
  /** answering again after unresponsive() */
  responsive(): void;
  gone(): void;
}

export class Liveness {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private busy = false;
  private unresponsive = false;

  constructor(
    private readonly opts: { intervalMs: number; timeoutMs: number },
    private readonly probe: () => Promise<Probe>,
    /** reads only count while this holds */
    private readonly watching: () => boolean,
    private readonly events: LivenessEvents,
    /** ms since QEMU's main loop last sent us something (Infinity: nothing yet) */
    private readonly quietMs: () => number = () => Infinity,
  ) {}

  /** 0 or less: no periodic reads. */
  start(): void {
    if (this.opts.intervalMs <= 0 || this.running) return;
    this.running = true;
    this.arm(this.opts.intervalMs);
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The VM went away: a later QEMU starts responsive. */
  reset(): void {
    this.unresponsive = false;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.tick(), ms);
    this.timer.unref();
  }

  /**
   * One wakeup per `intervalMs` at most. While QEMU is heard from, the next look is due
   * `intervalMs` after the last call heard, and nothing is read; an unresponsive QEMU is read
   * every `intervalMs` until it answers (only an answer says it is responsive again).
   */
  private tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const quiet = this.quietMs();
    if (!this.unresponsive && quiet < this.opts.intervalMs) return this.arm(this.opts.intervalMs - quiet);
    this.arm(this.opts.intervalMs);
    if (!this.busy && this.watching()) void this.read();
  }

  private async read(): Promise<void> {
    this.busy = true;
    try {
      const r = await this.probe();
      if (!this.watching()) return;
      if (r === 'stuck' && !this.unresponsive) {
        this.unresponsive = true;
        this.events.unresponsive(this.opts.timeoutMs);
      } else if (r === 'ok' && this.unresponsive) {
        this.unresponsive = false;
        this.events.responsive();
      } else if (r === 'gone') {
        this.events.gone();
      }
    } finally {
      this.busy = false;
    }
  }
}
