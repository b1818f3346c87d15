// GENERATED FILE, do not edit. Source: src/qemu/generated/display1.xml
// Regenerate: node scripts/gen-display1.js   (check: node scripts/gen-display1.js --check)
import { RemoteObject, type CallOptions } from '../remote-object';

export interface MemberInfo { in: string; out: string; since?: string }
export interface InterfaceInfo {
  side: 'server' | 'client';
  path: string;
  since?: string;
  methods: Record<string, MemberInfo>;
  properties: Record<string, { type: string; since?: string }>;
}

/** Every interface of display1.xml: signatures, and the QEMU release that added later members. */
export const DISPLAY1: Record<string, InterfaceInfo> = {
  'org.qemu.Display1.VM': {
    side: 'server',
    path: '/org/qemu/Display1/VM',
    methods: {
    },
    properties: {
      Name: { type: 's' },
      UUID: { type: 's' },
      ConsoleIDs: { type: 'au' },
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.Console': {
    side: 'server',
    path: '/org/qemu/Display1/Console_N',
    methods: {
      RegisterListener: { in: 'h', out: '' },
      SetUIInfo: { in: 'qqiiuu', out: '' },
    },
    properties: {
      Label: { type: 's' },
      Head: { type: 'u' },
      Type: { type: 's' },
      Width: { type: 'u' },
      Height: { type: 'u' },
      DeviceAddress: { type: 's' },
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.Keyboard': {
    side: 'server',
    path: '/org/qemu/Display1/Console_N',
    methods: {
      Press: { in: 'u', out: '' },
      Release: { in: 'u', out: '' },
    },
    properties: {
      Modifiers: { type: 'u' },
    },
  },
  'org.qemu.Display1.Mouse': {
    side: 'server',
    path: '/org/qemu/Display1/Console_N',
    methods: {
      Press: { in: 'u', out: '' },
      Release: { in: 'u', out: '' },
      SetAbsPosition: { in: 'uu', out: '' },
      RelMotion: { in: 'ii', out: '' },
    },
    properties: {
      IsAbsolute: { type: 'b' },
    },
  },
  'org.qemu.Display1.MultiTouch': {
    side: 'server',
    path: '/org/qemu/Display1/Console_N',
    since: '8.1',
    methods: {
      SendEvent: { in: 'utdd', out: '' },
    },
    properties: {
      MaxSlots: { type: 'i' },
    },
  },
  'org.qemu.Display1.Audio': {
    side: 'server',
    path: '/org/qemu/Display1/Audio',
    methods: {
      RegisterOutListener: { in: 'h', out: '' },
      RegisterInListener: { in: 'h', out: '' },
    },
    properties: {
      NSamples: { type: 'u', since: '10.0' },
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.Clipboard': {
    side: 'server',
    path: '/org/qemu/Display1/Clipboard',
    methods: {
      Register: { in: '', out: '' },
      Unregister: { in: '', out: '' },
      Grab: { in: 'uuas', out: '' },
      Release: { in: 'u', out: '' },
      Request: { in: 'uas', out: 'say' },
    },
    properties: {
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.Chardev': {
    side: 'server',
    path: '/org/qemu/Display1/Chardev_ID',
    methods: {
      Register: { in: 'h', out: '' },
      SendBreak: { in: '', out: '' },
    },
    properties: {
      Name: { type: 's' },
      FEOpened: { type: 'b' },
      Echo: { type: 'b' },
      Owner: { type: 's' },
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.Listener': {
    side: 'client',
    path: '/org/qemu/Display1/Listener',
    methods: {
      Scanout: { in: 'uuuuay', out: '' },
      Update: { in: 'iiiiuuay', out: '' },
      ScanoutDMABUF: { in: 'huuuutb', out: '' },
      UpdateDMABUF: { in: 'iiii', out: '' },
      Disable: { in: '', out: '' },
      MouseSet: { in: 'iii', out: '' },
      CursorDefine: { in: 'iiiiay', out: '' },
    },
    properties: {
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.Listener.Unix.Map': {
    side: 'client',
    path: '/org/qemu/Display1/Listener',
    since: '9.2',
    methods: {
      ScanoutMap: { in: 'huuuuu', out: '' },
      UpdateMap: { in: 'iiii', out: '' },
    },
    properties: {
    },
  },
  'org.qemu.Display1.Listener.Unix.ScanoutDMABUF2': {
    side: 'client',
    path: '/org/qemu/Display1/Listener',
    since: '10.1',
    methods: {
      ScanoutDMABUF2: { in: 'ahuuuuauauuuuutb', out: '' },
    },
    properties: {
    },
  },
  'org.qemu.Display1.AudioOutListener': {
    side: 'client',
    path: '/org/qemu/Display1/AudioOutListener',
    methods: {
      Init: { in: 'tybbuyuub', out: '' },
      Fini: { in: 't', out: '' },
      SetEnabled: { in: 'tb', out: '' },
      SetVolume: { in: 'tbay', out: '' },
      Write: { in: 'tay', out: '' },
    },
    properties: {
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
  'org.qemu.Display1.AudioInListener': {
    side: 'client',
    path: '/org/qemu/Display1/AudioInListener',
    methods: {
      Init: { in: 'tybbuyuub', out: '' },
      Fini: { in: 't', out: '' },
      SetEnabled: { in: 'tb', out: '' },
      SetVolume: { in: 'tbay', out: '' },
      Read: { in: 'tt', out: 'ay' },
    },
    properties: {
      Interfaces: { type: 'as', since: '8.1' },
    },
  },
};

/** The calls QEMU makes on org.qemu.Display1.Listener (we serve it): arguments and reply. */
export interface ListenerCalls {
  Scanout: { args: [width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array]; reply: void };
  Update: { args: [x: number, y: number, width: number, height: number, stride: number, pixmanFormat: number, data: Uint8Array]; reply: void };
  ScanoutDMABUF: { args: [dmabuf: number, width: number, height: number, stride: number, fourcc: number, modifier: bigint, y0Top: boolean]; reply: void };
  UpdateDMABUF: { args: [x: number, y: number, width: number, height: number]; reply: void };
  Disable: { args: []; reply: void };
  MouseSet: { args: [x: number, y: number, on: number]; reply: void };
  CursorDefine: { args: [width: number, height: number, hotX: number, hotY: number, data: Uint8Array]; reply: void };
}

/** Properties of org.qemu.Display1.Listener (read-only, served by us). */
export interface ListenerServedProperties {
  Interfaces: string[];
}

/** The calls QEMU makes on org.qemu.Display1.Listener.Unix.Map (we serve it): arguments and reply. */
export interface ListenerUnixMapCalls {
  ScanoutMap: { args: [handle: number, offset: number, width: number, height: number, stride: number, pixmanFormat: number]; reply: void };
  UpdateMap: { args: [x: number, y: number, width: number, height: number]; reply: void };
}

/** Properties of org.qemu.Display1.Listener.Unix.Map (read-only, served by us). */
export type ListenerUnixMapServedProperties = Record<never, never>;

/** The calls QEMU makes on org.qemu.Display1.Listener.Unix.ScanoutDMABUF2 (we serve it): arguments and reply. */
export interface ListenerUnixScanoutDMABUF2Calls {
  ScanoutDMABUF2: { args: [dmabuf: number[], x: number, y: number, width: number, height: number, offset: number[], stride: number[], numPlanes: number, fourcc: number, backingWidth: number, backingHeight: number, modifier: bigint, y0Top: boolean]; reply: void };
}

/** Properties of org.qemu.Display1.Listener.Unix.ScanoutDMABUF2 (read-only, served by us). */
export type ListenerUnixScanoutDMABUF2ServedProperties = Record<never, never>;

/** The calls QEMU makes on org.qemu.Display1.AudioOutListener (we serve it): arguments and reply. */
export interface AudioOutListenerCalls {
  Init: { args: [id: bigint, bits: number, isSigned: boolean, isFloat: boolean, freq: number, nchannels: number, bytesPerFrame: number, bytesPerSecond: number, be: boolean]; reply: void };
  Fini: { args: [id: bigint]; reply: void };
  SetEnabled: { args: [id: bigint, enabled: boolean]; reply: void };
  SetVolume: { args: [id: bigint, mute: boolean, volume: Uint8Array]; reply: void };
  Write: { args: [id: bigint, data: Uint8Array]; reply: void };
}

/** Properties of org.qemu.Display1.AudioOutListener (read-only, served by us). */
export interface AudioOutListenerServedProperties {
  Interfaces: string[];
}

/** The calls QEMU makes on org.qemu.Display1.AudioInListener (we serve it): arguments and reply. */
export interface AudioInListenerCalls {
  Init: { args: [id: bigint, bits: number, isSigned: boolean, isFloat: boolean, freq: number, nchannels: number, bytesPerFrame: number, bytesPerSecond: number, be: boolean]; reply: void };
  Fini: { args: [id: bigint]; reply: void };
  SetEnabled: { args: [id: bigint, enabled: boolean]; reply: void };
  SetVolume: { args: [id: bigint, mute: boolean, volume: Uint8Array]; reply: void };
  Read: { args: [id: bigint, size: bigint]; reply: Buffer };
}

/** Properties of org.qemu.Display1.AudioInListener (read-only, served by us). */
export interface AudioInListenerServedProperties {
  Interfaces: string[];
}

/** Served interface name -> its calls and properties. */
export interface ServedInterfaces {
  'org.qemu.Display1.Listener': { calls: ListenerCalls; properties: ListenerServedProperties };
  'org.qemu.Display1.Listener.Unix.Map': { calls: ListenerUnixMapCalls; properties: ListenerUnixMapServedProperties };
  'org.qemu.Display1.Listener.Unix.ScanoutDMABUF2': { calls: ListenerUnixScanoutDMABUF2Calls; properties: ListenerUnixScanoutDMABUF2ServedProperties };
  'org.qemu.Display1.AudioOutListener': { calls: AudioOutListenerCalls; properties: AudioOutListenerServedProperties };
  'org.qemu.Display1.AudioInListener': { calls: AudioInListenerCalls; properties: AudioInListenerServedProperties };
}

/** Properties of org.qemu.Display1.VM. */
export interface VMProperties {
  Name: string;
  UUID: string;
  ConsoleIDs: number[];
  Interfaces?: string[]; // QEMU 8.1+
}

/** Typed calls on org.qemu.Display1.VM (/org/qemu/Display1/VM). */
export class VMProxy {
  static readonly interfaceName = 'org.qemu.Display1.VM';
  constructor(readonly object: RemoteObject) {}
  getName(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.VM', 'Name', timeoutMs);
  }
  getUUID(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.VM', 'UUID', timeoutMs);
  }
  getConsoleIDs(timeoutMs?: number): Promise<number[]> {
    return this.object.getProperty<number[]>('org.qemu.Display1.VM', 'ConsoleIDs', timeoutMs);
  }
  /** QEMU 8.1+ (fails with UnknownProperty/InvalidArgs before) */
  getInterfaces(timeoutMs?: number): Promise<string[]> {
    return this.object.getProperty<string[]>('org.qemu.Display1.VM', 'Interfaces', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<VMProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.VM', timeoutMs)) as unknown as VMProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<VMProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.VM', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.Console. */
export interface ConsoleProperties {
  Label: string;
  Head: number;
  Type: string;
  Width: number;
  Height: number;
  DeviceAddress: string;
  Interfaces?: string[]; // QEMU 8.1+
}

/** Typed calls on org.qemu.Display1.Console (/org/qemu/Display1/Console_N). */
export class ConsoleProxy {
  static readonly interfaceName = 'org.qemu.Display1.Console';
  constructor(readonly object: RemoteObject) {}
  registerListener(listener: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Console', 'RegisterListener', 'h', [0], { ...opts, fds: [listener] });
  }
  setUIInfo(widthMm: number, heightMm: number, xoff: number, yoff: number, width: number, height: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Console', 'SetUIInfo', 'qqiiuu', [widthMm, heightMm, xoff, yoff, width, height], opts);
  }
  getLabel(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.Console', 'Label', timeoutMs);
  }
  getHead(timeoutMs?: number): Promise<number> {
    return this.object.getProperty<number>('org.qemu.Display1.Console', 'Head', timeoutMs);
  }
  getType(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.Console', 'Type', timeoutMs);
  }
  getWidth(timeoutMs?: number): Promise<number> {
    return this.object.getProperty<number>('org.qemu.Display1.Console', 'Width', timeoutMs);
  }
  getHeight(timeoutMs?: number): Promise<number> {
    return this.object.getProperty<number>('org.qemu.Display1.Console', 'Height', timeoutMs);
  }
  getDeviceAddress(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.Console', 'DeviceAddress', timeoutMs);
  }
  /** QEMU 8.1+ (fails with UnknownProperty/InvalidArgs before) */
  getInterfaces(timeoutMs?: number): Promise<string[]> {
    return this.object.getProperty<string[]>('org.qemu.Display1.Console', 'Interfaces', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<ConsoleProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.Console', timeoutMs)) as unknown as ConsoleProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<ConsoleProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.Console', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.Keyboard. */
export interface KeyboardProperties {
  Modifiers: number;
}

/** Typed calls on org.qemu.Display1.Keyboard (/org/qemu/Display1/Console_N). */
export class KeyboardProxy {
  static readonly interfaceName = 'org.qemu.Display1.Keyboard';
  constructor(readonly object: RemoteObject) {}
  press(keycode: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Keyboard', 'Press', 'u', [keycode], opts);
  }
  release(keycode: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Keyboard', 'Release', 'u', [keycode], opts);
  }
  getModifiers(timeoutMs?: number): Promise<number> {
    return this.object.getProperty<number>('org.qemu.Display1.Keyboard', 'Modifiers', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<KeyboardProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.Keyboard', timeoutMs)) as unknown as KeyboardProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<KeyboardProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.Keyboard', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.Mouse. */
export interface MouseProperties {
  IsAbsolute: boolean;
}

/** Typed calls on org.qemu.Display1.Mouse (/org/qemu/Display1/Console_N). */
export class MouseProxy {
  static readonly interfaceName = 'org.qemu.Display1.Mouse';
  constructor(readonly object: RemoteObject) {}
  press(button: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Mouse', 'Press', 'u', [button], opts);
  }
  release(button: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Mouse', 'Release', 'u', [button], opts);
  }
  setAbsPosition(x: number, y: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Mouse', 'SetAbsPosition', 'uu', [x, y], opts);
  }
  relMotion(dx: number, dy: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Mouse', 'RelMotion', 'ii', [dx, dy], opts);
  }
  getIsAbsolute(timeoutMs?: number): Promise<boolean> {
    return this.object.getProperty<boolean>('org.qemu.Display1.Mouse', 'IsAbsolute', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<MouseProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.Mouse', timeoutMs)) as unknown as MouseProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<MouseProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.Mouse', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.MultiTouch. */
export interface MultiTouchProperties {
  MaxSlots: number;
}

/** Typed calls on org.qemu.Display1.MultiTouch (/org/qemu/Display1/Console_N), QEMU 8.1+. */
export class MultiTouchProxy {
  static readonly interfaceName = 'org.qemu.Display1.MultiTouch';
  constructor(readonly object: RemoteObject) {}
  sendEvent(kind: number, numSlot: bigint, x: number, y: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.MultiTouch', 'SendEvent', 'utdd', [kind, numSlot, x, y], opts);
  }
  getMaxSlots(timeoutMs?: number): Promise<number> {
    return this.object.getProperty<number>('org.qemu.Display1.MultiTouch', 'MaxSlots', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<MultiTouchProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.MultiTouch', timeoutMs)) as unknown as MultiTouchProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<MultiTouchProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.MultiTouch', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.Audio. */
export interface AudioProperties {
  NSamples?: number; // QEMU 10.0+
  Interfaces?: string[]; // QEMU 8.1+
}

/** Typed calls on org.qemu.Display1.Audio (/org/qemu/Display1/Audio). */
export class AudioProxy {
  static readonly interfaceName = 'org.qemu.Display1.Audio';
  constructor(readonly object: RemoteObject) {}
  registerOutListener(listener: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Audio', 'RegisterOutListener', 'h', [0], { ...opts, fds: [listener] });
  }
  registerInListener(listener: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Audio', 'RegisterInListener', 'h', [0], { ...opts, fds: [listener] });
  }
  /** QEMU 10.0+ (fails with UnknownProperty/InvalidArgs before) */
  getNSamples(timeoutMs?: number): Promise<number> {
    return this.object.getProperty<number>('org.qemu.Display1.Audio', 'NSamples', timeoutMs);
  }
  /** QEMU 8.1+ (fails with UnknownProperty/InvalidArgs before) */
  getInterfaces(timeoutMs?: number): Promise<string[]> {
    return this.object.getProperty<string[]>('org.qemu.Display1.Audio', 'Interfaces', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<AudioProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.Audio', timeoutMs)) as unknown as AudioProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<AudioProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.Audio', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.Clipboard. */
export interface ClipboardProperties {
  Interfaces?: string[]; // QEMU 8.1+
}

/** Typed calls on org.qemu.Display1.Clipboard (/org/qemu/Display1/Clipboard). */
export class ClipboardProxy {
  static readonly interfaceName = 'org.qemu.Display1.Clipboard';
  constructor(readonly object: RemoteObject) {}
  register(opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Clipboard', 'Register', '', [], opts);
  }
  unregister(opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Clipboard', 'Unregister', '', [], opts);
  }
  grab(selection: number, serial: number, mimes: string[], opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Clipboard', 'Grab', 'uuas', [selection, serial, mimes], opts);
  }
  release(selection: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Clipboard', 'Release', 'u', [selection], opts);
  }
  request(selection: number, mimes: string[], opts: CallOptions = {}): Promise<[string, Buffer]> {
    return this.object.call<[string, Buffer]>('org.qemu.Display1.Clipboard', 'Request', 'uas', [selection, mimes], opts);
  }
  /** QEMU 8.1+ (fails with UnknownProperty/InvalidArgs before) */
  getInterfaces(timeoutMs?: number): Promise<string[]> {
    return this.object.getProperty<string[]>('org.qemu.Display1.Clipboard', 'Interfaces', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<ClipboardProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.Clipboard', timeoutMs)) as unknown as ClipboardProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<ClipboardProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.Clipboard', cb as (c: Record<string, unknown>) => void);
  }
}

/** Properties of org.qemu.Display1.Chardev. */
export interface ChardevProperties {
  Name: string;
  FEOpened: boolean;
  Echo: boolean;
  Owner: string;
  Interfaces?: string[]; // QEMU 8.1+
}

/** Typed calls on org.qemu.Display1.Chardev (/org/qemu/Display1/Chardev_ID). */
export class ChardevProxy {
  static readonly interfaceName = 'org.qemu.Display1.Chardev';
  constructor(readonly object: RemoteObject) {}
  register(stream: number, opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Chardev', 'Register', 'h', [0], { ...opts, fds: [stream] });
  }
  sendBreak(opts: CallOptions = {}): Promise<void> {
    return this.object.call<void>('org.qemu.Display1.Chardev', 'SendBreak', '', [], opts);
  }
  getName(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.Chardev', 'Name', timeoutMs);
  }
  getFEOpened(timeoutMs?: number): Promise<boolean> {
    return this.object.getProperty<boolean>('org.qemu.Display1.Chardev', 'FEOpened', timeoutMs);
  }
  getEcho(timeoutMs?: number): Promise<boolean> {
    return this.object.getProperty<boolean>('org.qemu.Display1.Chardev', 'Echo', timeoutMs);
  }
  getOwner(timeoutMs?: number): Promise<string> {
    return this.object.getProperty<string>('org.qemu.Display1.Chardev', 'Owner', timeoutMs);
  }
  /** QEMU 8.1+ (fails with UnknownProperty/InvalidArgs before) */
  getInterfaces(timeoutMs?: number): Promise<string[]> {
    return this.object.getProperty<string[]>('org.qemu.Display1.Chardev', 'Interfaces', timeoutMs);
  }
  async getAll(timeoutMs?: number): Promise<ChardevProperties> {
    return (await this.object.getAllProperties('org.qemu.Display1.Chardev', timeoutMs)) as unknown as ChardevProperties;
  }
  onPropertiesChanged(cb: (changed: Partial<ChardevProperties>) => void): Promise<() => Promise<void>> {
    return this.object.onPropertiesChanged('org.qemu.Display1.Chardev', cb as (c: Record<string, unknown>) => void);
  }
}
