declare module 'usocket' {
  import { Duplex } from 'stream';
  export class USocket extends Duplex {
    constructor(opts: { fd?: number; path?: string } | string, cb?: () => void);
    fd?: number;
    write(chunk: unknown, cb?: (err?: Error | null) => void): boolean;
  }
}
