// The grab-next hotkey in the forwarder and the input bridge (hand-over between bridges): it
// fires once all keys are up, its completing key reaches no guest, and a press is handled once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EV_KEY, EV_REL, EV_SYN, REL_WHEEL, SYN_REPORT } from '../../src/input/events';
import { HOLD_BACK_MS, InputForwarder } from '../../src/input/forwarder';
import { parseHotkey } from '../../src/input/hotkey';
import { InputBridge } from '../../src/input/bridge';
import { FakeEventSource, RecordingVmInput, sentAfterAttach } from '../fakes/input';

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

  it('a device repeating a held-back key without its release holds it back once (bounded state)', () => {
    const { vm, fw } = setup();
    for (let i = 0; i < 1000; i++) fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
    // Private state, read on purpose: the guarantee is that a hostile device cannot grow it.
    expect((fw as unknown as { heldBack: unknown[] }).heldBack).toHaveLength(1);
    fw.handleEvents('kbd', key(KEY_A, 1));
    expect(vm.calls.filter((c) => c.op === 'keyPress').length).toBe(2);
  });

  it('no key of the combination reaches the guest, the held-back Ctrl and Alt included', () => {
    const { vm, fw } = setup();
    pressCombo(fw, 1);
    releaseCombo(fw);
    expect(vm.calls).toEqual([]);
  });

  it('a held-back hotkey key is pressed before another key: Ctrl+A reaches the guest in order', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
    expect(vm.calls).toEqual([]);
    fw.handleEvents('kbd', [...key(KEY_A, 1), ...key(KEY_A, 0), ...key(KEY_LEFTCTRL, 0)]);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0x1d },
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1d },
    ]);
  });

  it('a hotkey key tapped alone reaches the guest as a tap', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', [...key(KEY_RIGHTALT, 1), ...key(KEY_RIGHTALT, 0)]);
    expect(vm.calls).toEqual([
      { op: 'keyPress', qnum: 0xb8 },
      { op: 'keyRelease', qnum: 0xb8 },
    ]);
  });

  it('a held-back hotkey key is pressed before the mouse moves (Ctrl+wheel, Ctrl+drag)', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
    fw.handleEvents('kbd', [{ type: EV_REL, code: REL_WHEEL, value: 1, timeUs: 0 }, { type: EV_SYN, code: SYN_REPORT, value: 0, timeUs: 0 }]);
    expect(vm.calls[0]).toEqual({ op: 'keyPress', qnum: 0x1d });
    expect(vm.calls.length).toBe(3); // then the wheel notch: press and release of button 3
  });

  describe('a held-back key that does not go on to the combination (HOLD_BACK_MS)', () => {
    afterEach(() => vi.useRealTimers());

    it('a hotkey key held alone reaches the guest HOLD_BACK_MS after its press, with no other event', () => {
      vi.useFakeTimers();
      const { vm, fw } = setup();
      fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
      vi.advanceTimersByTime(HOLD_BACK_MS - 1);
      expect(vm.calls).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(vm.calls).toEqual([{ op: 'keyPress', qnum: 0x1d }]);
      fw.handleEvents('kbd', key(KEY_LEFTCTRL, 0));
      expect(vm.calls).toEqual([
        { op: 'keyPress', qnum: 0x1d },
        { op: 'keyRelease', qnum: 0x1d },
      ]);
    });

    it('each key of the combination restarts the wait: a chord typed key by key inside it reaches no guest', () => {
      vi.useFakeTimers();
      const { vm, fw, fired } = setup();
      fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
      vi.advanceTimersByTime(HOLD_BACK_MS - 50);
      fw.handleEvents('kbd', key(KEY_RIGHTALT, 1));
      vi.advanceTimersByTime(HOLD_BACK_MS - 50);
      fw.handleEvents('kbd', key(KEY_N, 1, 9));
      vi.advanceTimersByTime(10 * HOLD_BACK_MS);
      releaseCombo(fw);
      vi.advanceTimersByTime(10 * HOLD_BACK_MS);
      expect(vm.calls).toEqual([]);
      expect(fired).toEqual([[9, true]]);
    });

    it('a chord slower than the wait still fires; the guest saw its first key pressed and released, nothing stays down', () => {
      vi.useFakeTimers();
      const { vm, fw, fired } = setup();
      fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
      vi.advanceTimersByTime(HOLD_BACK_MS);
      fw.handleEvents('kbd', key(KEY_RIGHTALT, 1));
      fw.handleEvents('kbd', key(KEY_N, 1, 5));
      releaseCombo(fw);
      expect(fired).toEqual([[5, true]]);
      expect(vm.calls).toEqual([
        { op: 'keyPress', qnum: 0x1d },
        { op: 'keyRelease', qnum: 0x1d },
      ]);
      expect(fw.guestDown()).toEqual({ keys: [], buttons: [] });
    });

    it('going to the host, or the forwarder going away, ends the wait: nothing is sent later', () => {
      vi.useFakeTimers();
      const a = setup();
      a.fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
      a.fw.setMode('host');
      const b = setup();
      b.fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
      b.fw.dispose();
      vi.advanceTimersByTime(10 * HOLD_BACK_MS);
      expect(a.vm.calls).toEqual([]);
      expect(b.vm.calls).toEqual([]);
    });
  });

  it('going to the host forgets held-back keys: their release sends nothing', () => {
    const { vm, fw } = setup();
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 1));
    fw.setMode('host');
    fw.handleEvents('kbd', key(KEY_LEFTCTRL, 0));
    expect(vm.calls).toEqual([]);
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

