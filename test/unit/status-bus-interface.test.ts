// The status bus interface has one definition (src/service/status-bus/interface.ts); the
// committed introspection XML, the JSON Schema of `status --json` and the name escaping are
// checked against it here. The live object is compared with the XML in
// test/integration/status-bus.test.ts.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { ROUTE_ORDER, emptyCounters } from '../../src/service/route';
import { BRIDGE1, COUNTER_TYPES, INTERFACE, busNameFor, countersFromDict, countersToDict, escapeVmName, unescapeVmName } from '../../src/service/status-bus/interface';
import { routeJson, statusJsonSchema } from '../../src/service/status-bus/json';
import { parseIntrospection } from '../harness/introspection';

const ROOT = path.join(__dirname, '../..');
const XML = path.join(ROOT, 'src/service/status-bus/bridge1.xml');
const SCHEMA = path.join(ROOT, 'docs/status.schema.json');

describe('status bus interface', () => {
  it('bridge1.xml declares exactly the properties and methods of BRIDGE1, with the same types', () => {
    const xml = parseIntrospection(fs.readFileSync(XML, 'utf8'), INTERFACE);
    expect(xml.properties).toEqual(BRIDGE1.properties);
    expect(xml.methods).toEqual(BRIDGE1.methods);
  });

  it('docs/status.schema.json is the schema `status --json` is built with (UPDATE_STATUS_SCHEMA=1 rewrites it)', () => {
    const want = JSON.stringify(statusJsonSchema(), null, 2) + '\n';
    if (process.env.UPDATE_STATUS_SCHEMA) fs.writeFileSync(SCHEMA, want);
    expect(fs.readFileSync(SCHEMA, 'utf8')).toBe(want);
  });

  it('every route has a D-Bus type for each of its counters, and counters survive the round trip', () => {
    for (const name of ROUTE_ORDER) {
      const c = emptyCounters(name, 'somewhere');
      expect(Object.keys(COUNTER_TYPES[name]).sort()).toEqual(Object.keys(c).filter((k) => k !== 'route').sort());
      const dict = Object.fromEntries(countersToDict(c).map(([k, [, v]]) => [k, v]));
      expect(countersFromDict(name, dict)).toEqual(c);
    }
  });

  it("zeros of every route's counters are valid in the --json schema", () => {
    for (const name of ROUTE_ORDER) {
      const r = { name, state: 'idle', reason: '', nextRetryAt: null, summary: name, target: '', counters: emptyCounters(name) };
      expect(routeJson.safeParse(r).success, name).toBe(true);
    }
  });

  it('a VM name becomes one valid bus-name element, and back', () => {
    const cases: [string, string][] = [
      ['win11', 'win11'],
      ['my-vm', 'my_2dvm'],
      ['11', '_311'],
      ['a.b c', 'a_2eb_20c'],
      ['ü', '_c3_bc'],
    ];
    for (const [name, escaped] of cases) {
      expect(escapeVmName(name)).toBe(escaped);
      expect(unescapeVmName(escaped)).toBe(name);
      expect(busNameFor(name)).toMatch(/^io\.github\.qemu_dbus_bridge\.Vm\.[A-Za-z_][A-Za-z0-9_]*$/);
    }
  });

  it('a VM name too long for a bus name is hashed, still unique per name and within 255 bytes', () => {
    const a = busNameFor('x'.repeat(300));
    const b = busNameFor('x'.repeat(299) + 'y');
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThanOrEqual(255);
  });
});
