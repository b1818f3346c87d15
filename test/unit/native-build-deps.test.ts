// binding.gyp takes its flags from native/pkgconfig.js; a machine without a -dev package must get
// one line naming the Debian package, not a wall of compiler errors. Runs the real pkg-config.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { describe, expect, it } from 'vitest';

const SCRIPT = path.join(__dirname, '../../native/pkgconfig.js');

function run(mode: string, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [SCRIPT, mode], { env, encoding: 'utf8' });
}

describe('native build dependencies (native/pkgconfig.js)', () => {
  it('prints the compiler and linker flags of the installed libraries', () => {
    const cflags = run('--cflags');
    expect(cflags.status, cflags.stderr).toBe(0);
    expect(cflags.stdout).toContain('-I/usr/include/pipewire-0.3');
    const libs = run('--libs');
    expect(libs.status, libs.stderr).toBe(0);
    for (const lib of ['-lpipewire-0.3', '-lpulse', '-levdev', '-lvirt', '-lyuv']) expect(libs.stdout).toContain(lib);
  });

  it('names the Debian packages to install when pkg-config finds none of the libraries', () => {
    // An empty pkg-config search path is what a machine without the -dev packages looks like.
    const r = run('--cflags', { ...process.env, PKG_CONFIG_LIBDIR: '/nonexistent', PKG_CONFIG_PATH: '' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('missing: libpipewire-0.3, libpulse, libevdev, libvirt');
    expect(r.stderr).toContain('sudo apt-get install libpipewire-0.3-dev libpulse-dev libevdev-dev libvirt-dev');
  });
});