describe('InputBridge hand-over', () => {
  /** A VM whose key releases QEMU answers only when the test says so. */
  class SlowReleaseVm extends RecordingVmInput {
    readonly pending: Array<() => void> = [];
    override keyRelease(qnum: number): Promise<void> {
      void super.keyRelease(qnum);
      return new Promise((r) => this.pending.push(r));
    }
  }

  function bridgeSetup(opts: { startInHost?: boolean } = {}) {
    const kbd = new FakeEventSource('/dev/input/by-id/kbd');
    const fired: Array<[number, boolean]> = [];
    const bridge = new InputBridge({
      replay: [kbd.path],
      grabToggle: 'none',
      grabNext: 'KEY_LEFTCTRL+KEY_RIGHTALT+KEY_N',
      startInHost: opts.startInHost,
      onGrabNext: (stamp, forwarding) => fired.push([stamp, forwarding]),
      watcher: { open: () => kbd },
    });
    const vm = new SlowReleaseVm();
    bridge.start();
    bridge.setVm(vm);
    return { bridge, kbd, vm, fired };
  }
  const combo = (kbd: FakeEventSource, stamp: number) => {
    for (const [code, value] of [
      [KEY_LEFTCTRL, 1],
      [KEY_RIGHTALT, 1],
      [KEY_N, 1],
      [KEY_N, 0],
      [KEY_RIGHTALT, 0],
      [KEY_LEFTCTRL, 0],
    ])
      kbd.push(key(code, value, stamp));
  };

  it('releaseForHandOver lets the device go at once and resolves only once QEMU answered the release of every held key', async () => {
    const { bridge, kbd, vm } = bridgeSetup();
    kbd.push(key(KEY_A, 1));
    expect(kbd.grabbed).toBe(true);
    let done = false;
    const released = bridge.releaseForHandOver().then(() => (done = true));
    expect(kbd.grabbed).toBe(false);
    expect(sentAfterAttach(vm)).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    vm.pending.forEach((r) => r());
    await released;
    expect(bridge.forwardMode).toBe('host');
  });

  it('takeOver sends input to the guest and grabs the devices', () => {
    const { bridge, kbd } = bridgeSetup({ startInHost: true });
    expect(kbd.grabbed).toBe(false);
    bridge.takeOver(5);
    expect(bridge.forwardMode).toBe('guest');
    expect(kbd.grabbed).toBe(true);
  });

  it('a press taken over for is not acted on again when the bridge reads it later', () => {
    const { bridge, kbd, fired } = bridgeSetup({ startInHost: true });
    bridge.takeOver(42);
    combo(kbd, 42);
    expect(fired).toEqual([]);
    combo(kbd, 43);
    expect(fired).toEqual([[43, true]]);
  });

  it('forwardingAtNext answers for the moment the press fired, not for now', () => {
    const { bridge, kbd } = bridgeSetup();
    combo(kbd, 7);
    bridge.setForwardMode('host'); // the hand-over released it meanwhile
    expect(bridge.forwardingAtNext(7)).toBe(true);
    expect(bridge.forwardingAtNext(8)).toBe(false); // a press not seen yet: the state now
  });
});
