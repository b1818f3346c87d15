// What the bridge needs from a libvirt domain's XML (virDomainGetXMLDesc): where the D-Bus
// display is (the live XML's <graphics type='dbus' address=…/> or p2p='yes'), and for `doctor`
// whether the domain has everything the bridge uses. The XML comes from libvirt itself, which
// writes well-formed, entity-escaped XML; the small reader below handles exactly that (elements,
// attributes in either quote, comments, text skipped) and nothing more.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

/** Parses libvirt's XML into a tree (root element). Throws on malformed input. */
export function parseXml(xml: string): XmlElement {
  const root: XmlElement = { name: '#document', attrs: {}, children: [] };
  const stack: XmlElement[] = [root];
  const tag = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<!DOCTYPE[^>]*>|<\/([\w:.-]+)\s*>|<([\w:.-]+)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/g;
  const attr = /([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    if (m[1] !== undefined) {
      const open = stack.pop();
      if (!open || open.name !== m[1]) throw new Error(`unbalanced </${m[1]}>`);
    } else if (m[2] !== undefined) {
      const el: XmlElement = { name: m[2], attrs: {}, children: [] };
      for (let a = attr.exec(m[3]); a; a = attr.exec(m[3])) el.attrs[a[1]] = decode(a[2] ?? a[3]);
      attr.lastIndex = 0;
      stack[stack.length - 1].children.push(el);
      if (m[4] !== '/') stack.push(el);
    }
  }
  if (stack.length !== 1 || root.children.length !== 1) throw new Error('not one well-formed XML element');
  return root.children[0];
}

const childrenNamed = (el: XmlElement | undefined, name: string): XmlElement[] => el?.children.filter((c) => c.name === name) ?? [];

export interface DbusGraphics {
  /** index among the domain's <graphics> elements (virDomainOpenGraphics's idx) */
  index: number;
  p2p: boolean;
  /** the live bus address (unix:path=…); absent in the persistent XML and in p2p mode */
  address?: string;
  /** <audio id='N'/> inside <graphics>: the audio backend the display carries */
  audioId?: string;
}

export interface DomainDisplay {
  name: string;
  uuid: string;
  /** the live id attribute of <domain>; undefined when not running */
  id?: number;
  graphics?: DbusGraphics;
  /** <audio id=… type=…/> backends */
  audio: { id: string; type: string }[];
  /** <sound model=…> devices and the audio id each is wired to */
  sounds: { model: string; audioId?: string }[];
  inputs: { type: string; bus?: string }[];
}

export function readDomainXml(xml: string): DomainDisplay {
  const dom = parseXml(xml);
  if (dom.name !== 'domain') throw new Error(`expected <domain>, got <${dom.name}>`);
  const devices = childrenNamed(dom, 'devices')[0];
  const allGraphics = childrenNamed(devices, 'graphics');
  const gIndex = allGraphics.findIndex((g) => g.attrs.type === 'dbus');
  const g = gIndex >= 0 ? allGraphics[gIndex] : undefined;
  return {
    name: nameOf(xml),
    uuid: uuidOf(xml),
    id: dom.attrs.id !== undefined ? Number(dom.attrs.id) : undefined,
    graphics: g && {
      index: gIndex,
      p2p: g.attrs.p2p === 'yes',
      address: g.attrs.address,
      audioId: childrenNamed(g, 'audio')[0]?.attrs.id,
    },
    audio: childrenNamed(devices, 'audio').map((a) => ({ id: a.attrs.id ?? '', type: a.attrs.type ?? '' })),
    sounds: childrenNamed(devices, 'sound').map((s) => ({ model: s.attrs.model ?? '', audioId: childrenNamed(s, 'audio')[0]?.attrs.id })),
    inputs: childrenNamed(devices, 'input').map((i) => ({ type: i.attrs.type ?? '', bus: i.attrs.bus })),
  };
}

// <name> and <uuid> are text content, which the element reader skips: read them directly.
function textOf(xml: string, tagName: string): string {
  const m = new RegExp(`<${tagName}>([^<]*)</${tagName}>`).exec(xml);
  return m ? decode(m[1].trim()) : '';
}
const nameOf = (xml: string): string => textOf(xml, 'name');
const uuidOf = (xml: string): string => textOf(xml, 'uuid');

export interface XmlFinding {
  state: 'ok' | 'fail' | 'warn';
  what: string;
  /** the XML to add (inside <devices>) when something is missing */
  add?: string;
}

/** What `doctor --libvirt` says about a domain's (persistent) XML. */
export function checkDomainDisplay(d: DomainDisplay): XmlFinding[] {
  const out: XmlFinding[] = [];
  const audioId = d.graphics?.audioId ?? d.audio.find((a) => a.type === 'dbus')?.id ?? '1';
  if (!d.graphics) {
    out.push({ state: 'fail', what: "no <graphics type='dbus'/>: QEMU has no D-Bus display to attach to", add: `<graphics type='dbus'><audio id='${audioId}'/></graphics>` });
  } else {
    out.push({ state: 'ok', what: `<graphics type='dbus'${d.graphics.p2p ? " p2p='yes'" : ''}/> present` });
  }
  const dbusAudio = d.audio.find((a) => a.type === 'dbus' && (d.graphics?.audioId === undefined || a.id === d.graphics.audioId));
  if (!dbusAudio) {
    out.push({ state: 'fail', what: "no <audio type='dbus'/>: the guest's sound cannot reach the bridge", add: `<audio id='${audioId}' type='dbus'/>` });
  } else if (d.graphics && d.graphics.audioId !== dbusAudio.id) {
    out.push({ state: 'fail', what: `<audio id='${dbusAudio.id}' type='dbus'/> is not wired to the display`, add: `<graphics type='dbus'><audio id='${dbusAudio.id}'/></graphics>` });
  } else {
    out.push({ state: 'ok', what: `<audio id='${dbusAudio.id}' type='dbus'/> wired to the display` });
  }
  const wired = d.sounds.filter((s) => dbusAudio && (s.audioId === dbusAudio.id || (s.audioId === undefined && d.audio.length === 1)));
  if (d.sounds.length === 0) {
    out.push({ state: 'fail', what: 'no <sound> device: the guest has no sound card', add: `<sound model='ich9'><codec type='duplex'/><audio id='${audioId}'/></sound>` });
  } else if (dbusAudio && wired.length === 0) {
    out.push({ state: 'fail', what: `no <sound> device uses <audio id='${dbusAudio.id}'/>`, add: `<audio id='${dbusAudio.id}'/> inside <sound model='${d.sounds[0].model}'>` });
  } else if (dbusAudio) {
    out.push({ state: 'ok', what: `sound device ${wired[0].model} plays through it` });
  }
  const hasKeyboard = d.inputs.some((i) => i.type === 'keyboard');
  const hasPointer = d.inputs.some((i) => i.type === 'tablet' || i.type === 'mouse');
  if (!hasKeyboard || !hasPointer) {
    out.push({ state: 'warn', what: 'no keyboard or no pointing device in the XML: forwarded input needs both', add: "<input type='keyboard' bus='virtio'/><input type='tablet' bus='virtio'/>" });
  } else {
    out.push({ state: 'ok', what: `input devices: ${d.inputs.map((i) => `${i.type}${i.bus ? `/${i.bus}` : ''}`).join(', ')}` });
  }
  return out;
}
