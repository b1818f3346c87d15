#!/usr/bin/env node
// Generates src/qemu/generated/display1.ts (typed proxies + interface tables) from
// src/qemu/generated/display1.xml. Usage: node scripts/gen-display1.js [--check]
// --check exits 1 when the committed file differs from what would be generated.
//
// The XML is plain D-Bus introspection XML (plus org.qemu.bridge.* annotations), so a small
// tag scanner is enough; no XML dependency for a build step.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const xmlFile = path.join(root, 'src/qemu/generated/display1.xml');
const outFile = path.join(root, 'src/qemu/generated/display1.ts');

function attrs(tag) {
  const o = {};
  for (const m of tag.matchAll(/(\w+)="([^"]*)"/g)) o[m[1]] = m[2];
  return o;
}

function parse(xml) {
  xml = xml.replace(/<!--[\s\S]*?-->/g, '');
  const ifaces = [];
  let iface = null;
  let member = null; // method or property being filled
  for (const m of xml.matchAll(/<(\/?)(\w+)([^>]*?)(\/?)>/g)) {
    const [, closing, tag, rest, selfClosing] = m;
    const a = attrs(rest);
    if (closing) {
      if (tag === 'interface') iface = null;
      if (tag === 'method' || tag === 'property') member = null;
      continue;
    }
    switch (tag) {
      case 'interface':
        iface = { name: a.name, methods: [], properties: [], annotations: {} };
        ifaces.push(iface);
        break;
      case 'method':
        member = { kind: 'method', name: a.name, in: [], out: [], annotations: {} };
        iface.methods.push(member);
        if (selfClosing) member = null;
        break;
      case 'property':
        member = { kind: 'property', name: a.name, type: a.type, annotations: {} };
        iface.properties.push(member);
        if (selfClosing) member = null;
        break;
      case 'arg':
        (a.direction === 'out' ? member.out : member.in).push({ name: a.name, type: a.type });
        break;
      case 'annotation':
        (member || iface).annotations[a.name] = a.value;
        break;
      default:
        break;
    }
  }
  return ifaces;
}

function tsType(t, input) {
  switch (t) {
    case 'y': case 'n': case 'q': case 'i': case 'u': case 'd': case 'h': return 'number';
    case 'x': case 't': return 'bigint';
    case 's': case 'o': case 'g': return 'string';
    case 'b': return 'boolean';
    case 'ay': return input ? 'Uint8Array' : 'Buffer';
    case 'as': return 'string[]';
    case 'au': case 'ah': return 'number[]';
    default: return 'unknown';
  }
}

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase()).replace(/^[A-Z]+(?=[A-Z][a-z]|$)|^[A-Z]/, (p) => p.toLowerCase());
const shortName = (iface) => iface.replace(/^org\.qemu\.Display1\./, '').replace(/\./g, '');

