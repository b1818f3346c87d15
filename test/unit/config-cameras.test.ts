// Several cameras from the config: `[[camera]]` entries (an array of tables), each its own route
// with its own console, target, size and fps; the single `[camera]` table and the --camera* flags
// keep giving one camera as before. What is checked together (console named, no shared target)
// is a ConfigError naming the entries.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { cameraConfigOf, parseCameraDevice, pipewireNodeName } from '../../src/camera';
import { ConfigError } from '../../src/config/errors';
import { resolveConfig } from '../../src/config/load';
import { MAX_CAMERAS, cameraEntries } from '../../src/config/schema';
import { buildRoutes, enabledRoutes } from '../../src/service/routes';
import { CameraRoute } from '../../src/service/routes/camera';
import { cameraDescription, cameraNodeName } from '../../src/stream-identity';
import { tempDir } from '../harness/procs';

/** resolveConfig of `heads.toml` with this text (and these flags). */
function load(toml: string, flags: Record<string, unknown> = {}) {
  const home = tempDir('cams');
  fs.mkdirSync(path.join(home, 'qemu-dbus-bridge'));
  const file = path.join(home, 'qemu-dbus-bridge', 'heads.toml');
  fs.writeFileSync(file, toml);
  return { file, load: () => resolveConfig({ vm: 'heads', audio: 'none', ...flags }, { XDG_CONFIG_HOME: home, HOME: '/nonexistent' }).config };
}

/** The ConfigError's problem, or a failure when none is thrown. */
function problemOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problem;
  }
  throw new Error('expected a ConfigError');
}

const TWO_HEADS = '[[camera]]\nconsole = 0\ndevice = "pipewire"\nsize = "640x480"\nfps = 15\n\n[[camera]]\nconsole = 1\ndevice = "/dev/video11"\n';

describe('[[camera]] entries', () => {
  it('each entry keeps its own console, target, size and fps; keys it leaves out take the defaults', () => {
    const config = load(TWO_HEADS).load();
    expect(cameraEntries(config)).toEqual([
      { index: 0, settings: { console: 0, device: 'pipewire', size: '640x480', fps: 15, format: 'YUY2', pin_resolution: false, cursor: true } },
      { index: 1, settings: { console: 1, device: '/dev/video11', size: '1280x720', fps: 30, format: 'YUY2', pin_resolution: false, cursor: true } },
    ]);
  });

  it('each entry is its own route, camera-N after its position, in the order written', () => {
    expect(enabledRoutes(load(TWO_HEADS).load())).toEqual(['camera-0', 'camera-1']);
  });

  it('an entry with device = "none" is left out; the others keep their positions as names', () => {
    const config = load('[[camera]]\nconsole = 0\ndevice = "none"\n[[camera]]\nconsole = 1\ndevice = "pipewire"\n').load();
    expect(enabledRoutes(config)).toEqual(['camera-1']);
  });

  it('buildRoutes makes one CameraRoute per entry, each with its id', () => {
    const routes = buildRoutes(load(TWO_HEADS).load());
    expect(routes.every((r) => r instanceof CameraRoute)).toBe(true);
    expect(routes.map((r) => [r.name, (r as CameraRoute).id])).toEqual([
      ['camera', 'camera-0'],
      ['camera', 'camera-1'],
    ]);
  });

  it('the single [camera] table is still one route named camera', () => {
    const config = load('[camera]\nconsole = 1\ndevice = "pipewire"\n').load();
    expect(enabledRoutes(config)).toEqual(['camera']);
    expect(cameraEntries(config)).toEqual([{ settings: expect.objectContaining({ console: 1, device: 'pipewire' }) }]);
  });

  it('an entry without a console is a ConfigError naming the entry', () => {
    const t = load('[[camera]]\nconsole = 0\ndevice = "pipewire"\n[[camera]]\ndevice = "/dev/video11"\n');
    expect(problemOf(t.load)).toBe(`${t.file}: camera[1] has no console: each [[camera]] entry names the console it shows (console = N, a number \`qemu-dbus-bridge list\` shows)`);
  });

  it('two entries on one v4l2 device: a ConfigError naming both entries and the device', () => {
    const t = load('[[camera]]\nconsole = 0\ndevice = "/dev/video10"\n[[camera]]\nconsole = 1\ndevice = "/dev/video10"\n');
    expect(problemOf(t.load)).toBe(
      `${t.file}: camera[0] and camera[1] both write to "/dev/video10": give each [[camera]] entry its own device (a /dev/videoN, pipewire:NODE-NAME or file:/path)`,
    );
  });

  it('two default-named PipeWire cameras of one console would share a node name: a ConfigError', () => {
    const t = load('[[camera]]\nconsole = 1\ndevice = "pipewire"\n[[camera]]\nconsole = 1\ndevice = "pipewire"\nsize = "640x480"\n');
    expect(problemOf(t.load)).toContain('camera[0] and camera[1] are both PipeWire cameras of console 1 with the default node name');
  });

  it('two PipeWire cameras of one console with their own node names are fine', () => {
    const config = load('[[camera]]\nconsole = 1\ndevice = "pipewire:big"\n[[camera]]\nconsole = 1\ndevice = "pipewire:small"\nsize = "640x480"\n').load();
    expect(enabledRoutes(config)).toEqual(['camera-0', 'camera-1']);
  });

  it('one PipeWire node name given twice: a ConfigError', () => {
    const t = load('[[camera]]\nconsole = 0\ndevice = "pipewire:cam"\n[[camera]]\nconsole = 1\ndevice = "pipewire:cam"\n');
    expect(problemOf(t.load)).toContain('camera[0] and camera[1] both write to "pipewire:cam"');
  });

  it('two entries left at device = "auto" would pick the same device: a ConfigError', () => {
    const t = load('[[camera]]\nconsole = 0\n[[camera]]\nconsole = 1\n');
    expect(problemOf(t.load)).toContain('camera[0] and camera[1] both have device = "auto", which picks the same device for each');
  });

  it('a bad value in an entry names the entry and the key', () => {
    const t = load('[[camera]]\nconsole = 0\ndevice = "pipewire"\n[[camera]]\nconsole = 1\ndevice = "pipewire"\nsize = "big"\n');
    expect(problemOf(t.load)).toBe(`${t.file}: camera[1].size = "big" is not allowed: expected WIDTHxHEIGHT with even numbers from 48x32 to 8192x8192, e.g. 1280x720`);
  });

  it('an unknown key in an entry names the entry and suggests the key', () => {
    const t = load('[[camera]]\nconsole = 0\ndevice = "pipewire"\nfsp = 10\n');
    expect(problemOf(t.load)).toMatch(new RegExp(`^${t.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: unknown key camera\\[0\\]\\.fsp \\(did you mean camera\\.fps\\?\\); keys of \\[camera\\] are device, size, fps, `));
  });

  it(`more than ${MAX_CAMERAS} entries: a ConfigError saying the limit`, () => {
    const many = Array.from({ length: MAX_CAMERAS + 1 }, (_, i) => `[[camera]]\nconsole = ${i}\ndevice = "pipewire"\n`).join('');
    const t = load(many);
    expect(problemOf(t.load)).toBe(`${t.file}: at most ${MAX_CAMERAS} [[camera]] entries`);
  });

  it('a --camera-size flag over [[camera]] entries is a ConfigError: the flags set one camera', () => {
    const t = load(TWO_HEADS, { cameraSize: '320x240' });
    expect(problemOf(t.load)).toBe(
      `--camera-size sets one camera, but ${t.file} has 2 [[camera]] entries: set the value in each entry instead (only --camera none applies to them all: it turns every camera off)`,
    );
  });

  it('--camera none over [[camera]] entries turns every camera off', () => {
    expect(enabledRoutes(load(TWO_HEADS, { camera: 'none' }).load())).toEqual([]);
  });
});

