#!/usr/bin/env node
// Writes the man page qemu-dbus-bridge(1) (roff) to the path given, from the built CLI's own
// --help texts (src/cli/man.ts does the rendering). Used by `npm pack` (prepack) and the
// Debian package build. Needs the TypeScript build (dist/).
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node scripts/gen-man.js OUT.1\n');
  process.exit(2);
}
const { main, COMMANDS } = require(path.join(root, 'dist/src/cli/main.js'));
const { renderManPage } = require(path.join(root, 'dist/src/cli/man.js'));

// The help as a 72-column terminal would show it (man indents it by 7 more columns).
Object.defineProperty(process.stdout, 'columns', { value: 72, configurable: true });

async function help(args) {
  const lines = [];
  const log = console.log;
  console.log = (...a) => lines.push(a.join(' '));
  let code;
  try {
    code = await main([...args, '--help'], { out: (l) => lines.push(l), err: (l) => lines.push(l), env: process.env });
  } finally {
    console.log = log;
  }
  if (code !== 0 || lines.length === 0) throw new Error(`${args.join(' ') || 'the program'} --help failed (exit ${code})`);
  return lines.join('\n');
}

(async () => {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH || Math.floor(Date.now() / 1000));
  const page = renderManPage({
    version: require(path.join(root, 'package.json')).version,
    date: new Date(epoch * 1000).toISOString().slice(0, 10),
    overview: await help([]),
    commands: await Promise.all(COMMANDS.map(async (name) => ({ name, help: await help([name]) }))),
    configExample: fs.readFileSync(path.join(root, 'docs/config-example.toml'), 'utf8'),
  });
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, page);
})().catch((err) => {
  process.stderr.write(`gen-man: ${err.message}\n`);
  process.exit(1);
});
