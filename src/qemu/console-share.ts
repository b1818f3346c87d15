// One console listener per console, shared: QEMU 7.2 accepts at most one listener per bus sender
// per console, and two would make QEMU send every frame twice anyway. The share serves QEMU's
// calls to at most one display handler (the camera) and stays registered while anything holds
// it — a display handler or a dead-man's switch.
//
// Dead-man's switch: when a console listener's connection closes, QEMU lifts every key pressed
// through that console's Keyboard (qkbd_state_lift_all_keys on the p2p connection's `closed` signal, QEMU 7.2 ui/dbus-console.c). That is the only
// release the guest gets when this process dies without running its own (SIGKILL, OOM, a crash),
// so the input route holds the console's share for as long as it forwards keys. With no display
// handler the share drops the frames QEMU still sends (their cost is in bench/input-hostile).
import type { ConsoleListenerHandler, CursorImage } from './handlers';
import { closeQuietly } from './transport';

export class ConsoleShare implements ConsoleListenerHandler {
  private display: ConsoleListenerHandler | undefined;
  /** dead-man's switches held on this console */
  holds = 0;
  /** frames and calls that arrived with no display handler (dropped) */
  dropped = 0;
  /** Listener.Unix.Map is offered only when the display handler takes it (options are read at each registration) */
  scanoutMap?: (fd: number, offset: number, width: number, height: number, stride: number, pixmanFormat: number) => void;

  get displayHandler(): ConsoleListenerHandler | undefined {
    return this.display;
  }

  get empty(): boolean {
    return this.display === undefined && this.holds === 0;
  }

  setDisplay(h: ConsoleListenerHandler | undefined): void {
    this.display = h;
    this.scanoutMap = h?.scanoutMap
      ? (fd, offset, w, height, stride, fmt) => {
          // the display handler may have left since this registration offered Unix.Map
          if (this.display?.scanoutMap) this.display.scanoutMap(fd, offset, w, height, stride, fmt);
          else {
            this.dropped++;
            closeQuietly(fd);
          }
        }
      : undefined;
  }

  scanout(width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array): void {
    if (this.display) this.display.scanout(width, height, stride, pixmanFormat, data);
    else this.dropped++;
  }
  update(x: number, y: number, width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array): void {
    if (this.display) this.display.update(x, y, width, height, stride, pixmanFormat, data);
    else this.dropped++;
  }
  updateMap(x: number, y: number, width: number, height: number): void {
    this.display?.updateMap?.(x, y, width, height);
  }
  disable(): void {
    this.display?.disable();
  }
  cursorDefine(cursor: CursorImage): void {
    this.display?.cursorDefine(cursor);
  }
  mouseSet(x: number, y: number, on: boolean): void {
    this.display?.mouseSet(x, y, on);
  }
  scanoutDmabuf(): void {
    this.display?.scanoutDmabuf?.();
  }
  consoleSize(width: number, height: number): void {
    this.display?.consoleSize?.(width, height);
  }
}
