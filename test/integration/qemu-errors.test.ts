// What a user sees with real QEMUs: no audio object (audiodev= missing on -display dbus), and two
// VMs on one bus (the second only queued on org.qemu).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDbusDaemon, type DbusDaemon } from '../harness/dbus';
import { startGuest, type Guest } from '../harness/qemu';
import { QemuDbusError, QemuVm } from '../../src/qemu';
import { RecordingAudioOutHandler } from '../fakes/recording-handlers';

const failure = (p: Promise<unknown>): Promise<QemuDbusError> =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => {
      expect(e).toBeInstanceOf(QemuDbusError);
      return e as QemuDbusError;
    },
  );

describe('real QEMU 7.2: errors a user can act on', () => {
  let bus: DbusDaemon;
  const guests: Guest[] = [];

  beforeAll(async () => {
    bus = await startDbusDaemon();
    guests.push(await startGuest({ scenario: 'idle', busAddress: bus.address, name: 'vm-one', audiodev: 'none' }));
    guests.push(await startGuest({ scenario: 'idle', busAddress: bus.address, name: 'vm-two' }));
  });
  afterAll(async () => {
    for (const g of guests) await g.stop();
    await bus?.stop();
  });

  it('two VMs and no name: EVM_AMBIGUOUS naming both; a wrong name: EVM_UNKNOWN listing them', async () => {
    const amb = await failure(QemuVm.connect({ busAddress: bus.address }));
    expect(amb.code).toBe('EVM_AMBIGUOUS');
    expect(amb.message).toMatch(/"vm-one".*"vm-two"/);
    const unk = await failure(QemuVm.connect({ busAddress: bus.address, name: 'vm-three' }));
    expect(unk.code).toBe('EVM_UNKNOWN');
    expect(unk.message).toMatch(/found:.*vm-one.*vm-two/);
  });

  it('the queued second QEMU is reached by its unique name', async () => {
    const vm = await QemuVm.connect({ busAddress: bus.address, name: 'vm-two' });
    try {
      expect(vm.info.name).toBe('vm-two');
      expect(vm.capabilities.audio).toBe(true);
      expect((await vm.console().size()).width).toBeGreaterThan(0);
    } finally {
      await vm.close();
    }
  });

  it('QEMU without audiodev= on -display dbus: ENO_AUDIO with the fix', async () => {
    const vm = await QemuVm.connect({ busAddress: bus.address, name: 'vm-one' });
    try {
      expect(vm.capabilities.audio).toBe(false);
      const err = await failure(vm.addAudioOutListener(new RecordingAudioOutHandler()));
      expect(err.code).toBe('ENO_AUDIO');
      expect(err.message).toContain('Fix:');
      expect(err.fix).toContain('audiodev=');
    } finally {
      await vm.close();
    }
  });
});
