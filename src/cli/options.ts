// Flag definitions shared by `run` and `demo`. No yargs defaults on config-backed flags: a flag
// that was not typed must stay undefined so the config file can supply the value (the defaults
// are shown with defaultDescription and applied by the schema).
import type { Argv } from 'yargs';
import { CAMERA_DEFAULTS } from '../camera/options';
import { GRAB_TOGGLE_PRESETS } from '../config/schema';

export const GLOBAL_GROUP = 'Global:';
const CONN = 'Connection:';
const AUDIO = 'Audio:';
const CAMERA = 'Camera:';
const INPUT = 'Input:';

export function withLogOptions<T>(y: Argv<T>) {
  return y
    .option('log-format', { type: 'string', group: GLOBAL_GROUP, describe: 'log lines as text or json', defaultDescription: 'text' })
    .option('log-level', { type: 'string', group: GLOBAL_GROUP, describe: 'error, warn, info or debug', defaultDescription: 'info' });
}

export function withConnectionOptions<T>(y: Argv<T>) {
  return y
    .option('address', { type: 'string', group: CONN, describe: 'D-Bus address of the bus QEMU is on', defaultDescription: 'the session bus' })
    .option('vm', { type: 'string', group: CONN, describe: 'VM name or UUID (needed when several VMs share the bus)' })
    .option('qmp', { type: 'string', group: CONN, describe: 'QMP socket of a VM started with -display dbus,p2p=yes (no bus)' })
    .option('libvirt', { type: 'string', group: CONN, describe: 'libvirt domain name or UUID: libvirt says where its display is, after every VM start' })
    .option('libvirt-uri', {
      type: 'string',
      group: CONN,
      describe: 'libvirt connection URI',
      defaultDescription: '$LIBVIRT_DEFAULT_URI, else qemu:///session (qemu:///system as root)',
    });
}

export function withRouteOptions<T>(y: Argv<T>) {
  return y
    .option('config', { type: 'string', group: GLOBAL_GROUP, describe: 'TOML config file', defaultDescription: '$XDG_CONFIG_HOME/qemu-dbus-bridge/<vm>.toml' })
    .option('audio', { type: 'string', group: AUDIO, describe: 'sound server: pipewire, pulse or none', defaultDescription: 'auto' })
    .option('audio-sink', { type: 'string', group: AUDIO, describe: 'where guest audio plays (node name)', defaultDescription: 'default sink' })
    .option('audio-source', { type: 'string', group: AUDIO, describe: 'what the guest microphone hears (node name)', defaultDescription: 'default source' })
    .option('audio-latency', { type: 'string', group: AUDIO, describe: 'speaker latency in ms: prebuffer this much plus one QEMU block (overrides the measured default)', defaultDescription: 'follows QEMU\'s block and the measured lateness' })
    .option('camera', { type: 'string', group: CAMERA, describe: 'screen-as-webcam target: auto (the first v4l2loopback device, else pipewire), /dev/videoN (v4l2loopback), pipewire, pipewire:NODE-NAME, file:/path (raw frames) or none. One webcam per console: [[camera]] entries in the config file (README)', defaultDescription: CAMERA_DEFAULTS.device })
    .option('camera-size', { type: 'string', group: CAMERA, describe: 'webcam frame size WxH', defaultDescription: CAMERA_DEFAULTS.size })
    .option('camera-fps', { type: 'string', group: CAMERA, describe: 'webcam frame rate', defaultDescription: String(CAMERA_DEFAULTS.fps) })
    .option('camera-pin-resolution', { type: 'boolean', group: CAMERA, describe: 'ask the guest to render at the webcam size (Console.SetUIInfo; virtio-vga/virtio-gpu only)' })
    .option('camera-format', { type: 'string', group: CAMERA, describe: 'pixel format for v4l2loopback/file: YUY2, I420 or NV12', defaultDescription: CAMERA_DEFAULTS.format })
    .option('camera-cursor', { type: 'boolean', group: CAMERA, describe: "draw the guest's mouse pointer into the picture (--no-camera-cursor: don't)", defaultDescription: String(CAMERA_DEFAULTS.cursor) })
    .option('camera-console', { type: 'string', group: CAMERA, describe: 'which console of the VM the webcam shows (a number from `list`)', defaultDescription: 'the first graphic console' })
    .option('input', { type: 'string', group: INPUT, describe: 'device to forward (repeatable): /dev/input/by-id/…, name:REGEX, id:VVVV:PPPP, all-keyboards, all-mice' })
    .option('input-replay', { type: 'string', group: INPUT, describe: 'replay a file/FIFO of input_event records into the VM (repeatable)' })
    .option('grab-toggle', { type: 'string', group: INPUT, describe: `hotkey that toggles the grab: ${GRAB_TOGGLE_PRESETS.join(', ')} or "KEY_A+KEY_B"`, defaultDescription: 'ctrl-ctrl' })
    .option('grab-next', { type: 'string', group: INPUT, describe: 'hotkey that hands the devices on to the next bridge on the session bus (host -> VMs by --ring-order, then name -> host); same syntax as --grab-toggle', defaultDescription: 'none' })
    .option('ring-order', { type: 'string', group: INPUT, describe: "this VM's place in the --grab-next ring: lowest first, VM name among equals (every bridge reads the others' from the session bus)", defaultDescription: '0' })
    .option('input-console', { type: 'string', group: INPUT, describe: 'which console of the VM gets the keyboard and mouse; absolute positions are scaled to its size (a number from `list`)', defaultDescription: 'the first graphic console' })
    .option('grab', { type: 'boolean', group: INPUT, describe: 'grab input devices exclusively (--no-grab: share them with the host)', defaultDescription: 'true' });
}

/** `run` only: how the systemd unit names the VM (src/cli/systemd-instance.ts). */
export function withSystemdInstanceOption<T>(y: Argv<T>) {
  return y.option('systemd-instance', {
    type: 'string',
    group: CONN,
    describe: "the VM name as a systemd instance name (the unit passes --systemd-instance=%i): \\xNN escapes decoded, '-' kept",
  });
}

/** Every long flag (for "did you mean" on an unknown one). */
export const ALL_FLAGS = [
  'help', 'version', 'log-format', 'log-level', 'address', 'vm', 'qmp', 'libvirt', 'libvirt-uri', 'config', 'audio', 'audio-sink', 'audio-source',
  'audio-latency', 'camera', 'camera-size', 'camera-fps', 'camera-pin-resolution', 'input', 'input-replay', 'grab-toggle', 'grab-next',
  'grab', 'no-grab', 'json', 'duration', 'camera-format', 'camera-cursor', 'no-camera-cursor', 'dir', 'bin', 'systemd-instance', 'camera-console', 'input-console', 'ring-order',
];
