// Read-only look at the QEMUs on a bus for `list` and `doctor`, through systemd's busctl (always
// present where the systemd unit runs). It only reads properties and the object tree; the
// bridge itself talks to QEMU through src/qemu.
import { execFile } from 'child_process';
import * as fs from 'fs';
import { CodedError, errorCode } from '../errors';
import type { ConsoleInfo } from '../qemu';

/** A console as src/qemu describes it (id, type, label, head, size) and the interfaces it serves. */
export interface ConsoleSummary extends ConsoleInfo {
  interfaces: string[];
}

export interface VmSummary {
  /** Unique bus name of the QEMU process (org.qemu moves between queued owners). */
  owner: string;
  name: string;
  uuid: string;
  consoles: ConsoleSummary[];
  audio: boolean;
  clipboard: boolean;
  chardevs: string[];
  /** What this QEMU offers, read from properties and introspection (never from a version string). */
  features: QemuFeatures;
}

export interface QemuFeatures {
  /** VM.Interfaces exists (8.1+) */
  interfaces: boolean;
  /** org.qemu.Display1.MultiTouch on the first console (8.1+) */
  multiTouch: boolean;
  /** Audio.NSamples (10.0+): frames per audio block; null = fixed 1024 */
  audioNSamples: number | null;
}

function busctl(address: string, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('busctl', [`--address=${address}`, '--json=short', '--timeout=3', ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException;
        const said = String(stderr).trim().split('\n')[0] || e.message;
        if (e.code === 'ENOENT') reject(new CodedError('EBUSCTL', 'busctl is not installed', 'install the Debian package systemd', { cause: err }));
        // busctl says so only in words: classified here, once, into a code the callers check
        else if (/NameHasNoOwner|could not get owners|has no owner/i.test(said)) reject(new CodedError('ENOOWNER', `${address}: ${said}`, '', { cause: err }));
        else reject(new CodedError('EBUS', `${address}: ${said}`, '', { cause: err }));
        return;
      }
      resolve(String(stdout));
    });
  });
}

function jsonLines(out: string): { type: string; data: unknown }[] {
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { type: string; data: unknown });
}

export function sessionAddress(address: string | undefined, env: NodeJS.ProcessEnv): string {
  const a = address ?? env.DBUS_SESSION_BUS_ADDRESS;
  if (!a) throw new CodedError('ENOBUS', 'no session bus (DBUS_SESSION_BUS_ADDRESS is unset)', 'pass --address');
  return a;
}

async function interfacesOf(address: string, owner: string, objPath: string): Promise<string[]> {
  const out = await busctl(address, ['introspect', '--xml-interface', owner, objPath]).catch(() => '');
  // --xml-interface prints XML even with --json.
  return [...out.matchAll(/<interface name="([^"]+)"/g)].map((m) => m[1]).filter((i) => i.startsWith('org.qemu.'));
}

/** The first call failed: the same classification (and codes) as the bridge's own connect. */
async function unreachable(address: string, err: unknown): Promise<Error> {
  const { busFailure, connectFailure, unixPathOf } = await import('../qemu');
  let socket: string;
  try {
    socket = unixPathOf(address);
  } catch (e) {
    return e as Error;
  }
  if (!fs.existsSync(socket)) return busFailure(address, connectFailure(socket, { code: 'ENOENT' }), 'connect');
  return busFailure(address, err, 'handshake');
}

/**
 * The VM behind a p2p display (-display dbus,p2p=yes): a QMP socket (attaches for a moment through
 * add_client) or another source of the socket (libvirt's virDomainOpenGraphics).
 */
export async function probeP2p(source: { qmpPath: string } | { p2pSource: { open: (timeoutMs: number) => Promise<number>; where: string } }): Promise<VmSummary> {
  const { QemuVm, consolePath } = await import('../qemu');
  const vm = await QemuVm.connect({ ...source, reattach: false, livenessIntervalMs: 0 });
  const owner = 'qmpPath' in source ? `QMP ${source.qmpPath}` : source.p2pSource.where;
  try {
    const caps = vm.capabilities;
    const consoles: ConsoleSummary[] = [];
    for (const c of await vm.consoleInfos(5000)) consoles.push({ ...c, interfaces: caps.objects[consolePath(c.id)] ?? [] });
    const features: QemuFeatures = { interfaces: caps.interfacesProperty, multiTouch: caps.multiTouch, audioNSamples: caps.audioNSamples };
    return { owner, name: vm.info.name, uuid: vm.info.uuid, features, consoles, audio: caps.audio, clipboard: caps.clipboard, chardevs: caps.chardevs };
  } finally {
    await vm.close();
  }
}

export async function probeVms(address: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<VmSummary[]> {
  const addr = sessionAddress(address, env);
  let first: string;
  try {
    first = await busctl(addr, ['call', 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'ListQueuedOwners', 's', 'org.qemu']);
  } catch (err) {
    if (errorCode(err) === 'ENOOWNER') return [];
    throw await unreachable(addr, err);
  }
  const { consoleInfoOf } = await import('../qemu');
  const r = jsonLines(first);
  const owners = (r[0].data as string[][])[0];
  const vms: VmSummary[] = [];
  for (const owner of owners) {
    const props = jsonLines(await busctl(addr, ['get-property', owner, '/org/qemu/Display1/VM', 'org.qemu.Display1.VM', 'Name', 'UUID', 'ConsoleIDs']));
    const [name, uuid, ids] = props.map((p) => p.data) as [string, string, number[]];
    const tree = (await busctl(addr, ['tree', '--list', owner]).catch(() => '')).split('\n').map((l) => l.trim());
    const consoles: ConsoleSummary[] = [];
    for (const id of ids) {
      const p = `/org/qemu/Display1/Console_${id}`;
      const c = jsonLines(await busctl(addr, ['get-property', owner, p, 'org.qemu.Display1.Console', 'Type', 'Label', 'Head', 'Width', 'Height']));
      const [Type, Label, Head, Width, Height] = c.map((x) => x.data);
      consoles.push({ ...consoleInfoOf(id, { Type, Label, Head, Width, Height }), interfaces: await interfacesOf(addr, owner, p) });
    }
    // Properties a QEMU too old to have them answers with an error: absent.
    const prop = async (objPath: string, iface: string, name: string): Promise<unknown> =>
      busctl(addr, ['get-property', owner, objPath, iface, name])
        .then((o) => jsonLines(o)[0]?.data)
        .catch(() => undefined);
    const hasAudio = tree.includes('/org/qemu/Display1/Audio');
    const nsamples = hasAudio ? await prop('/org/qemu/Display1/Audio', 'org.qemu.Display1.Audio', 'NSamples') : undefined;
    const features: QemuFeatures = {
      interfaces: (await prop('/org/qemu/Display1/VM', 'org.qemu.Display1.VM', 'Interfaces')) !== undefined,
      multiTouch: consoles[0]?.interfaces.includes('org.qemu.Display1.MultiTouch') ?? false,
      audioNSamples: typeof nsamples === 'number' ? nsamples : null,
    };
    vms.push({
      owner,
      name,
      uuid,
      features,
      consoles,
      audio: hasAudio,
      clipboard: tree.includes('/org/qemu/Display1/Clipboard'),
      chardevs: tree.filter((t) => t.startsWith('/org/qemu/Display1/Chardev_')).map((t) => t.slice('/org/qemu/Display1/Chardev_'.length)),
    });
  }
  return vms;
}
