// The input source contract (test/contracts/input-source.contract.ts) against the fakes: the
// in-memory source the unit tests use, and the real EvdevSource over the fake EvdevBackend. The
// real plain-stream reader runs it in test/integration/input-source.real.test.ts.
import { EvdevSource } from '../../src/input/device';
import { inputSourceContract } from '../contracts/input-source.contract';
import { FakeEvdevBackend, FakeEventSource } from '../fakes/input';

inputSourceContract('in-memory fake', () => {
  const source = new FakeEventSource('/fake/event0');
  return { source, canGrab: true, feed: (e) => source.push(e), cleanup: () => undefined };
});

inputSourceContract('evdev over the fake EvdevBackend', () => {
  const backend = new FakeEvdevBackend({ name: 'Fake', phys: '', uniq: '', bustype: 3, vendor: 1, product: 2, version: 1, driverVersion: 1, events: {}, abs: {} });
  const source = new EvdevSource('/dev/input/event7', backend);
  const dev = backend.last!;
  return { source, canGrab: true, feed: (e) => dev.emit(e), feedAfterClose: (e) => dev.emit(e), cleanup: () => undefined };
});
