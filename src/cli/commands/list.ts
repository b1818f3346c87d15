// `list`: the VMs on a bus with their consoles, audio and capabilities.
import { sessionAddress, probeP2p, probeVms } from '../qemu-probe';
import { ConfigFlags, validateFlags } from '../../config/load';
import type { CliIo } from '../main';

export async function listCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  validateFlags(argv as ConfigFlags);
  // --qmp: the one VM behind that socket (bus-less); otherwise the VMs on a bus.
  const qmp = argv.qmp as string | undefined;
  const address = qmp ? `QMP socket ${qmp}` : sessionAddress(argv.address as string | undefined, io.env);
  const vms = qmp ? [await probeP2p(qmp)] : await probeVms(address, io.env);
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
      io.out(`  console ${c.id}: ${c.type} ${c.width}x${c.height}${c.label ? ` "${c.label}"` : ''}${caps.length ? `  [${caps.join(', ')}]` : ''}`);
    }
    io.out(`  audio: ${vm.audio ? 'yes' : 'no (add audiodev= to -display dbus)'}  clipboard: ${vm.clipboard ? 'yes' : 'no'}${vm.chardevs.length ? `  chardevs: ${vm.chardevs.join(', ')}` : ''}`);
  }
  return 0;
}
