// org.qemu.Display1.Audio at /org/qemu/Display1/Audio: exists only when QEMU runs with
// `-display dbus,audiodev=ID` and `-audiodev dbus,id=ID`.
import { AudioProxy } from './generated/display1';
import { RemoteObject, type QemuLink } from './remote-object';

export const AUDIO_PATH = '/org/qemu/Display1/Audio';

export class QemuAudio {
  readonly proxy: AudioProxy;
  constructor(link: QemuLink) {
    this.proxy = new AudioProxy(new RemoteObject(link, AUDIO_PATH));
  }
}
