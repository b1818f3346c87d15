// The grab-next hotkey in the forwarder and the input bridge (hand-over between bridges): it
// fires once all keys are up, its completing key reaches no guest, and a press is handled once.
import { describe, expect, it } from 'vitest';
import { EV_KEY, EV_SYN, SYN_REPORT } from '../../src/input/events';
import { InputForwarder } from '../../src/input/forwarder';
import { parseHotkey } from '../../src/input/hotkey';
import { RecordingVmInput } from '../fakes/input';

const KEY_A = 30;
const KEY_N = 49;
const KEY_LEFTCTRL = 29;
const KEY_RIGHTALT = 100;
const key = (code: number, value: number, timeUs = 0) => [
  { type: EV_KEY, code, value, timeUs },
  { type: EV_SYN, code: SYN_REPORT, value: 0, timeUs },
];

function setup(mode: 'guest' | 'host' = 'guest') {
  const vm = new RecordingVmInput({ absolute: false });
  const fired: Array<[number, boolean]> = [];
  const fw = new InputForwarder(vm, {
    hotkey: parseHotkey('ctrl-ctrl'),
    nextHotkey: parseHotkey('KEY_LEFTCTRL+KEY_RIGHTALT+KEY_N', '--grab-next'),
    onNext: (stamp, forwarding) => fired.push([stamp, forwarding]),
    callBudget: null,
  });
  fw.addDevice('kbd');
  fw.setMode(mode);
  return { vm, fw, fired };
}

const pressCombo = (fw: InputForwarder, stamp: number) => {
  fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
  fw.handleEvents('kbd', key(KEY_RIGHTALT, 1));
  fw.handleEvents('kbd', key(KEY_N, 1, stamp));
};
const releaseCombo = (fw: InputForwarder) => {
  fw.handleEvents('kbd', key(KEY_N, 0));
  fw.handleEvents('kbd', key(KEY_RIGHTALT, 0));
  fw.handleEvents('kbd', key(KEY_LEFTCTRL, 0));
};

describe('grab-next hotkey', () => {
  it('fires once every key is up, with the completing press time and "forwarding"', () => {
    const { fw, fired } = setup();
    pressCombo(fw, 1234);
    fw.handleEvents('kbd', key(KEY_N, 0));
    fw.handleEvents('kbd', key(KEY_RIGHTALT, 0));
    expect(fired).toEqual([]);
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 0));
    expect(fired).toEqual([[1234, true]]);
  });

  it('the key that completes the combination never reaches the guest', () => {
    const { vm, fw } = setup();
    pressCombo(fw, 1);
    releaseCombo(fw);
    expect(vm.calls.filter((c) => 'qnum' in c && c.qnum === 0x31)).toEqual([]); // qnum of KEY_N
  });

  it('changes no mode by itself (the status bus decides who takes the devices)', () => {
    const { fw } = setup();
    pressCombo(fw, 1);
    releaseCombo(fw);
    expect(fw.mode).toBe('guest');
  });

  it('fires in host mode too, saying the guest did not have the input', () => {
    const { vm, fw, fired } = setup('host');
    pressCombo(fw, 77);
    releaseCombo(fw);
    expect(fired).toEqual([[77, false]]);
    expect(vm.calls).toEqual([]);
  });

  it('typing after it is forwarded as usual', () => {
    const { vm, fw } = setup();
    pressCombo(fw, 1);
    releaseCombo(fw);
    vm.calls.length = 0;
    fw.handleEvents('kbd', [...key(KEY_A, 1), ...key(KEY_A, 0)]);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
  });
});
