// The Display1 contract against the fake peer (the same suite runs against the real QEMU in
// test/integration/qemu-display1.real.test.ts).
import { display1Contract } from '../contracts/qemu-display1.contract';
import { FakeQemuPeer } from '../fakes/qemu-peer';

display1Contract('fake peer', async (o) => {
  const fake = await FakeQemuPeer.start(o);
  return { kill: () => fake.stop(), stop: () => fake.stop() };
});
