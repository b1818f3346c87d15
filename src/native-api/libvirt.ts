// Types of the libvirt connection in the addon (native/libvirt.cc). Policy lives in src/libvirt/.

export interface NativeDomainInfo {
  name: string;
  uuid: string;
  /** -1 while the domain is not running */
  id: number;
  active: boolean;
  /** virDomainState */
  state: number;
}

export type NativeLibvirtEvent =
  /** virConnectDomainEventRegisterAny(VIR_DOMAIN_EVENT_ID_LIFECYCLE): event = virDomainEventType */
  | { kind: 'lifecycle'; name: string; uuid: string; id: number; event: number; detail: number }
  /** virConnectRegisterCloseCallback: reason = virConnectCloseReason */
  | { kind: 'closed'; reason: number };

/** Every promise rejects with an Error whose code is "ELIBVIRT" and `virCode` is libvirt's virErrorNumber. */
export interface NativeLibvirtConnection {
  /** virConnectOpen / virConnectOpenReadOnly ("" = libvirt's default URI); resolves with the URI connected to. */
  open(uri: string, readOnly: boolean, onEvent?: (e: NativeLibvirtEvent) => void): Promise<string>;
  /** key: a UUID string when byUuid, else a name */
  domain(key: string, byUuid: boolean): Promise<NativeDomainInfo>;
  /** virDomainGetXMLDesc: the live XML, or the persistent one when inactive */
  xml(key: string, byUuid: boolean, inactive: boolean): Promise<string>;
  /** virDomainOpenGraphics(dom, index, fd, 0): QEMU serves the display on the peer of `fd` (keep `fd` open until this settles) */
  openGraphics(key: string, byUuid: boolean, index: number, fd: number): Promise<void>;
  close(): Promise<void>;
}

export interface LibvirtNativeApi {
  LibvirtConnection: new () => NativeLibvirtConnection;
}
