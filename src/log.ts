// Logger for the service and the CLI: readable text on a terminal, JSON lines for machines
// (--log-format json). Callers log state changes (attached, route started, retrying), never
// per frame or per audio block: the hot paths count and the status line reports the counts.
//
// Under systemd (JOURNAL_STREAM set) text lines carry a `<N>` syslog priority prefix so
// journald keeps the level, and no timestamp because the journal adds its own.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';
export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** Same sink and level, lines tagged with `component`. */
  child(component: string): Logger;
}

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /** Where lines go (default: process.stderr, so stdout stays free for command output). */
  write?: (line: string) => void;
  /** Prefix text lines with `<N>` for journald (default: JOURNAL_STREAM is set). */
  journal?: boolean;
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const SYSLOG_PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

function formatValue(v: string | number | boolean | null): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return String(v);
}

export function createLogger(opts: LoggerOptions, component?: string): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const journal = opts.journal ?? process.env.JOURNAL_STREAM !== undefined;
  const now = opts.now ?? (() => new Date());
  const max = RANK[opts.level];

  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] > max) return;
    const clean: Record<string, string | number | boolean | null> = {};
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) clean[k] = v;
    if (opts.format === 'json') {
      write(JSON.stringify({ time: now().toISOString(), level, ...(component ? { component } : {}), msg, ...clean }));
      return;
    }
    const kv = Object.entries(clean)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    const who = component ? `${component}: ` : '';
    const body = `${who}${msg}${kv ? ' ' + kv : ''}`;
    if (journal) write(`<${SYSLOG_PRIORITY[level]}>${body}`);
    else write(`${now().toISOString().slice(11, 23)} ${level.toUpperCase().padEnd(5)} ${body}`);
  };

  return {
    error: (m, f) => emit('error', m, f),
    warn: (m, f) => emit('warn', m, f),
    info: (m, f) => emit('info', m, f),
    debug: (m, f) => emit('debug', m, f),
    child: (c) => createLogger({ ...opts, write, journal, now }, component ? `${component}/${c}` : c),
  };
}

/** A logger that drops everything (unit tests, library use). */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};
