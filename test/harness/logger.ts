// A Logger (src/log.ts) that keeps "level: message" lines for tests to check.
import type { LogFields, Logger } from '../../src/log';

export function recordingLogger(lines: string[] = []): Logger & { lines: string[] } {
  const at =
    (level: string) =>
    (msg: string, _fields?: LogFields): void => {
      lines.push(`${level}: ${msg}`);
    };
  const log: Logger & { lines: string[] } = {
    lines,
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: () => log,
  };
  return log;
}
