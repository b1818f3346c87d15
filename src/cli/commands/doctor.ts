// `doctor`: every prerequisite, one line each, and for each failure the command that fixes it.
// Exit 0 when nothing failed (warnings allowed), 1 otherwise.
import * as fs from 'fs';
import * as path from 'path';
import { type Host, audioInventory, inputDevices, realHost, v4l2loopbackModule } from '../host';
import { ConfigFlags, validateFlags } from '../../config/load';
import { errorProblem } from '../../errors';
import type { CliIo } from '../main';
import { VmSummary, probeVms } from '../qemu-probe';

export type CheckState = 'ok' | 'warn' | 'fail';
export interface Check {
  name: string;
  state: CheckState;
  detail: string;
  fix?: string;
}

export async function soundCheck(host: Host): Promise<Check> {
  const inv = await audioInventory(host);
  if (inv.pipewire.reachable) {
    const n = inv.pipewire.nodes.length;
    return { name: 'sound server', state: 'ok', detail: `PipeWire reachable (${n} audio node${n === 1 ? '' : 's'})` };
  }
  if (inv.pulse.reachable) return { name: 'sound server', state: 'ok', detail: `PulseAudio reachable (${inv.pulse.serverName ?? 'server'})` };
  return {
    name: 'sound server',
    state: 'fail',
    detail: `neither PipeWire (${inv.pipewire.error}) nor PulseAudio (${inv.pulse.error}) is reachable`,
    fix: 'systemctl --user start pipewire wireplumber pipewire-pulse   (or: pulseaudio --start); or run with --audio none',
  };
}

export function cameraCheck(host: Host): Check {
  const mod = v4l2loopbackModule(host);
  const fix =
    "sudo modprobe v4l2loopback devices=1 video_nr=10 exclusive_caps=1 card_label='VM camera'  " +
    "(persist: echo 'options v4l2loopback video_nr=10 exclusive_caps=1' | sudo tee /etc/modprobe.d/v4l2loopback.conf); or use --camera pipewire";
  if (!mod.loaded) return { name: 'v4l2loopback', state: 'warn', detail: 'module not loaded (only --camera pipewire will work)', fix };
  if (!mod.exclusiveCaps.some((c) => c === 'Y' || c === '1'))
    return {
      name: 'v4l2loopback',
      state: 'fail',
      detail: `loaded without exclusive_caps=1 (${mod.exclusiveCaps.join(',') || 'unset'}): browsers will not list the webcam`,
      fix: 'sudo modprobe -r v4l2loopback && ' + fix,
    };
  return { name: 'v4l2loopback', state: 'ok', detail: `loaded, exclusive_caps=${mod.exclusiveCaps.join(',')}` };
}

export function inputCheck(host: Host): Check {
  const devs = inputDevices(host);
  const user = host.env.USER ?? '$USER';
  if (devs.length === 0)
    return { name: '/dev/input access', state: 'warn', detail: 'no /dev/input/event* devices on this host (only --input-replay will work)' };
  const unreadable = devs.filter((d) => !d.readable);
  if (unreadable.length === devs.length)
    return {
      name: '/dev/input access',
      state: 'fail',
      detail: `none of ${devs.length} input devices is readable by this user`,
      fix: `sudo usermod -aG input ${user} (then log in again), or a udev rule: SUBSYSTEM=="input", KERNEL=="event*", ATTRS{name}=="<device name>", TAG+="uaccess"`,
    };
  const kinds = devs.filter((d) => d.readable).map((d) => d.kind);
  return {
    name: '/dev/input access',
    state: unreadable.length ? 'warn' : 'ok',
    detail: `${devs.length - unreadable.length}/${devs.length} readable (${kinds.filter((k) => k === 'keyboard').length} keyboards, ${kinds.filter((k) => k === 'mouse').length} mice)`,
  };
}

/** The QEMU versions the project's tests run against (test/harness/qemu-targets.ts). */
export const TESTED_QEMU = ['7.2', '10.0'] as const;

