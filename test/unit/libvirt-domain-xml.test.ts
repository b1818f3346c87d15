// Reading libvirt's domain XML (virDomainGetXMLDesc): where the D-Bus display is, and what
// `doctor --libvirt` says is missing. The XML below is what libvirt 9.0 wrote for the test domains
// (live XML of a running session domain; the persistent XML of a p2p one).
import { describe, expect, it } from 'vitest';
import { checkDomainDisplay, parseXml, readDomainXml } from '../../src/libvirt';

const LIVE = `<domain type='qemu' id='4'>
  <name>qdb-lv-1</name>
  <uuid>f3312980-7c20-4747-8bb2-f11af9b5cfd0</uuid>
  <devices>
    <!-- a comment -->
    <input type='keyboard' bus='virtio'><alias name='input0'/></input>
    <input type='tablet' bus='virtio'/>
    <input type='mouse' bus='ps2'/>
    <graphics type='spice' autoport='yes'/>
    <graphics type='dbus' address='unix:path=/run/user/1001/libvirt/qemu/run/dbus/4-qdb-lv-1-dbus.sock'>
      <audio id='1'/>
    </graphics>
    <sound model='ich9'>
      <codec type='duplex'/>
      <audio id='1'/>
    </sound>
    <audio id='1' type='dbus'/>
  </devices>
  <seclabel type='none' model='none'/>
</domain>`;

describe('readDomainXml', () => {
  it('finds the live bus address of the dbus display, its index among <graphics> and the domain id', () => {
    const d = readDomainXml(LIVE);
    expect(d).toMatchObject({ name: 'qdb-lv-1', uuid: 'f3312980-7c20-4747-8bb2-f11af9b5cfd0', id: 4 });
    expect(d.graphics).toEqual({ index: 1, p2p: false, address: 'unix:path=/run/user/1001/libvirt/qemu/run/dbus/4-qdb-lv-1-dbus.sock', audioId: '1' });
  });

  it("reads p2p='yes' (no address) and a domain that is not running (no id)", () => {
    const d = readDomainXml(`<domain type="qemu"><name>p</name><devices><graphics type="dbus" p2p="yes"/></devices></domain>`);
    expect(d.id).toBeUndefined();
    expect(d.graphics).toEqual({ index: 0, p2p: true, address: undefined, audioId: undefined });
  });

  it('decodes entities in attributes and text', () => {
    const d = readDomainXml(`<domain><name>a&amp;b</name><devices><graphics type='dbus' address='unix:path=/tmp/x&apos;y'/></devices></domain>`);
    expect(d.name).toBe('a&b');
    expect(d.graphics?.address).toBe("unix:path=/tmp/x'y");
  });

  it('rejects malformed XML instead of guessing', () => {
    expect(() => parseXml('<domain><devices></domain>')).toThrow(/unbalanced/);
  });
});

describe('checkDomainDisplay (doctor --libvirt)', () => {
  it('passes a domain with the display, dbus audio wired to it and to a sound card, keyboard and tablet', () => {
    expect(checkDomainDisplay(readDomainXml(LIVE)).map((f) => f.state)).toEqual(['ok', 'ok', 'ok', 'ok']);
  });

  it("names the <audio type='dbus'/> to add when it is missing", () => {
    const xml = `<domain><name>n</name><devices><graphics type='dbus'/><sound model='ich9'/><input type='keyboard'/><input type='tablet'/></devices></domain>`;
    const f = checkDomainDisplay(readDomainXml(xml));
    expect(f.filter((x) => x.state === 'fail')).toEqual([{ state: 'fail', what: "no <audio type='dbus'/>: the guest's sound cannot reach the bridge", add: "<audio id='1' type='dbus'/>" }]);
  });

  it("names the <graphics type='dbus'/> to add when the domain has no D-Bus display", () => {
    const xml = `<domain><name>n</name><devices><graphics type='spice'/><audio id='2' type='dbus'/><sound model='ich9'><audio id='2'/></sound></devices></domain>`;
    const f = checkDomainDisplay(readDomainXml(xml));
    expect(f[0]).toEqual({ state: 'fail', what: "no <graphics type='dbus'/>: QEMU has no D-Bus display to attach to", add: "<graphics type='dbus'><audio id='2'/></graphics>" });
  });

  it('says when the dbus audio is not wired to the display', () => {
    const xml = `<domain><name>n</name><devices><graphics type='dbus'/><audio id='1' type='dbus'/><sound model='ich9'><audio id='1'/></sound></devices></domain>`;
    const f = checkDomainDisplay(readDomainXml(xml));
    expect(f[1]).toEqual({ state: 'fail', what: "<audio id='1' type='dbus'/> is not wired to the display", add: "<graphics type='dbus'><audio id='1'/></graphics>" });
  });
});
