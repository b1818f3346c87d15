// `devices`: what can go into --input, --audio-sink/--audio-source and --camera.
import { AudioNode, audioInventory, inputDevices, loopbackDevices, realHost } from '../host';
import { ConfigFlags, validateFlags } from '../../config/load';
import type { CliIo } from '../main';

export async function devicesCommand(argv: Record<string, unknown>, io: CliIo): Promise<number> {
  validateFlags(argv as ConfigFlags);
  const host = realHost(io.env);
  const input = inputDevices(host);
  const audio = await audioInventory(host);
  const video = loopbackDevices(host);
  if (argv.json) {
    io.out(JSON.stringify({ input, audio, video }, null, 2));
    return 0;
  }
  io.out('Input devices (--input):');
  if (input.length === 0) io.out('  none (no /dev/input/event* on this host)');
  for (const d of input) {
    io.out(`  ${d.kind.padEnd(8)} ${d.name}`);
    io.out(`           ${d.byId ?? d.node}${d.readable ? '' : '  (not readable: see `qemu-dbus-bridge doctor`)'}`);
  }
  const show = (title: string, nodes: AudioNode[]): void => {
    io.out(title);
    if (nodes.length === 0) io.out('  none');
    for (const n of nodes) io.out(`  ${n.name}${n.description ? `  (${n.description})` : ''}`);
  };
  io.out('');
  if (audio.pipewire.reachable) {
    show('PipeWire sinks (--audio-sink):', audio.pipewire.nodes.filter((n) => n.direction === 'sink'));
    show('PipeWire sources (--audio-source):', audio.pipewire.nodes.filter((n) => n.direction === 'source'));
  } else io.out(`PipeWire: not reachable (${audio.pipewire.error ?? 'unknown'})`);
  io.out('');
  if (audio.pulse.reachable) {
    const via = audio.pulse.serverName ? ` [${audio.pulse.serverName}]` : '';
    show(`PulseAudio sinks${via} (--audio pulse --audio-sink):`, audio.pulse.nodes.filter((n) => n.direction === 'sink'));
    show(`PulseAudio sources${via} (--audio pulse --audio-source):`, audio.pulse.nodes.filter((n) => n.direction === 'source'));
  } else io.out(`PulseAudio: not reachable (${audio.pulse.error ?? 'unknown'})`);
  io.out('');
  io.out('v4l2loopback webcams (--camera):');
  if (video.length === 0) io.out('  none (module not loaded: see `qemu-dbus-bridge doctor`); --camera pipewire works without it');
  for (const v of video) io.out(`  ${v.node}  (${v.name})`);
  return 0;
}
