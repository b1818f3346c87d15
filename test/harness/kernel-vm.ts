// The kernel-device tier's host side: boots ONE TCG guest per group of checks
// (scripts/kernel-vm/run-guest.sh: the host kernel, the host root read-only over 9p, so the
// checkout, node_modules and the built addon are there at the same paths) and turns what ran in
// the guest into one vitest test per check, so a failure names the check and carries its message.
//
// A group is either
//   - in-guest vitest files (test/kernel/guest/*.guest.ts, run with test/kernel/vitest.guest.config.ts
//     and its JSON report written to the shared run dir), or
//   - a guest command that prints `CHECK PASS <name>: <detail>` / `CHECK FAIL <name>: <detail>` lines.
// A guest that cannot boot, times out or whose runner dies fails the group's "guest ran" test with
// the reason and the kept logs; checks that were expected but never reported fail too (never skipped).
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { bundleCli, bundleScript } from './cli';
import { keepLogs, spawnManaged, tempDir } from './procs';

const ROOT = path.join(__dirname, '../..');
const RUN_GUEST = path.join(ROOT, 'scripts/kernel-vm/run-guest.sh');
const GUEST_VITEST = path.join(ROOT, 'scripts/kernel-vm/guest/run-vitest.sh');

export interface GuestGroup {
  /** short label: run dirs, kept logs and the describe title use it */
  name: string;
  /** 'script' (bash as PID 1, ~5 s boot), 'udev' (+ systemd-udevd), 'systemd' (systemd as PID 1, ~15 s) */
  mode: 'script' | 'udev' | 'systemd';
  /** extra QEMU arguments, e.g. '-device qemu-xhci -device usb-kbd' */
  qemuArgs?: string;
  /** in-guest vitest files, relative to the repo (test/kernel/guest/*.guest.ts) */
  vitest?: string[];
  /**
   * How the guest runs them: 'bundle' (default: esbuild bundle made here with `vitest` aliased to
   * test/kernel/guest/runner.ts, run by one plain `node`; ~80 s less per boot under TCG) or
   * 'vitest' (the real vitest in the guest, scripts/kernel-vm/guest/run-vitest.sh).
   */
  runner?: 'bundle' | 'vitest';
  /** or a guest command printing CHECK lines (run from the repo root) */
  command?: string[];
  /** wall-clock limit for the whole boot, seconds */
  timeoutS: number;
  /** guest memory (default 1G) */
  memory?: string;
  /**
   * Bundle the CLI from the current sources first (esbuild, .cache/test-cli/) and hand its path to
   * the guest as QDB_CLI_BUNDLE: one file starts in a third of the time dist/ takes over 9p.
   */
  cli?: boolean;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  /** the failure message (or the detail of a passing CHECK line) */
  detail: string;
  ms?: number;
}

export interface GroupRun {
  /** set when the guest did not run the group to the end: the reason, with where the logs are */
  problem?: string;
  checks: CheckResult[];
  wallS: number;
  dir: string;
}

interface VitestJson {
  testResults?: {
    name: string;
    status: string;
    message?: string;
    assertionResults: { fullName: string; status: string; failureMessages: string[]; duration?: number }[];
  }[];
}

function parseVitestJson(file: string): CheckResult[] {
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as VitestJson;
  const out: CheckResult[] = [];
  for (const f of report.testResults ?? []) {
    const rel = path.relative(ROOT, f.name);
    for (const a of f.assertionResults) {
      // skipped/todo count as failures here: the tier never passes on what did not run
      out.push({ name: `${path.basename(rel)} > ${a.fullName}`, ok: a.status === 'passed', detail: a.status === 'passed' ? '' : a.failureMessages.join('\n') || `status ${a.status}`, ms: a.duration });
    }
    // a file that failed outside any test (import error, a hook, a crashed worker)
    if (f.status !== 'passed' && f.message) out.push({ name: `${path.basename(rel)} (file)`, ok: false, detail: f.message });
  }
  return out;
}

function parseCheckLines(log: string): CheckResult[] {
  return [...log.matchAll(/^CHECK (PASS|FAIL) ([^:\n]+)(?:: (.*))?$/gm)].map((m) => ({ name: m[2].trim(), ok: m[1] === 'PASS', detail: m[3] ?? '' }));
}

/** Bundles check files with their imports into one file the guest runs with plain `node`. */
function bundleChecks(group: string, files: string[]): string {
  const outfile = path.join(ROOT, '.cache', 'kernel-vm', 'checks', `${group}-${process.pid}.js`);
  const entry = [
    `const runner = require('./test/kernel/guest/runner');`,
    ...files.map((f) => `runner.beginFile(${JSON.stringify(f)});\nrequire(${JSON.stringify(`./${f}`)});`),
    `void runner.runAll(process.argv[2]);`,
  ].join('\n');
  bundleScript(entry, outfile, ['usocket', 'dbus-native'], { vitest: path.join(ROOT, 'test/kernel/guest/runner.ts') });
  return outfile;
}

