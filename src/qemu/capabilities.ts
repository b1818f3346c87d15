// What this QEMU can do, read from the objects and interfaces it exports and from its
// `Interfaces`/`NSamples` properties — never from a version string (distributions backport).
import { plainDict, RemoteObject, type QemuLink } from './remote-object';

export interface Capabilities {
  /** consoles listed by VM.ConsoleIDs */
  consoleIds: number[];
  /** VM.Interfaces exists (8.1+; its value is always empty) */
  interfacesProperty: boolean;
  /** Console_0.Interfaces (8.1+), e.g. Keyboard, Mouse, MultiTouch */
  consoleInterfaces: string[];
  /** org.qemu.Display1.MultiTouch on Console_0 (8.1+) */
  multiTouch: boolean;
  /**
   * QEMU reads the listener's `Interfaces` property, so offering Listener.Unix.Map is
   * meaningful (QEMU 9.2+ uses it; 8.1–9.1 ignore it harmlessly). Whether shared memory is
   * really used shows at run time: the console listener's `usedUnixMap`.
   */
  unixMap: boolean;
  /** same negotiation for Listener.Unix.ScanoutDMABUF2 (10.1+); only relevant with gl=on */
  scanoutDmabuf2: boolean;
  /** /org/qemu/Display1/Audio exists (needs -display dbus,audiodev=ID) */
  audio: boolean;
  /** Audio.NSamples (10.0+): frames per Write/Read block; null = fixed 1024 (7.2..9.2) */
  audioNSamples: number | null;
  clipboard: boolean;
  /** ids of /org/qemu/Display1/Chardev_<id> objects */
  chardevs: string[];
  /** bus-less p2p main connection on a QEMU without the 8.0 fix: audio listeners must not be registered */
  p2pAudioBroken: boolean;
  /** every object path and its interfaces, as QEMU reported them */
  objects: Record<string, string[]>;
}

const ROOT = '/org/qemu/Display1';

/** One GetManagedObjects round trip describes the whole tree (objects, interfaces, properties). */
export async function detectCapabilities(link: QemuLink, opts: { p2p: boolean; timeoutMs?: number }): Promise<Capabilities> {
  const root = new RemoteObject(link, ROOT);
  const managed = await root.call<unknown>('org.freedesktop.DBus.ObjectManager', 'GetManagedObjects', '', [], { timeoutMs: opts.timeoutMs });
  const objects: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [path, ifaces] of Object.entries(plainDict(managed))) {
    const m: Record<string, Record<string, unknown>> = {};
    for (const [iface, props] of Object.entries(plainDict(ifaces))) m[iface] = plainDict(props);
    objects[path] = m;
  }
  const vm = objects[`${ROOT}/VM`]?.['org.qemu.Display1.VM'] ?? {};
  const consoleIds = Array.isArray(vm.ConsoleIDs) ? (vm.ConsoleIDs as number[]) : [];
  const console0 = objects[`${ROOT}/Console_${consoleIds[0] ?? 0}`] ?? {};
  const consoleProps = console0['org.qemu.Display1.Console'] ?? {};
  const audio = objects[`${ROOT}/Audio`]?.['org.qemu.Display1.Audio'];
  const interfacesProperty = Object.hasOwn(vm, 'Interfaces');
  const listenerNegotiation = Object.hasOwn(consoleProps, 'Interfaces');
  return {
    consoleIds,
    interfacesProperty,
    consoleInterfaces: Array.isArray(consoleProps.Interfaces) ? (consoleProps.Interfaces as string[]) : [],
    multiTouch: Object.hasOwn(console0, 'org.qemu.Display1.MultiTouch'),
    unixMap: listenerNegotiation,
    scanoutDmabuf2: listenerNegotiation,
    audio: audio !== undefined,
    audioNSamples: audio && typeof audio.NSamples === 'number' ? audio.NSamples : null,
    clipboard: Object.hasOwn(objects[`${ROOT}/Clipboard`] ?? {}, 'org.qemu.Display1.Clipboard'),
    chardevs: Object.keys(objects)
      .filter((p) => p.startsWith(`${ROOT}/Chardev_`))
      .map((p) => p.slice(`${ROOT}/Chardev_`.length)),
    // 7.2 keys its per-sender audio listener table by the sender name, which is NULL on a
    // p2p main connection (fixed in 8.0). No marker exists for 8.0 itself, so we treat "no
    // Interfaces property" (< 8.1) as broken: refusing is safe, trying may crash QEMU.
    p2pAudioBroken: opts.p2p && !interfacesProperty,
    objects: Object.fromEntries(Object.entries(objects).map(([p, i]) => [p, Object.keys(i)])),
  };
}
