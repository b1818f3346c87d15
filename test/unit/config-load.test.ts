// Where the config comes from and who wins: defaults <- <vm>.toml in $XDG_CONFIG_HOME <- flags,
// merged key by key; --config names the file explicitly; UUIDs select by uuid.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { configPathFor, resolveConfig } from '../../src/config/load';
import { connectOptions } from '../../src/service/attach';
import { cameraEntries, type BridgeConfig } from '../../src/config/schema';
import { enabledRoutes } from '../../src/service/routes';
import { tempDir } from '../harness/procs';

/** The one camera of a config without [[camera]] entries. */
const camera = (config: BridgeConfig) => cameraEntries(config)[0].settings;

function cfgHome(files: Record<string, string>): NodeJS.ProcessEnv {
  const home = tempDir('cfg');
  fs.mkdirSync(path.join(home, 'qemu-dbus-bridge'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(home, 'qemu-dbus-bridge', name), text);
  return { XDG_CONFIG_HOME: home, HOME: '/nonexistent' };
}

describe('config loading', () => {
  it('uses $XDG_CONFIG_HOME/qemu-dbus-bridge/<vm>.toml, else ~/.config', () => {
    expect(configPathFor('win11', { XDG_CONFIG_HOME: '/x' })).toBe('/x/qemu-dbus-bridge/win11.toml');
    expect(configPathFor('win11', { HOME: '/home/a' })).toBe('/home/a/.config/qemu-dbus-bridge/win11.toml');
    // a relative XDG_CONFIG_HOME is invalid per the spec and ignored
    expect(configPathFor('win11', { XDG_CONFIG_HOME: 'rel', HOME: '/home/a' })).toBe('/home/a/.config/qemu-dbus-bridge/win11.toml');
  });

  it('defaults when there is no file', () => {
    const { config, file } = resolveConfig({ vm: 'none-here' }, cfgHome({}));
    expect(file).toBeUndefined();
    expect(config.audio).toEqual({ backend: 'auto', sink: '', source: '', microphone: true }); // no latency_ms: prebuffer.ts decides
    expect(config.camera).toMatchObject({ device: 'auto', size: '1280x720', fps: 30, pin_resolution: false });
    expect(config.input).toEqual({ devices: [], replay: [], grab: true, grab_toggle: 'ctrl-ctrl', grab_next: 'none', ring_order: 0 });
    expect(enabledRoutes(config)).toEqual(['audio-out', 'audio-in', 'camera']);
  });

  it('flags override the file key by key; untouched keys keep the file value', () => {
    const env = cfgHome({ 'win11.toml': '[audio]\nsink = "speakers"\nlatency_ms = 40\n[camera]\nfps = 15\n[input]\ndevices = ["all-keyboards"]\n' });
    const { config, file } = resolveConfig({ vm: 'win11', audioLatency: '25', cameraSize: '640x480' }, env);
    expect(file).toBe(path.join(env.XDG_CONFIG_HOME!, 'qemu-dbus-bridge', 'win11.toml'));
    expect(config.audio.sink).toBe('speakers');
    expect(config.audio.latency_ms).toBe(25);
    expect(config.camera).toMatchObject({ fps: 15, size: '640x480' });
    expect(config.input.devices).toEqual(['all-keyboards']);
    expect(enabledRoutes(config)).toEqual(['audio-out', 'audio-in', 'camera', 'input']);
  });

  it('--config wins over the per-VM file, and --input replaces the file list', () => {
    const env = cfgHome({ 'win11.toml': '[camera]\nfps = 15\n' });
    const other = path.join(env.XDG_CONFIG_HOME!, 'other.toml');
    fs.writeFileSync(other, '[camera]\nfps = 60\n[input]\ndevices = ["all-mice"]\n');
    const { config, file } = resolveConfig({ vm: 'win11', config: other, input: ['all-keyboards', 'name:^Logi'] }, env);
    expect(file).toBe(other);
    expect(camera(config).fps).toBe(60);
    expect(config.input.devices).toEqual(['all-keyboards', 'name:^Logi']);
  });

  it('[camera] console and [input] console: unset by default, set from the file, overridden by --camera-console / --input-console', () => {
    expect(camera(resolveConfig({ vm: 'none-here' }, cfgHome({})).config).console).toBeUndefined();
    const env = cfgHome({ 'heads.toml': '[camera]\nconsole = 1\n[input]\nconsole = 1\n' });
    const fromFile = resolveConfig({ vm: 'heads' }, env).config;
    expect([camera(fromFile).console, fromFile.input.console]).toEqual([1, 1]);
    const flags = resolveConfig({ vm: 'heads', cameraConsole: '0', inputConsole: '2' }, env).config;
    expect([camera(flags).console, flags.input.console]).toEqual([0, 2]);
  });

  it('[input] ring_order: 0 by default, set from the file, overridden by --ring-order, negative allowed', () => {
    const env = cfgHome({ 'win.toml': '[input]\nring_order = 2\n' });
    expect(resolveConfig({ vm: 'win' }, env).config.input.ring_order).toBe(2);
    expect(resolveConfig({ vm: 'win', ringOrder: '-3' }, env).config.input.ring_order).toBe(-3);
  });

  it('[input] ring_order that is not a whole number in -1000..1000 is refused, naming the key and what it takes', () => {
    for (const bad of ['1.5', '1001', 'first']) {
      expect(() => resolveConfig({ vm: 'win', ringOrder: bad }, cfgHome({}))).toThrow(/--ring-order.*whole number from -1000 to 1000/);
    }
  });

  it('--audio none and --camera none switch routes off', () => {
    const { config } = resolveConfig({ audio: 'none', camera: 'none' }, cfgHome({}));
    expect(enabledRoutes(config)).toEqual([]);
    const mic = resolveConfig({ vm: 'a' }, cfgHome({ 'a.toml': '[audio]\nmicrophone = false\n' })).config;
    expect(enabledRoutes(mic)).toEqual(['audio-out', 'camera']);
  });

  it('--vm with a UUID selects by uuid, a name by name; --qmp goes bus-less', () => {
    const byUuid = resolveConfig({ vm: '7B0C3C52-51C9-4C55-9A39-5A4B7D3E0A11' }, cfgHome({})).config;
    expect(connectOptions(byUuid)).toEqual({ busAddress: undefined, uuid: '7b0c3c52-51c9-4c55-9a39-5a4b7d3e0a11' });
    const byName = resolveConfig({ vm: 'win11', address: 'unix:path=/run/x' }, cfgHome({})).config;
    expect(connectOptions(byName)).toEqual({ busAddress: 'unix:path=/run/x', name: 'win11' });
    const p2p = resolveConfig({ qmp: '/run/user/1000/vm.qmp' }, cfgHome({})).config;
    expect(connectOptions(p2p)).toEqual({ qmpPath: '/run/user/1000/vm.qmp' });
  });
});
