// Is the attached QEMU alive, gone, or stuck? A property read (VM.Name), not Ping: GDBus answers
// Ping from its worker thread even while QEMU's main loop is blocked, and the main loop is what
// serves our listeners. Read every `intervalMs` while attached, and once after a listener EOF.
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
  private busy = false;
  private unresponsive = false;

  constructor(
    private readonly opts: { intervalMs: number; timeoutMs: number },
    private readonly probe: () => Promise<Probe>,
    /** reads only count while this holds */
    private readonly watching: () => boolean,
    private readonly events: LivenessEvents,
  ) {}

  /** 0 or less: no periodic reads. */
  start(): void {
    if (this.opts.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The VM went away: a later QEMU starts responsive. */
  reset(): void {
    this.unresponsive = false;
  }

  private async tick(): Promise<void> {
    if (this.busy || !this.watching()) return;
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
