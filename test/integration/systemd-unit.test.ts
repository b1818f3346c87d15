// The user unit template checked by the real systemd tools: `systemd-analyze verify --user` must
// print nothing (it exits 0 even on unknown keys, so silence is the criterion; a broken copy
// proves the check can fail), and `systemd-analyze security --offline=yes` exposure is recorded
// and must stay below 2.0 ("OK"): the offline analysis only reads the file, so it is
// deterministic.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../harness/procs';

const UNIT = path.join(__dirname, '../../systemd/qemu-dbus-bridge@.service');
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  dir = tempDir('unit');
  // A user manager context: verify needs XDG_RUNTIME_DIR, and ExecStart (%h/.local/bin/...) must exist.
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'home/.local/bin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'home/.local/bin/qemu-dbus-bridge'), '#!/bin/sh\n', { mode: 0o755 });
  env = { PATH: process.env.PATH, XDG_RUNTIME_DIR: path.join(dir, 'run'), HOME: path.join(dir, 'home') };
});

/** Verify needs an instance name: qemu-dbus-bridge@demo.service -> the template file. */
function instance(template: string, name: string): string {
  const base = path.basename(template).replace('@.service', `@${name}.service`);
  const sub = tempDir('unit-inst');
  fs.copyFileSync(template, path.join(sub, path.basename(template)));
  fs.symlinkSync(path.basename(template), path.join(sub, base));
  return path.join(sub, base);
}

function analyze(args: string[]) {
  const r = spawnSync('systemd-analyze', args, { env, encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`systemd-analyze could not run: ${r.error.message}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('systemd/qemu-dbus-bridge@.service', () => {
  it('passes systemd-analyze verify --user without a single warning', () => {
    const r = analyze(['verify', '--user', instance(UNIT, 'demo')]);
    expect(r.err + r.out).toBe('');
    expect(r.code).toBe(0);
  });

  it('the verify check catches a broken unit (negative control)', () => {
    const broken = path.join(dir, 'broken@.service');
    fs.writeFileSync(broken, fs.readFileSync(UNIT, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
    const r = analyze(['verify', '--user', instance(broken, 'demo')]);
    expect(r.err).toContain("Unknown key 'NoNewPrivilege'");
  });

  it('has the promised shape: notify, watchdog, restart on failure, no restart on config errors', () => {
    const text = fs.readFileSync(UNIT, 'utf8');
    for (const line of [
      'Type=notify',
      'Restart=on-failure',
      'RestartPreventExitStatus=2 3',
      'Environment=LIBVIRT_AUTOSTART=0',
      'PrivateNetwork=yes',
      'RestrictAddressFamilies=AF_UNIX',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'DeviceAllow=char-input rw',
      'DeviceAllow=char-video4linux rw',
      'WantedBy=default.target',
    ])
      expect(text.split('\n')).toContain(line);
    expect(text).toMatch(/^WatchdogSec=\d+/m);
    expect(text).toMatch(/^After=.*\blibvirtd\.service\b/m);
    expect(text).toMatch(/^ExecStart=%h\/\.local\/bin\/qemu-dbus-bridge run --vm %I$/m);
  });

  it('records the systemd-analyze security exposure (offline) and keeps it below 2.0', () => {
    const r = analyze(['security', '--offline=yes', '--user', '--no-pager', instance(UNIT, 'demo')]);
    const m = /Overall exposure level for qemu-dbus-bridge@demo\.service: (\d+\.\d+) (\w+)/.exec(r.out);
    expect(m, r.out + r.err).not.toBeNull();
    const score = Number(m![1]);
    console.log(`systemd-analyze security --offline: exposure ${score} ${m![2]}`);
    expect(score).toBeLessThan(2.0);
  });
});
