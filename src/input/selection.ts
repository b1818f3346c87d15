// Which devices to forward: explicit paths (--input PATH, repeatable) and match rules from the
// config ("name:REGEX", "id:VVVV:PPPP", "all-keyboards", "all-mice"), plus the hot-plug watcher
// that opens matching devices when they appear and closes them when they go away.
import * as fs from 'fs';
import * as path from 'path';
import type { InputDeviceInfo, InputEventSource } from './device';
import { InputError } from './errors';
import { INPUT_DEV_DIR } from './devices';
import type { Logger } from '../log';

export type InputRule =
  | { kind: 'path'; path: string }
  | { kind: 'name'; pattern: RegExp }
  | { kind: 'id'; vendor: number; product: number }
  | { kind: 'all-keyboards' }
  | { kind: 'all-mice' };

function invalidRule(text: string, why: string): InputError {
  return new InputError(
    'EINVALIDINPUT',
    `invalid input selection "${text}": ${why}`,
    'use a device path (/dev/input/by-id/...), name:REGEX, id:VVVV:PPPP (hex), all-keyboards or all-mice',
  );
}

export function parseInputRule(text: string): InputRule {
  const t = text.trim();
  if (t === 'all-keyboards' || t === 'all keyboards') return { kind: 'all-keyboards' };
  if (t === 'all-mice' || t === 'all mice') return { kind: 'all-mice' };
  if (t.startsWith('name:')) {
    try {
      return { kind: 'name', pattern: new RegExp(t.slice(5)) };
    } catch (err) {
      throw invalidRule(text, `bad regular expression (${(err as Error).message})`);
    }
  }
  const id = /^(?:id:)?([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$/.exec(t);
  if (id) return { kind: 'id', vendor: parseInt(id[1], 16), product: parseInt(id[2], 16) };
  if (t.startsWith('/')) return { kind: 'path', path: t };
  throw invalidRule(text, 'not an absolute path and not a known rule');
}

/**
 * A rule as a user may configure it (`--input`, `[input] devices`): a path must be an evdev node
 * under /dev/input (by-id links come and go with hot-plug, so it need not exist yet).
 */
export function parseConfiguredInputRule(text: string): InputRule {
  const rule = parseInputRule(text);
  if (rule.kind === 'path' && !rule.path.startsWith(`${INPUT_DEV_DIR}/`)) throw invalidRule(text, `not an input device (expected ${INPUT_DEV_DIR}/by-id/... or ${INPUT_DEV_DIR}/eventN)`);
  return rule;
}

/** Does a device (info null = plain stream) at `devPath` match the rule? */
export function ruleMatches(rule: InputRule, devPath: string, info: InputDeviceInfo | null): boolean {
  switch (rule.kind) {
    case 'path':
      return rule.path === devPath;
    case 'name':
      return info !== null && rule.pattern.test(info.name);
    case 'id':
      return info !== null && info.vendor === rule.vendor && info.product === rule.product;
    case 'all-keyboards':
      return info !== null && info.keyboard;
    case 'all-mice':
      return info !== null && (info.mouse || info.absolutePointer);
  }
}

export interface WatcherDeps {
  /** directory with the eventN nodes; tests pass a temp dir */
  inputDir?: string;
  open: (devPath: string) => InputEventSource;
  watch?: (dir: string, listener: (event: string, filename: string | null) => void) => { close(): void };
  /** hot-plug watch failures as warnings, devices taken into use as info. Default: silent. */
  log?: Logger;
  /** re-tries of an open that failed with EACCES right after creation (udev sets permissions late) */
  openRetries?: number;
  retryDelayMs?: number;
}

export interface WatcherEvents {
  added(source: InputEventSource, devPath: string): void;
  removed(source: InputEventSource, devPath: string, reason: string): void;
}

/**
 * Keeps the set of open devices equal to "what exists and matches". Devices are keyed by their
 * real path, so a by-id symlink and its eventN node are the same device.
 */
export class DeviceWatcher {
  private readonly open = new Map<string, { source: InputEventSource; devPath: string }>();
  private readonly watchers: Array<{ close(): void }> = [];
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly inputDir: string;
  private stopped = false;

  constructor(
    private readonly rules: InputRule[],
    private readonly deps: WatcherDeps,
    private readonly events: WatcherEvents,
  ) {
    this.inputDir = deps.inputDir ?? INPUT_DEV_DIR;
  }

  private get needsScan(): boolean {
    return this.rules.some((r) => r.kind !== 'path');
  }

  start(): void {
    const watch = this.deps.watch ?? ((dir, l) => fs.watch(dir, { persistent: false }, (e, f) => l(e, f === null ? null : String(f))));
    const dirs = new Set<string>();
    if (this.needsScan) dirs.add(this.inputDir);
    for (const r of this.rules) if (r.kind === 'path') dirs.add(path.dirname(r.path));
    for (const dir of dirs) this.watchDir(dir, watch);
    this.rescanAll();
  }

  /** Watches `dir`; a directory that does not exist yet (no input device ever plugged in, so no
   * /dev/input, or no by-id/) is waited for through its parent. */
  private watchDir(dir: string, watch: NonNullable<WatcherDeps['watch']>): void {
    if (this.stopped) return;
    if (!fs.existsSync(dir)) {
      const parent = path.dirname(dir);
      if (parent === dir || !fs.existsSync(parent)) {
        this.deps.log?.warn(`cannot watch ${dir} for hot-plug (neither it nor ${parent} exists): devices plugged in later are not picked up`);
        return;
      }
      let parentWatch: { close(): void } | undefined;
      const onParent = (_e: string, name: string | null): void => {
        if ((name === null || name === path.basename(dir)) && fs.existsSync(dir) && parentWatch) {
          parentWatch.close();
          this.watchers.splice(this.watchers.indexOf(parentWatch), 1);
          parentWatch = undefined;
          this.watchDir(dir, watch);
          this.rescanAll();
        }
      };
      try {
        parentWatch = watch(parent, onParent);
        this.watchers.push(parentWatch);
      } catch (err) {
        this.deps.log?.warn(`cannot watch ${parent} for hot-plug (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      return;
    }
    try {
      this.watchers.push(watch(dir, (_event, filename) => this.onDirEvent(dir, filename)));
    } catch (err) {
      this.deps.log?.warn(`cannot watch ${dir} for hot-plug (${(err as NodeJS.ErrnoException).code ?? String(err)}): devices plugged in later are not picked up`);
    }
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
    for (const [key, { source, devPath }] of [...this.open]) {
      this.open.delete(key);
      source.close();
      this.events.removed(source, devPath, 'stopped');
    }
  }

  /** Currently open devices */
  sources(): InputEventSource[] {
    return [...this.open.values()].map((o) => o.source);
  }

  /** The source reported its end (ENODEV...): close it; it is picked up again if it comes back. */
  sourceEnded(source: InputEventSource, reason: string): void {
    for (const [key, o] of this.open) {
      if (o.source !== source) continue;
      this.open.delete(key);
      source.close();
      this.events.removed(source, o.devPath, reason);
      // A node that still exists (e.g. a FIFO whose stream ended) is not re-opened in a loop:
      // only a new directory event brings it back.
      return;
    }
  }

  private candidates(): string[] {
    const out: string[] = [];
    for (const r of this.rules) if (r.kind === 'path') out.push(r.path);
    if (this.needsScan) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(this.inputDir);
      } catch {
        /* no /dev/input at all: nothing to scan */
      }
      for (const n of names.filter((n) => /^event\d+$/.test(n)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))) {
        out.push(path.join(this.inputDir, n));
      }
    }
    return out;
  }

  private rescanAll(): void {
    for (const c of this.candidates()) this.check(c, this.deps.openRetries ?? 5);
  }

  private onDirEvent(dir: string, filename: string | null): void {
    if (this.stopped) return;
    if (filename === null) {
      this.rescanAll();
      return;
    }
    const full = path.join(dir, filename);
    const relevant = this.rules.some((r) => (r.kind === 'path' ? r.path === full : dir === this.inputDir && /^event\d+$/.test(filename)));
    if (!relevant) return;
    // Removal: close whatever was open under this name (by its path or real path).
    if (!fs.existsSync(full)) {
      for (const [key, o] of this.open) {
        if (o.devPath === full || key === full) {
          this.open.delete(key);
          o.source.close();
          this.events.removed(o.source, o.devPath, 'removed');
        }
      }
      return;
    }
    this.check(full, this.deps.openRetries ?? 5);
  }

  private check(devPath: string, retriesLeft: number): void {
    if (this.stopped || !fs.existsSync(devPath)) return;
    let key: string;
    try {
      key = fs.realpathSync(devPath);
    } catch {
      return;
    }
    if (this.open.has(key)) return;
    const pathRule = this.rules.some((r) => r.kind === 'path' && r.path === devPath);
    let source: InputEventSource;
    try {
      source = this.deps.open(devPath);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === 'EACCES' || code === 'EPERM' || code === 'ENOENT') && retriesLeft > 0) {
        // fresh nodes get their group/ACL from udev a moment after they appear
        this.retryLater(devPath, retriesLeft - 1);
        return;
      }
      if (pathRule) this.deps.log?.warn((err as Error).message);
      return;
    }
    if (!pathRule && !this.rules.some((r) => ruleMatches(r, devPath, source.info))) {
      source.close();
      return;
    }
    this.open.set(key, { source, devPath });
    this.deps.log?.info(`using ${devPath}${source.info ? ` (${source.info.name})` : ''}`);
    this.events.added(source, devPath);
  }

  private retryLater(devPath: string, retriesLeft: number): void {
    if (this.pending.has(devPath)) return;
    const t = setTimeout(() => {
      this.pending.delete(devPath);
      this.check(devPath, retriesLeft);
    }, this.deps.retryDelayMs ?? 200);
    t.unref();
    this.pending.set(devPath, t);
  }
}
