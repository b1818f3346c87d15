// Handlers that record what a listener delivered, for tests of the QEMU D-Bus layer.
import * as fs from 'fs';
import type { AudioInHandler, AudioOutHandler, ConsoleListenerHandler, CursorImage, PcmFormat } from '../../src/qemu/handlers';

export interface ScanoutRecord {
  width: number;
  height: number;
  stride: number;
  format: number;
  bytes: number;
}
export interface UpdateRecord {
  x: number;
  y: number;
  width: number;
  height: number;
  bytes: number;
}

export class RecordingConsoleHandler implements ConsoleListenerHandler {
  scanouts: ScanoutRecord[] = [];
  updates: UpdateRecord[] = [];
  maps: { fd: number; offset: number; width: number; height: number; stride: number; format: number; head: Buffer }[] = [];
  mapUpdates: [number, number, number, number][] = [];
  disables = 0;
  cursors: CursorImage[] = [];
  mouse: [number, number, boolean][] = [];
  /** copy of the last Scanout's first bytes, to check content */
  lastScanoutHead = Buffer.alloc(0);
  constructor(private readonly withMap = false) {
    if (!withMap) this.scanoutMap = undefined;
    if (!withMap) this.updateMap = undefined;
  }
  scanout(width: number, height: number, stride: number, format: number, data: Uint8Array): void {
    this.scanouts.push({ width, height, stride, format, bytes: data.byteLength });
    this.lastScanoutHead = Buffer.from(data.subarray(0, 16));
  }
  update(x: number, y: number, width: number, height: number, _stride: number, _format: number, data: Uint8Array): void {
    this.updates.push({ x, y, width, height, bytes: data.byteLength });
  }
  scanoutMap?: ConsoleListenerHandler['scanoutMap'] = (fd, offset, width, height, stride, format) => {
    // pread the first bytes of the mapped frame, then close: the handler owns the fd.
    const head = Buffer.alloc(16);
    fs.readSync(fd, head, 0, 16, offset);
    fs.closeSync(fd);
    this.maps.push({ fd, offset, width, height, stride, format, head });
  };
  updateMap?: ConsoleListenerHandler['updateMap'] = (x, y, w, h) => {
    this.mapUpdates.push([x, y, w, h]);
  };
  disable(): void {
    this.disables++;
  }
  cursorDefine(cursor: CursorImage): void {
    this.cursors.push({ ...cursor, data: Buffer.from(cursor.data) });
  }
  mouseSet(x: number, y: number, on: boolean): void {
    this.mouse.push([x, y, on]);
  }
}

export class RecordingAudioOutHandler implements AudioOutHandler {
  inits: { id: bigint; format: PcmFormat }[] = [];
  finis: bigint[] = [];
  enabled: [bigint, boolean][] = [];
  volumes: [bigint, boolean, number[]][] = [];
  writes = 0;
  bytes = 0;
  nonZeroBytes = 0;
  init(id: bigint, format: PcmFormat): void {
    this.inits.push({ id, format });
  }
  fini(id: bigint): void {
    this.finis.push(id);
  }
  setEnabled(id: bigint, enabled: boolean): void {
    this.enabled.push([id, enabled]);
  }
  setVolume(id: bigint, mute: boolean, volume: Uint8Array): void {
    this.volumes.push([id, mute, [...volume]]);
  }
  write(_id: bigint, data: Uint8Array): void {
    this.writes++;
    this.bytes += data.byteLength;
    for (const b of data) if (b !== 0) this.nonZeroBytes++;
  }
}

export class RecordingAudioInHandler implements AudioInHandler {
  inits: { id: bigint; format: PcmFormat }[] = [];
  finis: bigint[] = [];
  enabled: [bigint, boolean][] = [];
  reads: number[] = [];
  constructor(private readonly fill = 0x11) {}
  init(id: bigint, format: PcmFormat): void {
    this.inits.push({ id, format });
  }
  fini(id: bigint): void {
    this.finis.push(id);
  }
  setEnabled(id: bigint, enabled: boolean): void {
    this.enabled.push([id, enabled]);
  }
  setVolume(): void {}
  read(_id: bigint, size: number): Uint8Array {
    this.reads.push(size);
    return Buffer.alloc(size, this.fill);
  }
}
