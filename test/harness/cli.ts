// The real CLI entry (src/cli/main.ts) bundled for tests that run it in a child process, so they
// test the current sources without needing a fresh dist/. The bundle lives inside the repo
// (.cache/test-cli/) so the addon and node_modules resolve exactly as they do from dist/.
import * as path from 'path';

const ROOT = path.join(__dirname, '../..');

type BuildOptions = Parameters<typeof import('esbuild').buildSync>[0];

function build(options: BuildOptions): void {
  const esbuild = require('esbuild') as typeof import('esbuild');
  esbuild.buildSync({ bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'error', ...options });
}

/** Bundles src/cli/main.ts to .cache/test-cli/<label>-<pid>/cli.js and returns its path. */
export function bundleCli(label: string): string {
  const outfile = path.join(ROOT, '.cache', 'test-cli', `${label}-${process.pid}`, 'cli.js');
  build({ entryPoints: [path.join(ROOT, 'src/cli/main.ts')], outfile, external: ['*.node', 'usocket', 'dbus-native'] });
  return outfile;
}

/**
 * Bundles a TypeScript snippet (imports resolved from the repo root) into outfile. `external`:
 * packages loaded from node_modules at run time instead (usocket must be: its `bindings` call finds
 * the addon relative to the calling file).
 */
export function bundleScript(contents: string, outfile: string, external: string[] = [], alias?: Record<string, string>): void {
  build({ stdin: { contents, resolveDir: ROOT, loader: 'ts', sourcefile: 'script.ts' }, outfile, external: ['*.node', ...external], alias });
}
