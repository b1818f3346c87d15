// Public API of the libvirt part: a libvirt domain as the bridge's target. Import from
// 'src/libvirt'. The service uses it to find the VM's display at every attach (bus address or
// p2p socket) and to wake up on lifecycle events; `doctor` uses it to check a domain's XML.
export { LibvirtClient, LibvirtError, DomainEvent, defaultLibvirtUri, isUuid, type DomainInfo, type LifecycleEvent, type LibvirtErrorCode } from './client';
export { locateDisplay, assertMayUseBus, type DisplayTarget } from './display';
export { readDomainXml, checkDomainDisplay, parseXml, type DomainDisplay, type DbusGraphics, type XmlFinding } from './domain-xml';
