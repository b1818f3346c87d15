// Attaching to the VM through the qemu layer (src/qemu). This file adapts whatever connection
// API src/qemu exposes to the service's Attacher/VmLink contract.
import * as path from 'path';
import type { BridgeConfig } from '../config/schema';
import type { Logger } from '../log';
import { Attacher, CodedError, VmLink } from './route';

export function describeTarget(config: BridgeConfig): string {
  const c = config.connection;
  if (c.qmp) return `VM at QMP socket ${c.qmp}`;
  const vm = c.vm ? `VM '${c.vm}'` : 'the only VM';
  return `${vm} on ${c.address ?? 'the session bus'}`;
}

export function createAttacher(config: BridgeConfig, _log: Logger): Attacher<VmLink> {
  return {
    describe: () => describeTarget(config),
    attach: () => {
      // The qemu layer is being written in parallel; say so instead of pretending to connect.
      let qemu: unknown;
      try {
        qemu = require(path.join(__dirname, '..', 'qemu'));
      } catch {
        qemu = undefined;
      }
      if (!qemu) return Promise.reject(new CodedError('ENOTREADY', 'the QEMU D-Bus layer (src/qemu/index.ts) is not built yet'));
      return Promise.reject(new CodedError('ENOTREADY', 'the QEMU D-Bus layer exists but the service adapter is not wired yet'));
    },
  };
}