describe('camera targets of several cameras', () => {
  it('device = "pipewire:NODE" asks for that PipeWire node name', () => {
    expect(parseCameraDevice('pipewire:desk-cam')).toEqual({ kind: 'pipewire', node: 'desk-cam' });
  });

  it('a node name that is not a plain token is refused', () => {
    expect(() => parseCameraDevice('pipewire:two words')).toThrow(/pipewire:NODE-NAME/);
  });

  it('default node names and descriptions of several cameras say the console; the one camera keeps qemu-<vm>-camera', () => {
    expect([cameraNodeName('my vm', 0), cameraNodeName('my vm', 1), cameraNodeName('my vm')]).toEqual(['qemu-my_vm-console0-camera', 'qemu-my_vm-console1-camera', 'qemu-my_vm-camera']);
    expect([cameraDescription('win', 1), cameraDescription('win')]).toEqual(['win screen (console 1)', 'win screen']);
  });

  it('the status target of a PipeWire camera names its node when there are several (before start: its console)', () => {
    const settings = { device: 'pipewire', size: '640x480', fps: 30, format: 'YUY2', pin_resolution: false, cursor: true, console: 1 } as const;
    expect(new CameraRoute({ settings }).counters().target).toBe('PipeWire camera');
    expect(new CameraRoute({ settings, index: 1 }).counters().target).toBe('PipeWire camera of console 1');
    expect(new CameraRoute({ settings: { ...settings, device: 'pipewire:mine' }, index: 1 }).counters().target).toBe('PipeWire camera mine');
  });

  it('pipewireNodeName: an entry\'s own node name wins over the console-named default', () => {
    const cfg = cameraConfigOf({ device: 'pipewire', size: '640x480', fps: 30, format: 'YUY2', pin_resolution: false, cursor: true });
    expect(pipewireNodeName({ ...cfg, console: 1 }, 'heads')).toBe('qemu-heads-console1-camera');
    expect(pipewireNodeName({ ...cfg, target: { kind: 'pipewire', node: 'mine' }, console: 1 }, 'heads')).toBe('mine');
  });
});