function generate(ifaces) {
  const L = [];
  L.push('// GENERATED FILE, do not edit. Source: src/qemu/generated/display1.xml');
  L.push('// Regenerate: node scripts/gen-display1.js   (check: node scripts/gen-display1.js --check)');
  L.push("import { RemoteObject, type CallOptions } from '../remote-object';");
  L.push('');
  L.push('export interface MemberInfo { in: string; out: string; since?: string }');
  L.push('export interface InterfaceInfo {');
  L.push("  side: 'server' | 'client';");
  L.push('  path: string;');
  L.push('  since?: string;');
  L.push('  methods: Record<string, MemberInfo>;');
  L.push('  properties: Record<string, { type: string; since?: string }>;');
  L.push('}');
  L.push('');
  L.push('/** Every interface of display1.xml: signatures, and the QEMU release that added later members. */');
  L.push('export const DISPLAY1: Record<string, InterfaceInfo> = {');
  for (const i of ifaces) {
    const since = i.annotations['org.qemu.bridge.Since'];
    L.push(`  '${i.name}': {`);
    L.push(`    side: '${i.annotations['org.qemu.bridge.Side']}',`);
    L.push(`    path: '${i.annotations['org.qemu.bridge.Path']}',`);
    if (since) L.push(`    since: '${since}',`);
    L.push('    methods: {');
    for (const m of i.methods) {
      const s = m.annotations['org.qemu.bridge.Since'];
      L.push(`      ${m.name}: { in: '${m.in.map((a) => a.type).join('')}', out: '${m.out.map((a) => a.type).join('')}'${s ? `, since: '${s}'` : ''} },`);
    }
    L.push('    },');
    L.push('    properties: {');
    for (const p of i.properties) {
      const s = p.annotations['org.qemu.bridge.Since'];
      L.push(`      ${p.name}: { type: '${p.type}'${s ? `, since: '${s}'` : ''} },`);
    }
    L.push('    },');
    L.push('  },');
  }
  L.push('};');
  L.push('');
  // The interfaces QEMU calls on us: each method's arguments as the tuple the implementation
  // receives (after the dispatcher checked the signature) and its reply, so the served tables
  // (console-listener.ts, audio-listeners.ts) take their types from here instead of restating them.
  const served = ifaces.filter((x) => x.annotations['org.qemu.bridge.Side'] === 'client');
  for (const i of served) {
    L.push(`/** The calls QEMU makes on ${i.name} (we serve it): arguments and reply. */`);
    L.push(`export interface ${shortName(i.name)}Calls {`);
    for (const m of i.methods) {
      const args = m.in.map((a) => `${camel(a.name)}: ${tsType(a.type, true)}`).join(', ');
      let ret = 'void';
      if (m.out.length === 1) ret = tsType(m.out[0].type, false);
      else if (m.out.length > 1) ret = `[${m.out.map((a) => tsType(a.type, false)).join(', ')}]`;
      L.push(`  ${m.name}: { args: [${args}]; reply: ${ret} };`);
    }
    L.push('}');
    L.push('');
    L.push(`/** Properties of ${i.name} (read-only, served by us). */`);
    if (i.properties.length === 0) L.push(`export type ${shortName(i.name)}ServedProperties = Record<never, never>;`);
    else {
      L.push(`export interface ${shortName(i.name)}ServedProperties {`);
      for (const p of i.properties) L.push(`  ${p.name}: ${tsType(p.type, false)};`);
      L.push('}');
    }
    L.push('');
  }
  L.push('/** Served interface name -> its calls and properties. */');
  L.push('export interface ServedInterfaces {');
  for (const i of served) L.push(`  '${i.name}': { calls: ${shortName(i.name)}Calls; properties: ${shortName(i.name)}ServedProperties };`);
  L.push('}');
  L.push('');
  for (const i of ifaces.filter((x) => x.annotations['org.qemu.bridge.Side'] === 'server')) {
    const short = shortName(i.name);
    const ifaceSince = i.annotations['org.qemu.bridge.Since'];
    L.push(`/** Properties of ${i.name}. */`);
    L.push(`export interface ${short}Properties {`);
    for (const p of i.properties) {
      const s = p.annotations['org.qemu.bridge.Since'];
      L.push(`  ${p.name}${s ? '?' : ''}: ${tsType(p.type, false)};${s ? ` // QEMU ${s}+` : ''}`);
    }
    L.push('}');
    L.push('');
    L.push(`/** Typed calls on ${i.name} (${i.annotations['org.qemu.bridge.Path']})${ifaceSince ? `, QEMU ${ifaceSince}+` : ''}. */`);
    L.push(`export class ${short}Proxy {`);
    L.push(`  static readonly interfaceName = '${i.name}';`);
    L.push('  constructor(readonly object: RemoteObject) {}');
    for (const m of i.methods) {
      const s = m.annotations['org.qemu.bridge.Since'];
      const params = m.in.map((a) => `${camel(a.name)}: ${tsType(a.type, true)}`);
      params.push('opts: CallOptions = {}');
      const fdArgs = m.in.filter((a) => a.type === 'h');
      const body = m.in.map((a) => (a.type === 'h' ? String(fdArgs.indexOf(a)) : camel(a.name)));
      let ret = 'void';
      if (m.out.length === 1) ret = tsType(m.out[0].type, false);
      else if (m.out.length > 1) ret = `[${m.out.map((a) => tsType(a.type, false)).join(', ')}]`;
      if (s) L.push(`  /** QEMU ${s}+ */`);
      L.push(`  ${camel(m.name)}(${params.join(', ')}): Promise<${ret}> {`);
      const fdOpt = fdArgs.length ? `{ ...opts, fds: [${fdArgs.map((a) => camel(a.name)).join(', ')}] }` : 'opts';
      L.push(`    return this.object.call<${ret}>('${i.name}', '${m.name}', '${m.in.map((a) => a.type).join('')}', [${body.join(', ')}], ${fdOpt});`);
      L.push('  }');
    }
    for (const p of i.properties) {
      const s = p.annotations['org.qemu.bridge.Since'];
      if (s) L.push(`  /** QEMU ${s}+ (fails with UnknownProperty/InvalidArgs before) */`);
      L.push(`  get${p.name}(timeoutMs?: number): Promise<${tsType(p.type, false)}> {`);
      L.push(`    return this.object.getProperty<${tsType(p.type, false)}>('${i.name}', '${p.name}', timeoutMs);`);
      L.push('  }');
    }
    L.push(`  async getAll(timeoutMs?: number): Promise<${short}Properties> {`);
    L.push(`    return (await this.object.getAllProperties('${i.name}', timeoutMs)) as unknown as ${short}Properties;`);
    L.push('  }');
    L.push(`  onPropertiesChanged(cb: (changed: Partial<${short}Properties>) => void): Promise<() => Promise<void>> {`);
    L.push(`    return this.object.onPropertiesChanged('${i.name}', cb as (c: Record<string, unknown>) => void);`);
    L.push('  }');
    L.push('}');
    L.push('');
  }
  return L.join('\n');
}

const out = generate(parse(fs.readFileSync(xmlFile, 'utf8')));
if (process.argv.includes('--check')) {
  const cur = fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : '';
  if (cur !== out) {
    console.error(`${path.relative(root, outFile)} is stale: run node scripts/gen-display1.js`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(outFile, out);
  console.log(`wrote ${path.relative(root, outFile)}`);
}
