// Commands the package tests run (builds, npm, lintian): asynchronous, so a minute-long build
// never blocks the vitest worker, with the wall time of each logged (speed is reported, not
// asserted).
import { execFile } from 'child_process';
import * as path from 'path';

export const REPO = path.join(__dirname, '../..');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Logged with the wall time, and named in failures. */
  what: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Resolves with the exit code and output; rejects only when the command could not run. */
export function run(cmd: string, args: string[], opts: RunOptions): Promise<Result> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd ?? REPO, env: opts.env ?? process.env, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      console.log(`${opts.what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      if (err && typeof err.code !== 'number') reject(new Error(`${opts.what}: ${cmd} could not run: ${err.message}`));
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** Like run(), but a non-zero exit is an error carrying the output; resolves with stdout. */
export async function ok(cmd: string, args: string[], opts: RunOptions): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${opts.what} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}
