#!/usr/bin/env node
// Called by binding.gyp: prints compiler or linker flags for the system libraries the addon
// needs, and fails with the Debian package to install when one is missing, so that a build on
// a machine without e.g. libpipewire-0.3-dev says what to do instead of a wall of gcc errors.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');

// pkg-config module (or header for libyuv, which Debian ships without a .pc file) -> package
const LIBS = [
  { pc: 'libpipewire-0.3', deb: 'libpipewire-0.3-dev' },
  { pc: 'libpulse', deb: 'libpulse-dev' },
  { pc: 'libevdev', deb: 'libevdev-dev' },
  { pc: 'libvirt', deb: 'libvirt-dev' },
  { name: 'libyuv', header: '/usr/include/libyuv.h', libs: ['-lyuv'], deb: 'libyuv-dev' },
];

// In a clone, scripts/setup.sh installs everything; the npm package has no setup script.
const inClone = fs.existsSync(require('path').join(__dirname, '..', 'scripts', 'setup.sh'));

function fail(missing) {
  const debs = missing.map((l) => l.deb).join(' ');
  process.stderr.write(
    `\nqemu-dbus-bridge: cannot build the native addon, missing: ${missing.map((l) => l.pc || l.header).join(', ')}\n` +
      `  fix: sudo apt-get install ${debs}${inClone ? '   (or run: npm run setup)' : ''}\n\n`,
  );
  process.exit(1);
}

const mode = process.argv[2]; // --cflags | --libs
// `--only NAME` (a pkg-config module, or libyuv): the flags of one addon (binding.gyp builds one
// addon per library). Every library is still checked, so a missing one is named at once.
const [filter, filterName] = process.argv.slice(3, 5);
const wanted = (l) => (filter === '--only' ? (l.pc ?? l.name) === filterName : true);
const missing = LIBS.filter((l) => {
  if (l.header) return !fs.existsSync(l.header);
  try {
    execFileSync('pkg-config', ['--exists', l.pc], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
if (missing.length) fail(missing);

const out = [];
for (const l of LIBS.filter(wanted)) {
  if (l.header) {
    if (mode === '--libs') out.push(...l.libs);
    continue;
  }
  out.push(execFileSync('pkg-config', [mode, l.pc], { encoding: 'utf8' }).trim());
}
process.stdout.write(out.join(' ') + '\n');
