// scripts/setup.sh run by a user who is not root, on a machine missing a Debian package: it must
// stop before touching anything and print the exact apt-get line to run. The missing package is
// simulated with a dpkg-query shim in front of PATH; the script itself runs for real.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../harness/procs';

const SETUP = path.join(__dirname, '../../scripts/setup.sh');

describe('scripts/setup.sh', () => {
  it('as a normal user with packages missing: prints the sudo apt-get line and exits 1', () => {
    const shims = tempDir('setup-shim');
    fs.chmodSync(shims, 0o755);
    // Every package reports installed except sox and busybox-static.
    fs.writeFileSync(
      path.join(shims, 'dpkg-query'),
      '#!/bin/sh\nfor a; do p=$a; done\ncase "$p" in sox|busybox-static) exit 1;; *) printf "ii ";; esac\n',
      { mode: 0o755 },
    );
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', SETUP], {
      env: { PATH: `${shims}:/usr/bin:/bin`, HOME: shims },
      encoding: 'utf8',
    });
    fs.rmSync(shims, { recursive: true, force: true });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toContain('missing Debian packages');
    expect(r.stderr).toContain('sudo apt-get install --no-install-recommends busybox-static sox');
    expect(r.stderr).not.toContain('npm');
  });
});
