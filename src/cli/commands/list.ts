// `list`: the VMs on a bus with their consoles (number, type, size, device label, head: the number
// --camera-console / --input-console take), audio and capabilities.
import { sessionAddress, probeP2p, probeVms, type VmSummary } from '../qemu-probe';
import { ConfigFlags, validateFlags } from '../../config/load';
import type { CliIo } from '../main';

export async function listCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  validateFlags(argv as ConfigFlags);
  // --libvirt: the domain's display wherever libvirt says it is now; --qmp: the one VM behind
  // that socket (bus-less); otherwise the VMs on a bus.
  const qmp = argv.qmp as string | undefined;
  let address: string;
  let vms: VmSummary[];
  if (argv.libvirt) {
    const found = await libvirtVms(argv.libvirt as string, argv.libvirtUri as string | undefined, io.env);
    if (typeof found === 'string') {
      io.out(found);
      return 0;
    }
    ({ address, vms } = found);
  } else {
    address = qmp ? `QMP socket ${qmp}` : sessionAddress(argv.address as string | undefined, io.env);
    vms = qmp ? [await probeP2p({ qmpPath: qmp })] : await probeVms(address, io.env);
  }
  if (argv.json) {
    io.out(JSON.stringify(vms, null, 2));
    return 0;
  }
  if (vms.length === 0) {
    io.out(`no QEMU with -display dbus on ${address}`);
    return 0;
  }
  for (const vm of vms) {
    io.out(`${vm.name}  ${vm.uuid}  (${vm.owner})`);
    for (const c of vm.consoles) {
      const caps = c.interfaces.map((i) => i.replace('org.qemu.Display1.', '')).filter((i) => i !== 'Console');
      io.out(`  console ${c.id}: ${c.type} ${c.width}x${c.height}${c.label ? ` "${c.label}"` : ''} head ${c.head}${caps.length ? `  [${caps.join(', ')}]` : ''}`);
    }
    io.out(`  audio: ${vm.audio ? 'yes' : 'no (add audiodev= to -display dbus)'}  clipboard: ${vm.clipboard ? 'yes' : 'no'}${vm.chardevs.length ? `  chardevs: ${vm.chardevs.join(', ')}` : ''}`);
  }
  return 0;
}

/** The VM of a libvirt domain, or a line saying it is not running. */
async function libvirtVms(key: string, uriFlag: string | undefined, env: NodeJS.ProcessEnv): Promise<{ address: string; vms: VmSummary[] } | string> {
  const { LibvirtClient, locateDisplay, assertMayUseBus, defaultLibvirtUri } = require('../../libvirt') as typeof import('../../libvirt');
  const uri = uriFlag ?? defaultLibvirtUri(env);
  const client = new LibvirtClient(uri);
  try {
    const target = await locateDisplay(client, key);
    if (target.kind === 'stopped') return `libvirt domain '${target.domain.name}' at ${uri} is not running`;
    if (target.kind === 'bus') {
      assertMayUseBus(target, uri);
      return { address: target.address, vms: await probeVms(target.address, env) };
    }
    const where = `libvirt domain '${target.domain.name}' (virDomainOpenGraphics)`;
    return { address: where, vms: [await probeP2p({ p2pSource: { open: () => client.openGraphics(target.domain.uuid, target.index), where } })] };
  } finally {
    await client.close();
  }
}
