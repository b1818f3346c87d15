// Loading: defaults <- $XDG_CONFIG_HOME/qemu-dbus-bridge/<vm>.toml (or --config FILE) <- flags.
// The file and the flags are validated separately so each error names where the bad value
// came from (the file and key, or the flag), then merged and checked for contradictions.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { ZodIssue } from 'zod';
import { cameraTargetKey, parseCameraDevice } from '../camera/options';
import { ConfigError } from './errors';
import { ALL_KEYS, ALLOWED, BridgeConfig, ConfigSchema, PartialConfig, TABLES, cameraEntries, keysOf } from './schema';
import { closest } from './suggest';

/** The flag that sets each key (for error messages and --help). */
export const FLAG_FOR_KEY: Record<string, string> = {
  'connection.address': '--address',
  'connection.vm': '--vm',
  'connection.qmp': '--qmp',
  'connection.libvirt': '--libvirt',
  'connection.libvirt_uri': '--libvirt-uri',
  'log.format': '--log-format',
  'log.level': '--log-level',
  'audio.backend': '--audio',
  'audio.sink': '--audio-sink',
  'audio.source': '--audio-source',
  'audio.latency_ms': '--audio-latency',
  'camera.device': '--camera',
  'camera.size': '--camera-size',
  'camera.fps': '--camera-fps',
  'camera.pin_resolution': '--camera-pin-resolution',
  'camera.format': '--camera-format',
  'camera.cursor': '--camera-cursor / --no-camera-cursor',
  'camera.console': '--camera-console',
  'input.devices': '--input',
  'input.replay': '--input-replay',
  'input.grab': '--grab / --no-grab',
  'input.grab_toggle': '--grab-toggle',
  'input.grab_next': '--grab-next',
  'input.console': '--input-console',
  'input.ring_order': '--ring-order',
};

export type ConfigSource = { kind: 'file'; path: string } | { kind: 'flags' };

/** The command-line flags that feed the config (undefined = not given). */
export interface ConfigFlags {
  address?: string;
  vm?: string;
  qmp?: string;
  libvirt?: string;
  libvirtUri?: string;
  logFormat?: string;
  logLevel?: string;
  audio?: string;
  audioSink?: string;
  audioSource?: string;
  audioLatency?: string | number;
  camera?: string;
  cameraSize?: string;
  cameraFps?: string | number;
  cameraPinResolution?: boolean;
  cameraFormat?: string;
  cameraCursor?: boolean;
  cameraConsole?: string | number;
  input?: string | string[];
  inputReplay?: string | string[];
  grab?: boolean;
  grabToggle?: string;
  grabNext?: string;
  inputConsole?: string | number;
  ringOrder?: string | number;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(env.HOME ?? os.homedir(), '.config');
  return path.join(base, 'qemu-dbus-bridge');
}

export function configPathFor(vm: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), `${vm}.toml`);
}

function show(v: unknown): string {
  if (v === undefined) return '(missing)';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v) || (typeof v === 'object' && v !== null)) return JSON.stringify(v);
  return String(v);
}

