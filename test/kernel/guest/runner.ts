// A small stand-in for vitest INSIDE the kernel tier's guest. Under TCG, vitest itself needs 40-50 s
// to start and another 30-40 s to transform a check file's imports over 9p; the host instead
// bundles the check files with esbuild (test/harness/kernel-vm.ts), `vitest` aliased to this module,
// and the guest runs one plain `node` on the bundle. Same API subset (describe, it/test, beforeAll,
// afterAll, expect from @vitest/expect), tests in declaration order, and the same JSON report as
// vitest's json reporter, so the files still run under real vitest too (run-vitest.sh).
// A failing beforeAll fails every test of its describe with that error (vitest would skip them).
import * as chai from 'chai';
import { GLOBAL_EXPECT, JestAsymmetricMatchers, JestChaiExpect, JestExtend, setState } from '@vitest/expect';
import * as fs from 'fs';
import * as path from 'path';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);
Object.defineProperty(globalThis, GLOBAL_EXPECT, { value: chai.expect, writable: true, configurable: true });
export const expect = chai.expect as unknown as typeof import('vitest').expect;
setState({ assertionCalls: 0, isExpectingAssertions: false, expectedAssertionsNumber: null }, expect);

type Fn = () => unknown;
interface Test {
  kind: 'test';
  title: string;
  fn: Fn;
  timeout: number;
}
interface Suite {
  kind: 'suite';
  title: string;
  children: (Test | Suite)[];
  beforeAll: { fn: Fn; timeout: number }[];
  afterAll: Fn[];
}
interface FileEntry {
  name: string;
  root: Suite;
}

const DEFAULT_TIMEOUT = 120_000;
const files: FileEntry[] = [];
let current: Suite | undefined;

const newSuite = (title: string): Suite => ({ kind: 'suite', title, children: [], beforeAll: [], afterAll: [] });

function suite(): Suite {
  if (!current) throw new Error('kernel runner: describe/it/hooks outside a check file (call beginFile first)');
  return current;
}

/** The bundle's entry calls this before requiring each check file. */
export function beginFile(name: string): void {
  const root = newSuite('');
  files.push({ name, root });
  current = root;
}

export function describe(title: string, fn: () => unknown): void {
  const parent = suite();
  const s = newSuite(title);
  parent.children.push(s);
  current = s;
  try {
    if (fn() instanceof Promise) throw new Error(`kernel runner: describe('${title}') must not be async`);
  } finally {
    current = parent;
  }
}

export function it(title: string, fn: Fn, timeout = DEFAULT_TIMEOUT): void {
  suite().children.push({ kind: 'test', title, fn, timeout });
}
export const test = it;

export function beforeAll(fn: Fn, timeout = DEFAULT_TIMEOUT): void {
  suite().beforeAll.push({ fn, timeout });
}

export function afterAll(fn: Fn): void {
  suite().afterAll.push(fn);
}

function withTimeout(fn: Fn, ms: number, what: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    Promise.resolve().then(fn),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

const describeError = (err: unknown): string => (err instanceof Error ? (err.stack ?? err.message) : String(err));

interface AssertionResult {
  ancestorTitles: string[];
  title: string;
  fullName: string;
  status: 'passed' | 'failed';
  failureMessages: string[];
  duration: number;
}

async function runSuite(s: Suite, ancestors: string[], out: AssertionResult[], fileErrors: string[], inherited?: string): Promise<void> {
  let setupError = inherited;
  for (const h of s.beforeAll) {
    if (setupError) break;
    try {
      await withTimeout(h.fn, h.timeout, `beforeAll of '${s.title || 'the file'}'`);
    } catch (err) {
      setupError = `beforeAll of '${s.title || 'the file'}' failed: ${describeError(err)}`;
    }
  }
  const titles = s.title ? [...ancestors, s.title] : ancestors;
  for (const c of s.children) {
    if (c.kind === 'suite') {
      await runSuite(c, titles, out, fileErrors, setupError);
      continue;
    }
    const t0 = performance.now();
    let failure: string | undefined = setupError;
    if (!failure) {
      try {
        await withTimeout(c.fn, c.timeout, `test '${c.title}'`);
      } catch (err) {
        failure = describeError(err);
      }
    }
    const r: AssertionResult = {
      ancestorTitles: titles,
      title: c.title,
      fullName: [...titles, c.title].join(' '),
      status: failure ? 'failed' : 'passed',
      failureMessages: failure ? [failure] : [],
      duration: performance.now() - t0,
    };
    out.push(r);
    console.log(`${failure ? '  ×' : '  ✓'} ${[...titles, c.title].join(' > ')} ${Math.round(r.duration)}ms${failure ? `\n${failure.replace(/^/gm, '      ')}` : ''}`);
  }
  for (const h of s.afterAll) {
    try {
      await withTimeout(h, DEFAULT_TIMEOUT, `afterAll of '${s.title || 'the file'}'`);
    } catch (err) {
      fileErrors.push(`afterAll of '${s.title || 'the file'}' failed: ${describeError(err)}`);
    }
  }
}

/** Runs every registered file in order; writes vitest's JSON report to `reportPath`; exits 0/1. */
export async function runAll(reportPath: string): Promise<void> {
  const startTime = Date.now();
  const testResults = [];
  let failed = 0;
  for (const f of files) {
    const t0 = Date.now();
    const results: AssertionResult[] = [];
    const fileErrors: string[] = [];
    console.log(`kernel runner: ${f.name}`);
    await runSuite(f.root, [], results, fileErrors);
    const bad = results.filter((r) => r.status === 'failed').length + fileErrors.length;
    failed += bad;
    testResults.push({
      name: path.resolve(f.name),
      status: bad ? 'failed' : 'passed',
      message: fileErrors.join('\n'),
      startTime: t0,
      endTime: Date.now(),
      assertionResults: results,
    });
  }
  fs.writeFileSync(reportPath, JSON.stringify({ startTime, success: failed === 0, testResults }, null, 1));
  console.log(`kernel runner: ${failed ? `${failed} failed` : 'all passed'} in ${((Date.now() - startTime) / 1000).toFixed(1)} s`);
  process.exit(failed ? 1 : 0);
}
