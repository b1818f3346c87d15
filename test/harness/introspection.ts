// Reading D-Bus introspection XML in tests: the members of one interface, as signatures.

/** Members of interface `iface` in an introspection XML: properties and method signatures. */
export function parseIntrospection(xml: string, iface: string): { properties: Record<string, string>; methods: Record<string, { in: string; out: string }> } {
  const properties: Record<string, string> = {};
  const methods: Record<string, { in: string; out: string }> = {};
  let method: { in: string; out: string } | undefined;
  const all = xml.replace(/<!--[\s\S]*?-->/g, '');
  const start = all.indexOf(`<interface name="${iface}"`);
  const body = start < 0 ? '' : all.slice(start, all.indexOf('</interface>', start));
  for (const m of body.matchAll(/<(\/?)(property|method|arg)\b([^>]*?)(\/?)>/g)) {
    const [, closing, tag, rest, self] = m;
    const attr = (n: string) => new RegExp(`${n}="([^"]*)"`).exec(rest)?.[1] ?? '';
    if (closing) {
      if (tag === 'method') method = undefined;
      continue;
    }
    if (tag === 'property') properties[attr('name')] = attr('type');
    if (tag === 'method') {
      method = methods[attr('name')] = { in: '', out: '' };
      if (self) method = undefined;
    }
    if (tag === 'arg' && method) method[attr('direction') === 'out' ? 'out' : 'in'] += attr('type');
  }
  return { properties, methods };
}
