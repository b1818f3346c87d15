// The Display1 contract against the real QEMU 7.2 guest (the same suite runs against the fake
// peer in test/unit/qemu-display1.fake.test.ts).
import { display1Contract } from '../contracts/qemu-display1.contract';
import { startGuest } from '../harness/qemu';

display1Contract(
  'QEMU 7.2',
  async (o) => {
    const g = await startGuest({ scenario: 'idle', busAddress: o.busAddress, name: o.name, uuid: o.uuid });
    return {
      kill: async () => {
        g.kill('SIGKILL');
        await g.exited;
      },
      stop: () => g.stop(),
    };
  },
  { slow: true },
);
