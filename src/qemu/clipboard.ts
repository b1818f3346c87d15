// org.qemu.Display1.Clipboard (bus calls only; serving the client side of the clipboard is not
// implemented in this layer yet).
import { ClipboardProxy } from './generated/display1';
import type { RemoteObject } from './remote-object';

export const CLIPBOARD_PATH = '/org/qemu/Display1/Clipboard';
export const CLIPBOARD_MIME = 'text/plain;charset=utf-8';
export const ClipboardSelection = { Clipboard: 0, Primary: 1, Secondary: 2 } as const;

export class Clipboard {
  readonly proxy: ClipboardProxy;
  constructor(object: RemoteObject) {
    this.proxy = new ClipboardProxy(object);
  }
}
