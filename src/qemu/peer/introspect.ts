// Introspection XML of a served listener object (QEMU never asks; busctl and d-feet do).
import type { ExportedInterface } from './served';

/** The XML for `path`: the served object's interfaces, or the child node on the way to it. */
export function introspectXml(path: string, servedPath: string, ifaces: Iterable<ExportedInterface>): string {
  const out = ['<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"', ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">', '<node>'];
  if (path === servedPath) {
    for (const i of ifaces) {
      out.push(` <interface name="${i.name}">`);
      for (const [m, d] of Object.entries(i.methods)) {
        out.push(`  <method name="${m}">`);
        for (const t of splitSignature(d.in)) out.push(`   <arg type="${t}" direction="in"/>`);
        for (const t of splitSignature(d.out)) out.push(`   <arg type="${t}" direction="out"/>`);
        out.push('  </method>');
      }
      for (const [p, [t]] of Object.entries(i.properties ?? {})) out.push(`  <property name="${p}" type="${t}" access="read"/>`);
      out.push(' </interface>');
    }
  } else if (servedPath.startsWith(path === '/' ? '/' : `${path}/`)) {
    const rest = servedPath.slice(path === '/' ? 1 : path.length + 1);
    out.push(` <node name="${rest.split('/')[0]}"/>`);
  }
  out.push('</node>');
  return out.join('\n');
}

/** Split a signature into complete types (enough for the simple ones listeners use). */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  const one = (): string => {
    const start = i;
    const c = sig[i++];
    if (c === 'a') one();
    else if (c === '(' || c === '{') {
      const close = c === '(' ? ')' : '}';
      while (sig[i] !== close && i < sig.length) one();
      i++;
    }
    return sig.slice(start, i);
  };
  while (i < sig.length) out.push(one());
  return out;
}
