// A Logger for tests and benches that hands each message on as one line — `component: msg` under
// child(), as the service's text lines read — with its level, so a test can check that a warning
// is logged as a warning.
import type { LogFields, Logger, LogLevel } from '../../src/log';

export function lineLogger(push: (line: string, level: LogLevel) => void, component?: string): Logger {
  const emit =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      const kv = Object.entries(fields ?? {})
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => ` ${k}=${String(v)}`)
        .join('');
      push(`${component ? `${component}: ` : ''}${msg}${kv}`, level);
    };
  return { error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug'), child: (c) => lineLogger(push, component ? `${component}/${c}` : c) };
}
