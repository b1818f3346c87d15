#!/usr/bin/env node
// `npm install` of the published package (the `npm pack` tarball): builds the native addon on the
// user's machine against its Node and system libraries. A missing tool or -dev library is named
// with the Debian package that provides it, before any compiler output.
//
// In a clone of the repository this does nothing: scripts/setup.sh builds there (incrementally,
// with the project's own node-gyp), and `npm install` must not compile twice.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');
if (fs.existsSync(path.join(root, 'src', 'cli', 'main.ts'))) process.exit(0);

function fail(problem, fix) {
  process.stderr.write(`\nqemu-dbus-bridge: ${problem}\n  fix: ${fix}\n\n`);
  process.exit(1);
}

// The build tools node-gyp needs, with their Debian packages.
const TOOLS = [
  { cmd: 'c++', args: ['--version'], deb: 'g++' },
  { cmd: 'make', args: ['--version'], deb: 'make' },
  { cmd: 'python3', args: ['--version'], deb: 'python3' },
  { cmd: 'pkg-config', args: ['--version'], deb: 'pkg-config' },
];
const missingTools = TOOLS.filter((t) => spawnSync(t.cmd, t.args, { stdio: 'ignore' }).status !== 0);
if (missingTools.length)
  fail(
    `cannot build the native addon, missing: ${missingTools.map((t) => t.cmd).join(', ')}`,
    `sudo apt-get install ${missingTools.map((t) => t.deb).join(' ')}`,
  );

// The -dev libraries: native/pkgconfig.js (also run by binding.gyp) names the packages and exits 1.
const libs = spawnSync(process.execPath, [path.join(root, 'native', 'pkgconfig.js'), '--cflags'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (libs.status !== 0) process.exit(1);

// node-gyp: npm's own (npm sets npm_config_node_gyp for install scripts), else one on PATH.
const gyp = process.env.npm_config_node_gyp ? [process.execPath, [process.env.npm_config_node_gyp]] : ['node-gyp', []];
const args = ['rebuild', '--jobs=max'];
// Node from Debian or NodeSource ships its headers: use them instead of downloading them.
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
const build = spawnSync(gyp[0], [...gyp[1], ...args], { cwd: root, stdio: 'inherit' });
if (build.error) fail(`cannot run node-gyp (${build.error.code})`, 'install npm with its bundled node-gyp (sudo apt-get install npm), or: npm install -g node-gyp');
if (build.status !== 0) fail('the native addon did not build (compiler output above)', 'report it with the output above');
