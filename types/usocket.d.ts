// Types for usocket 1.1.0 (it ships none). Import it through src/qemu/usocket.ts, which works
// around its close-then-GC use-after-free.
declare module 'usocket' {
  import { Duplex } from 'stream';
  import { EventEmitter } from 'events';
  export class USocket extends Duplex {
    constructor(opts: { fd?: number; path?: string } | string, cb?: () => void);
    fd?: number;
    write(chunk: unknown, cb?: (err?: Error | null) => void): boolean;
  }
  export class UServer extends EventEmitter {
    constructor();
    fd?: number;
    listen(path: string, cb?: () => void): void;
    listen(path: string, backlog: number, cb?: () => void): void;
    close(): void;
  }
}