/** Boots the guest for one group and collects its checks. Never throws for guest-side failures. */
export async function runGuestGroup(g: GuestGroup): Promise<GroupRun> {
  const dir = tempDir(`kvm-${g.name}`);
  let checksBundle: string | undefined;
  const args = ['-t', String(g.timeoutS), '-d', dir];
  if (g.mode === 'udev') args.push('-u');
  if (g.mode === 'systemd') args.push('-S');
  if (g.qemuArgs) args.push('-q', g.qemuArgs);
  if (g.memory) args.push('-m', g.memory);
  args.push('--');
  if (g.vitest && g.runner === 'vitest') args.push('bash', GUEST_VITEST, ...g.vitest);
  else if (g.vitest) args.push(process.execPath, (checksBundle = bundleChecks(g.name, g.vitest)), '/mnt/kdev/vitest.json');
  else if (g.command) args.push(...g.command);
  else throw new Error(`kernel group ${g.name}: neither vitest files nor a command`);
  const env = { ...process.env };
  if (g.cli) env.QDB_CLI_BUNDLE = bundleCli(`kernel-${g.name}`);
  const t0 = Date.now();
  const proc = spawnManaged(`run-guest ${g.name}`, 'bash', [RUN_GUEST, ...args], { logFile: path.join(dir, 'run-guest.log'), cwd: ROOT, env });
  const rc = await proc.exited;
  // the bundles are per run (named by our pid): drop them
  if (checksBundle) fs.rmSync(checksBundle, { force: true });
  if (env.QDB_CLI_BUNDLE) fs.rmSync(path.dirname(env.QDB_CLI_BUNDLE), { recursive: true, force: true });
  const wallS = (Date.now() - t0) / 1000;
  const cmdLog = fs.existsSync(path.join(dir, 'cmd.log')) ? fs.readFileSync(path.join(dir, 'cmd.log'), 'utf8') : '';
  let checks: CheckResult[] = [];
  let problem: string | undefined;
  const report = path.join(dir, 'vitest.json');
  try {
    checks = g.vitest ? (fs.existsSync(report) ? parseVitestJson(report) : []) : parseCheckLines(cmdLog);
  } catch (err) {
    problem = `the guest's report ${report} is unreadable: ${String(err)}`;
  }
  const tail = (s: string): string => s.trim().split('\n').slice(-15).join('\n');
  if (rc === 124) problem = `the guest timed out after ${g.timeoutS} s`;
  else if (rc === 125) problem = `the guest did not boot or never ran the group: ${tail(proc.log())}\n--- serial console:\n${tail(fs.existsSync(path.join(dir, 'serial.log')) ? fs.readFileSync(path.join(dir, 'serial.log'), 'utf8') : '')}`;
  else if (checks.length === 0 && !problem) problem = `the guest ran but reported no checks (exit ${rc}):\n${tail(cmdLog || proc.log())}`;
  const timing = fs.existsSync(path.join(dir, 'timing.txt')) ? fs.readFileSync(path.join(dir, 'timing.txt'), 'utf8').trim().replace(/\n/g, ' | ') : '';
  console.log(`[kernel ${g.name}] guest exit ${rc}, host wall ${wallS.toFixed(1)} s; ${timing}`);
  for (const c of checks) console.log(`[kernel ${g.name}] ${c.ok ? 'PASS' : 'FAIL'} ${c.name}${c.ms !== undefined ? ` (${Math.round(c.ms)} ms)` : ''}${c.ok && c.detail ? `: ${c.detail}` : ''}`);
  const failed = problem !== undefined || checks.some((c) => !c.ok);
  if (failed) problem = problem === undefined ? undefined : `${problem}\n(logs kept in ${keepLogs(dir, `kernel-${g.name}`)})`;
  if (!failed && !process.env.QDB_KEEP_RECORDINGS) fs.rmSync(dir, { recursive: true, force: true });
  else if (failed && problem === undefined) console.log(`[kernel ${g.name}] logs kept in ${keepLogs(dir, `kernel-${g.name}`)}`);
  return { problem, checks, wallS, dir };
}

/**
 * Declares the vitest suite of one group: boots the guest while vitest collects the file, then one
 * test "guest ran the group" plus one test per check the guest reported. `expected`: check names
 * (substrings) that must be among them, so a check that silently vanished fails too.
 */
export function guestGroupSuite(title: string, g: GuestGroup, expected: string[] = []): void {
  describe(title, async () => {
    const run = await runGuestGroup(g);
    it(`guest ran the ${g.name} group (${g.mode} mode)`, () => {
      expect(run.problem, run.problem).toBeUndefined();
    });
    for (const c of run.checks) {
      it(c.name, () => {
        if (!c.ok) throw new Error(c.detail);
      });
    }
    for (const e of expected) {
      it(`reported: ${e}`, () => {
        expect(run.checks.map((c) => c.name).filter((n) => n.includes(e)), `no check named like "${e}" came back from the guest`).not.toEqual([]);
      });
    }
  });
}
