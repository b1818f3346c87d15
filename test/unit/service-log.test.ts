// The logger: text lines for terminals, JSON lines with --log-format json, syslog priority
// prefixes under journald, levels filtered, fields kept.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log';

const at = () => new Date('2026-11-22T03:04:05.678Z');

describe('logger', () => {
  it('json: one object per line with time, level, component, msg and fields', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l), now: at, journal: false }).child('audio-out');
    log.info('started', { rate: 44100, sink: 'vm sink', skipped: undefined });
    log.debug('hidden');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toEqual({ time: '2026-11-22T03:04:05.678Z', level: 'info', component: 'audio-out', msg: 'started', rate: 44100, sink: 'vm sink' });
  });

  it('text: time, level, component and key=value fields (quoted when needed)', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', level: 'debug', write: (l) => lines.push(l), now: at, journal: false });
    log.child('camera').warn('dropped', { why: 'too big', n: 3 });
    expect(lines).toEqual(['03:04:05.678 WARN  camera: dropped why="too big" n=3']);
  });

  it('under journald: <priority> prefix and no timestamp', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', level: 'info', write: (l) => lines.push(l), journal: true });
    log.error('boom');
    log.info('ok');
    expect(lines).toEqual(['<3>boom', '<6>ok']);
  });

  it('levels: warn hides info and debug', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', level: 'warn', write: (l) => lines.push(l), journal: true });
    log.info('no');
    log.debug('no');
    log.warn('yes');
    expect(lines).toEqual(['<4>yes']);
  });
});