/** What a VM's QEMU offers, one readable phrase per feature, with the version that brought it. */
export function describeFeatures(vm: VmSummary): string {
  const f = vm.features;
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  return [
    `Interfaces (8.1+): ${yes(f.interfaces)}`,
    `p2p audio (8.0+): ${f.interfaces ? 'yes' : 'not known fixed (refused over --qmp)'}`,
    `MultiTouch (8.1+): ${yes(f.multiTouch)}`,
    `shared-memory scanouts, Listener.Unix.Map (9.2+): ${f.interfaces ? 'offered by the bridge, used if this QEMU knows it' : 'no'}`,
    `audio block: ${f.audioNSamples ?? 1024} frames${f.audioNSamples === null ? ' (fixed before 10.0)' : ' (Audio.NSamples, 10.0+)'}`,
  ].join('; ');
}

/**
 * QEMU loads -display dbus and -audiodev dbus from modules; distributions ship them in different
 * packages (Debian 13 and bookworm-backports' QEMU 10 split them into qemu-system-modules-opengl).
 * Checked where QEMU's module directory is on this host; absent directory = nothing to say.
 */
export function qemuModulesCheck(host: Host): Check {
  const dirs = [host.env.QEMU_MODULE_DIR, '/usr/lib/x86_64-linux-gnu/qemu', '/usr/lib64/qemu', '/usr/lib/qemu'].filter((d): d is string => !!d);
  const dir = dirs.find((d) => fs.existsSync(path.join(host.root, d)));
  if (!dir) return { name: 'QEMU D-Bus modules', state: 'ok', detail: 'no QEMU module directory on this host (QEMU built without modules, or running elsewhere)' };
  const missing = ['ui-dbus.so', 'audio-dbus.so'].filter((m) => !fs.existsSync(path.join(host.root, dir, m)));
  if (missing.length === 0) return { name: 'QEMU D-Bus modules', state: 'ok', detail: `ui-dbus.so and audio-dbus.so in ${dir}` };
  return {
    name: 'QEMU D-Bus modules',
    state: 'fail',
    detail: `${missing.join(' and ')} missing from ${dir}: -display dbus / -audiodev dbus will not start`,
    fix:
      'Debian 13 or bookworm-backports (QEMU 10): sudo apt-get install qemu-system-modules-opengl; Debian 12 (QEMU 7.2): sudo apt-get install qemu-system-common; ' +
      'Fedora: sudo dnf install qemu-ui-dbus qemu-audio-dbus; Arch: sudo pacman -S qemu-ui-dbus qemu-audio-dbus',
  };
}

export function qemuChecks(vms: VmSummary[] | Error, address: string, wanted?: string): Check[] {
  const startHint = '-display dbus,audiodev=snd0 -audiodev dbus,id=snd0  (libvirt: <graphics type="dbus"/> and <audio type="dbus"/>)';
  if (vms instanceof Error)
    return [{ name: 'QEMU on the bus', state: 'fail', detail: `cannot read ${address}: ${vms.message}`, fix: 'check --address (libvirt: the VM\'s dbus socket), or start the session bus' }];
  const matching = wanted ? vms.filter((v) => v.name === wanted || v.uuid === wanted) : vms;
  if (matching.length === 0)
    return [
      {
        name: 'QEMU on the bus',
        state: 'fail',
        detail: wanted ? `no VM '${wanted}' on ${address} (found: ${vms.map((v) => v.name).join(', ') || 'none'})` : `no QEMU with -display dbus on ${address}`,
        fix: `start QEMU with ${startHint}`,
      },
    ];
  const out: Check[] = [];
  for (const vm of matching) {
    out.push({ name: `VM '${vm.name}'`, state: 'ok', detail: `reachable, ${vm.consoles.length} console(s)` });
    out.push({ name: `VM '${vm.name}' QEMU features`, state: 'ok', detail: `${describeFeatures(vm)} (tested: QEMU ${TESTED_QEMU.join(' and ')})` });
    out.push(
      vm.audio
        ? { name: `VM '${vm.name}' audio`, state: 'ok', detail: 'audio wired to the display (org.qemu.Display1.Audio present)' }
        : {
            name: `VM '${vm.name}' audio`,
            state: 'fail',
            detail: 'no org.qemu.Display1.Audio: the display has no audiodev',
            fix: `add audiodev= to -display: ${startHint}`,
          },
    );
  }
  return out;
}