function valueAt(obj: unknown, p: (string | number)[]): unknown {
  let cur = obj;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

/** Where a key sits, as a person reads it: `camera.size`, or `camera[1].size` in a [[camera]] entry. */
function keyLabel(p: readonly (string | number)[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** One line for the first issue (the one a user fixes first), noting how many more there are. */
function describeIssue(issue: ZodIssue, raw: unknown, source: ConfigSource): string {
  const where = source.kind === 'file' ? `${source.path}: ` : '';
  if (issue.code === 'unrecognized_keys') {
    const table = issue.path.filter((p) => typeof p === 'string').join('.');
    const key = issue.keys[0];
    const full = table ? `${table}.${key}` : key;
    const at = issue.path.length ? `${keyLabel(issue.path)}.${key}` : key;
    const candidates = table ? keysOf(table).map((k) => `${table}.${k}`) : [...TABLES, ...ALL_KEYS];
    // A key placed at top level that belongs in a table: suggest the table form.
    const byLeaf = ALL_KEYS.find((k) => k.endsWith('.' + key));
    const guess = byLeaf && !table ? byLeaf : closest(full, candidates);
    const allowed = table ? `keys of [${table}] are ${keysOf(table).join(', ')}` : `tables are ${TABLES.map((t) => `[${t}]`).join(', ')}`;
    return `${where}unknown key ${at}${guess ? ` (did you mean ${guess}?)` : ''}; ${allowed}`;
  }
  const keyPath = issue.path.filter((p) => typeof p === 'string').join('.');
  const bad = valueAt(raw, issue.path);
  // the number of [[camera]] entries: the message says it all
  if (keyPath === 'camera' && (issue.code === 'too_small' || issue.code === 'too_big')) return `${where}${issue.message}`;
  if (TABLES.includes(keyPath as keyof BridgeConfig)) {
    const form = keyPath === 'camera' ? `[camera] must be a table (or [[camera]] tables, one per camera)` : `[${keyPath}] must be a table`;
    return `${where}${form} of ${keysOf(keyPath).join(', ')}, got ${show(bad)}`;
  }
  const allowed = ALLOWED[keyPath] ?? issue.message;
  if (source.kind === 'flags') {
    const flag = FLAG_FOR_KEY[keyPath] ?? keyPath;
    return `${flag} ${show(bad)} is not allowed: expected ${allowed}`;
  }
  return `${where}${keyLabel(issue.path)} = ${show(bad)} is not allowed: expected ${allowed}`;
}

/**
 * `[[camera]]` entries, checked together: each names the console it shows (the default PipeWire
 * node name says it), and no two write to one target (a v4l2 device, a file, a PipeWire node name,
 * or `auto`, which would pick the same device for each).
 */
function checkCameraEntries(config: BridgeConfig, source: ConfigSource): void {
  const where = source.kind === 'file' ? `${source.path}: ` : '';
  const seen = new Map<string, string>();
  for (const { settings, index } of cameraEntries(config)) {
    if (index === undefined) return;
    const at = `camera[${index}]`;
    if (settings.console === undefined)
      throw new ConfigError(`${where}${at} has no console: each [[camera]] entry names the console it shows (console = N, a number \`qemu-dbus-bridge list\` shows)`);
    if (settings.device === 'none') continue;
    const key = cameraTargetKey(parseCameraDevice(settings.device), settings.console);
    const first = seen.get(key);
    if (first !== undefined) {
      const what =
        settings.device === 'auto'
          ? 'both have device = "auto", which picks the same device for each'
          : key.startsWith('pipewire console')
            ? `are both PipeWire cameras of console ${settings.console} with the default node name`
            : `both write to ${JSON.stringify(settings.device)}`;
      throw new ConfigError(`${where}${first} and ${at} ${what}: give each [[camera]] entry its own device (a /dev/videoN, pipewire:NODE-NAME or file:/path)`);
    }
    seen.set(key, at);
  }
}

export function validate(raw: unknown, source: ConfigSource): BridgeConfig {
  const r = ConfigSchema.safeParse(raw);
  if (r.success) {
    checkCameraEntries(r.data, source);
    return r.data;
  }
  const first = r.error.issues[0];
  const more = r.error.issues.length - 1;
  throw new ConfigError(describeIssue(first, raw, source) + (more > 0 ? ` (and ${more} more problem${more > 1 ? 's' : ''})` : ''));
}

export function readConfigFile(file: string): PartialConfig {
  let textContent: string;
  try {
    textContent = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new ConfigError(`${file}: cannot read the configuration file (${why})`);
  }
  let parsed: unknown;
  try {
    parsed = parseToml(textContent);
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split('\n')[0].replace(/^Invalid TOML document: /, '');
      throw new ConfigError(`${file}:${err.line}:${err.column}: not valid TOML: ${first}`);
    }
    throw new ConfigError(`${file}: not valid TOML: ${(err as Error).message}`);
  }
  validate(parsed, { kind: 'file', path: file });
  return parsed as PartialConfig;
}

/** Numbers come in as strings so a bad one is reported as typed, not as NaN. */
function num(v: string | number | undefined): unknown {
  if (v === undefined || typeof v === 'number') return v;
  return /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
}

export function flagsToPartial(f: ConfigFlags): PartialConfig {
  const set = <T extends object>(o: T): T | undefined => {
    const clean = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    return Object.keys(clean).length ? clean : undefined;
  };
  const out: Record<string, unknown> = {
    connection: set({ address: f.address, vm: f.vm, qmp: f.qmp, libvirt: f.libvirt, libvirt_uri: f.libvirtUri }),
    log: set({ format: f.logFormat, level: f.logLevel }),
    audio: set({ backend: f.audio, sink: f.audioSink, source: f.audioSource, latency_ms: num(f.audioLatency) }),
    camera: set({
      device: f.camera,
      size: f.cameraSize,
      fps: num(f.cameraFps),
      pin_resolution: f.cameraPinResolution,
      format: f.cameraFormat,
      cursor: f.cameraCursor,
      console: num(f.cameraConsole),
    }),
    input: set({
      devices: f.input === undefined ? undefined : Array.isArray(f.input) ? f.input : [f.input],
      replay: f.inputReplay === undefined ? undefined : Array.isArray(f.inputReplay) ? f.inputReplay : [f.inputReplay],
      grab: f.grab,
      grab_toggle: f.grabToggle,
      grab_next: f.grabNext,
      console: num(f.inputConsole),
      ring_order: num(f.ringOrder),
    }),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as PartialConfig;
}

/** Flag pairs that contradict each other (only when both were given on the command line). */
function checkFlagCombinations(f: ConfigFlags): void {
  const bad = (msg: string): never => {
    throw new ConfigError(msg);
  };
  if (f.qmp !== undefined && f.address !== undefined)
    bad('--qmp and --address exclude each other: --qmp talks to one VM directly (-display dbus,p2p=yes), --address finds the VM on a bus');
  if (f.libvirt !== undefined && (f.qmp !== undefined || f.address !== undefined))
    bad('--libvirt excludes --address and --qmp: libvirt says where the VM\'s display is (its bus, or p2p through libvirt)');
  if (f.libvirtUri !== undefined && f.libvirt === undefined) bad('--libvirt-uri needs --libvirt DOMAIN: it says which libvirt the domain lives in');
  if (f.grab === false && f.grabToggle !== undefined)
    bad('--no-grab and --grab-toggle exclude each other: the toggle switches a grab that --no-grab turns off');
  if (f.audio === 'none' && (f.audioSink !== undefined || f.audioSource !== undefined || f.audioLatency !== undefined))
    bad('--audio none turns audio off, so --audio-sink, --audio-source and --audio-latency have no effect; drop one of them');
  if (
    f.camera === 'none' &&
    (f.cameraSize !== undefined || f.cameraFps !== undefined || f.cameraPinResolution !== undefined || f.cameraFormat !== undefined || f.cameraConsole !== undefined)
  )
    bad('--camera none turns the camera off, so --camera-size, --camera-fps, --camera-pin-resolution and --camera-console have no effect; drop one of them');
}

function merge(base: PartialConfig, over: PartialConfig): PartialConfig {
  const out: Record<string, unknown> = { ...base };
  for (const [table, values] of Object.entries(over)) {
    const under = (base as Record<string, object | undefined>)[table];
    // [[camera]] entries are replaced, not merged into (checkFlagsOverEntries allows only --camera none)
    out[table] = Array.isArray(under) ? values : { ...(under ?? {}), ...(values as object) };
  }
  return out as PartialConfig;
}

/** The --camera* flags set one camera: over `[[camera]]` entries only `--camera none` (all off) means something. */
function checkFlagsOverEntries(fromFile: PartialConfig, fromFlags: PartialConfig, file: string): void {
  const entries = fromFile.camera;
  const flags = fromFlags.camera;
  if (!Array.isArray(entries) || flags === undefined || Array.isArray(flags)) return;
  const keys = Object.keys(flags);
  if (keys.length === 1 && flags.device === 'none') return;
  const named = keys.map((k) => FLAG_FOR_KEY[`camera.${k}`] ?? k).join(', ');
  throw new ConfigError(
    `${named} set${keys.length === 1 ? 's' : ''} one camera, but ${file} has ${entries.length} [[camera]] entries: set the value in each entry instead (only --camera none applies to them all: it turns every camera off)`,
  );
}

export interface ResolvedConfig {
  config: BridgeConfig;
  /** The config file that was read, if any. */
  file?: string;
}

/** For commands without a config file (list, devices, doctor): check the flags they take. */
export function validateFlags(flags: ConfigFlags): BridgeConfig {
  checkFlagCombinations(flags);
  return validate(flagsToPartial(flags), { kind: 'flags' });
}

/**
 * --config FILE must exist; otherwise <vm>.toml in the config dir is read when present.
 * Throws ConfigError (exit 2) with one line.
 */
export function resolveConfig(flags: ConfigFlags & { config?: string }, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  checkFlagCombinations(flags);
  const fromFlags = flagsToPartial(flags);
  validate(fromFlags, { kind: 'flags' });

  let file: string | undefined;
  if (flags.config !== undefined) {
    if (flags.config.trim() === '') throw new ConfigError('--config "" is not allowed: expected the path of a TOML file');
    file = path.resolve(flags.config);
  } else if ((flags.vm ?? flags.libvirt) !== undefined && !(flags.vm ?? flags.libvirt)!.includes('/')) {
    // --vm defaults to the libvirt domain's name: the same <name>.toml serves both.
    const candidate = configPathFor((flags.vm ?? flags.libvirt)!, env);
    if (fs.existsSync(candidate)) file = candidate;
  }
  const fromFile = file ? readConfigFile(file) : {};
  if (file) checkFlagsOverEntries(fromFile, fromFlags, file);
  const merged = merge(fromFile, fromFlags);
  const config = validate(merged, file ? { kind: 'file', path: file } : { kind: 'flags' });

  if (config.connection.qmp !== undefined && config.connection.address !== undefined) {
    throw new ConfigError(
      `${file ? file + ': ' : ''}connection.qmp and connection.address exclude each other: choose the QMP socket (p2p) or a bus address`,
    );
  }
  const c = config.connection;
  if (c.libvirt !== undefined && (c.qmp !== undefined || c.address !== undefined)) {
    throw new ConfigError(`${file ? file + ': ' : ''}connection.libvirt excludes connection.address and connection.qmp: libvirt says where the VM's display is`);
  }
  if (c.libvirt_uri !== undefined && c.libvirt === undefined) {
    throw new ConfigError(`${file ? file + ': ' : ''}connection.libvirt_uri needs connection.libvirt (the domain name or UUID)`);
  }
  for (const r of config.input.replay) {
    if (!fs.existsSync(r)) throw new ConfigError(`${FLAG_FOR_KEY['input.replay']} ${r}: no such file (a replay file or FIFO must exist before the bridge starts)`);
  }
  return { config, file };
}
