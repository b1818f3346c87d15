// org.qemu.Display1.Chardev_<id>: Register(h) hands QEMU a raw byte-stream socket (no D-Bus on it).
import { ChardevProxy } from './generated/display1';
import type { RemoteObject } from './remote-object';

export class Chardev {
  readonly proxy: ChardevProxy;
  constructor(
    object: RemoteObject,
    readonly id: string,
  ) {
    this.proxy = new ChardevProxy(object);
  }
}