/**
 * A libvirt domain: its persistent XML (what the next start uses) has what the bridge needs, and
 * when it runs, where its display is and whether this user may use it.
 */
export async function libvirtChecks(key: string, uri: string): Promise<Check[]> {
  const { LibvirtClient, checkDomainDisplay, readDomainXml, locateDisplay, assertMayUseBus } = require('../../libvirt') as typeof import('../../libvirt');
  const client = new LibvirtClient(uri);
  try {
    let domain;
    try {
      domain = await client.domain(key);
    } catch (e) {
      return [{ name: `libvirt domain '${key}'`, state: 'fail', detail: errorProblem(e), fix: (e as { fix?: string }).fix || undefined }];
    }
    const label = `libvirt domain '${domain.name}'`;
    const out: Check[] = [{ name: label, state: 'ok', detail: `${domain.active ? `running (id ${domain.id})` : 'defined, not running'} at ${uri}` }];
    const findings = checkDomainDisplay(readDomainXml(await client.xml(domain.uuid, true)));
    for (const f of findings) out.push({ name: `${label} XML`, state: f.state, detail: f.what, fix: f.add ? `add inside <devices>: ${f.add}   (virsh -c ${uri} edit ${domain.name}; applies at the next start)` : undefined });
    if (domain.active && findings.every((f) => f.state !== 'fail')) {
      try {
        const target = await locateDisplay(client, domain.uuid);
        if (target.kind === 'bus') assertMayUseBus(target, uri);
        out.push({ name: `${label} display`, state: 'ok', detail: target.kind === 'bus' ? `D-Bus display on ${target.address}, usable by this user` : 'p2p display through libvirt (virDomainOpenGraphics)' });
      } catch (e) {
        out.push({ name: `${label} display`, state: 'fail', detail: errorProblem(e), fix: (e as { fix?: string }).fix || undefined });
      }
    }
    return out;
  } finally {
    await client.close();
  }
}

export async function doctorCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  validateFlags(argv as ConfigFlags);
  const host = realHost(io.env);
  const address = (argv.address as string | undefined) ?? io.env.DBUS_SESSION_BUS_ADDRESS ?? '(no session bus)';
  const checks: Check[] = [await soundCheck(host), cameraCheck(host), inputCheck(host), qemuModulesCheck(host)];
  if (argv.libvirt) {
    const { defaultLibvirtUri } = require('../../libvirt') as typeof import('../../libvirt');
    checks.push(...(await libvirtChecks(argv.libvirt as string, (argv.libvirtUri as string | undefined) ?? defaultLibvirtUri(io.env))));
  } else if (argv.qmp) {
    checks.push({ name: 'QEMU (p2p)', state: fs.existsSync(argv.qmp as string) ? 'ok' : 'fail', detail: `QMP socket ${argv.qmp as string}`, fix: 'start QEMU with -display dbus,p2p=yes -qmp unix:PATH,server=on,wait=off' });
  } else {
    const vms = await probeVms(argv.address as string | undefined, io.env).catch((err: Error) => err);
    checks.push(...qemuChecks(vms, address, argv.vm as string | undefined));
  }
  const mark: Record<CheckState, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };
  for (const c of checks) {
    io.out(`[${mark[c.state]}] ${c.name}: ${c.detail}`);
    if (c.fix && c.state !== 'ok') io.out(`       fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => c.state === 'fail').length;
  io.out(failed ? `${failed} problem(s) found` : 'all prerequisites met');
  return failed ? 1 : 0;
}
