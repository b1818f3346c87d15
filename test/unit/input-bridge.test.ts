// InputBridge policy with fake devices: exclusive grab while forwarding, release on toggle,
// LED sync to grabbed keyboards, --no-grab, VM gone / back, EBUSY grabs.
import { describe, expect, it } from 'vitest';
import { InputBridge } from '../../src/input/bridge';
import { EvdevSource } from '../../src/input/device';
import { EV_KEY, EV_SYN, SYN_REPORT } from '../../src/input/events';
import { ATTACH_RELEASES, FakeEvdevBackend, FakeEventSource, FakeNativeDevice, RecordingVmInput, sentAfterAttach, FAKE_KEYBOARD_INFO } from '../fakes/input';
import { EventScript } from '../../src/input/replay-writer';
import { lineLogger } from '../fakes/logger';

function setup(opts: { grab?: boolean; grabToggle?: string; startInHost?: boolean } = {}) {
  const kbd = new FakeEventSource('/dev/input/by-id/kbd');
  const mouse = new FakeEventSource('/dev/input/by-id/mouse');
  const devices: Record<string, FakeEventSource> = { [kbd.path]: kbd, [mouse.path]: mouse };
  const logs: string[] = [];
  const bridge = new InputBridge({
    replay: [kbd.path, mouse.path],
    grab: opts.grab,
    grabToggle: opts.grabToggle,
    startInHost: opts.startInHost,
    log: lineLogger((m) => logs.push(m), 'input'),
    watcher: { open: (p) => devices[p] },
  });
  const vm = new RecordingVmInput();
  return { bridge, vm, kbd, mouse, logs };
}

const feed = (src: FakeEventSource, s: EventScript) => src.push(s.events.map((e) => ({ timeUs: 0, ...e })));

const sent = sentAfterAttach;

const KEY_ENTER = 28;
const KEY_LEFTSHIFT = 42;
const KEYBOARD = FAKE_KEYBOARD_INFO;

/** A bridge over one EvdevSource whose (fake) native device has `held` down when it is opened. */
function evdevSetup(held: number[]) {
  let dev: FakeNativeDevice | undefined;
  const logs: string[] = [];
  const bridge = new InputBridge({
    replay: ['/dev/input/by-id/usb-kbd-event-kbd'],
    log: lineLogger((m) => logs.push(m), 'input'),
    watcher: {
      open: (p) => {
        const backend = new FakeEvdevBackend(KEYBOARD);
        const src = new EvdevSource(p, backend);
        dev = backend.last!;
        for (const k of held) dev.keyState.add(k);
        return src;
      },
    },
  });
  const vm = new RecordingVmInput();
  bridge.setVm(vm);
  bridge.start();
  return { bridge, vm, dev: dev!, logs };
}

describe('InputBridge', () => {
  it('grabs every device while forwarding and applies the guest LEDs on grab', () => {
    const { bridge, vm, kbd, mouse } = setup();
    vm.modifiers = 4; // Caps Lock on in the guest
    bridge.setVm(vm);
    bridge.start();
    expect(kbd.grabbed && mouse.grabbed).toBe(true);
    expect(kbd.leds).toBe(4);
  });

  it('LED changes in the guest (Keyboard.Modifiers) go to the grabbed keyboards', () => {
    const { bridge, vm, kbd } = setup();
    bridge.setVm(vm);
    bridge.start();
    vm.setModifiers(2);
    expect(kbd.leds).toBe(2);
    vm.setModifiers(7);
    expect(kbd.leds).toBe(7);
  });

  it('the hotkey releases the grab (and LEDs stop following the guest); pressing it again re-grabs', () => {
    const { bridge, vm, kbd, mouse } = setup();
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().key(29, 1).key(97, 1).key(29, 0).key(97, 0));
    expect(bridge.forwardMode).toBe('host');
    expect(kbd.grabbed || mouse.grabbed).toBe(false);
    vm.setModifiers(1);
    expect(kbd.leds).toBe(0); // last value applied while grabbed was 0
    feed(kbd, new EventScript().key(29, 1).key(97, 1).key(29, 0).key(97, 0));
    expect(bridge.forwardMode).toBe('guest');
    expect(kbd.grabLog).toEqual([true, false, true]);
    expect(kbd.leds).toBe(1);
  });

  it('--no-grab forwards without ever grabbing', () => {
    const { bridge, vm, kbd, mouse } = setup({ grab: false });
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().tap(30));
    expect(sent(vm).length).toBe(2);
    expect(kbd.grabLog).toEqual([]);
    expect(mouse.grabLog).toEqual([]);
  });

  it('starting in host mode forwards nothing until the hotkey', () => {
    const { bridge, vm, kbd } = setup({ startInHost: true });
    bridge.setVm(vm);
    bridge.start();
    expect(kbd.grabbed).toBe(false);
    feed(kbd, new EventScript().tap(30));
    expect(sent(vm)).toEqual([]);
    feed(kbd, new EventScript().key(29, 1).key(97, 1).key(29, 0).key(97, 0).tap(30));
    expect(kbd.grabbed).toBe(true);
    expect(sent(vm)).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
  });

  it('VM gone: devices are let go (never keep a keyboard grabbed with nowhere to send it); VM back: grabbed again', () => {
    const { bridge, vm, kbd } = setup();
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().key(42, 1));
    bridge.setVm(null);
    expect(kbd.grabbed).toBe(false);
    feed(kbd, new EventScript().key(42, 0).tap(30)); // typed while no VM: nothing queued
    const vm2 = new RecordingVmInput();
    bridge.setVm(vm2);
    expect(kbd.grabbed).toBe(true);
    feed(kbd, new EventScript().tap(48));
    expect(sent(vm2)).toEqual([
      { op: 'keyPress', qnum: 0x30 },
      { op: 'keyRelease', qnum: 0x30 },
    ]);
    expect(sent(vm)).toEqual([{ op: 'keyPress', qnum: 0x2a }]); // the old VM's keys went with it
  });

  it('stop releases held keys and buttons in the guest, then ungrabs and closes the devices', async () => {
    const { bridge, vm, kbd, mouse } = setup();
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().key(42, 1).key(30, 1));
    feed(mouse, new EventScript().key(0x110, 1));
    await bridge.stop();
    expect(vm.stuck()).toEqual({ keys: [], buttons: [], touches: [] });
    expect(kbd.closed && mouse.closed).toBe(true);
    expect(kbd.grabbed).toBe(false);
  });

  it('unplug of one device releases its keys; the other keeps forwarding', () => {
    const { bridge, vm, kbd, mouse } = setup();
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().key(42, 1));
    kbd.disappear('ENODEV');
    expect(vm.stuck().keys).toEqual([]);
    feed(mouse, new EventScript().click(0x111));
    expect(sent(vm).slice(-2)).toEqual([
      { op: 'mousePress', button: 2 },
      { op: 'mouseRelease', button: 2 },
    ]);
  });

  it('a grab refused with EBUSY is logged with what it means, and input still flows', () => {
    const { bridge, vm, kbd, logs } = setup();
    kbd.grab = () => {
      throw Object.assign(new Error('EVIOCGRAB on /dev/input/by-id/kbd: Device or resource busy'), { code: 'EBUSY' });
    };
    bridge.setVm(vm);
    bridge.start();
    expect(logs.join('\n')).toMatch(/grabbing \/dev\/input\/by-id\/kbd failed \(EBUSY\): another program holds it exclusively/);
    feed(kbd, new EventScript().tap(30));
    expect(sent(vm).length).toBe(2);
  });

  it('every attach and re-attach begins with a release of every mouse button, in host mode too', () => {
    const { bridge, vm } = setup({ startInHost: true });
    bridge.start();
    bridge.setVm(vm);
    expect(vm.calls).toEqual(ATTACH_RELEASES);
    bridge.setVm(null);
    bridge.setVm(vm);
    expect(vm.calls).toEqual([...ATTACH_RELEASES, ...ATTACH_RELEASES]);
  });

  it('a key held when forwarding starts: the grab waits for its release, which the host sees (evdev)', () => {
    const { vm, dev, logs } = evdevSetup([KEY_ENTER]); // the Enter that started the bridge
    expect(dev.grabLog).toEqual([]);
    expect(logs.join('\n')).toMatch(/key 28 is down; grabbing once it is released/);
    dev.emit([
      { type: EV_KEY, code: KEY_ENTER, value: 0 },
      { type: EV_SYN, code: SYN_REPORT, value: 0 },
    ]);
    expect(dev.hostSaw).toContainEqual({ type: EV_KEY, code: KEY_ENTER, value: 0 });
    expect(dev.grabLog).toEqual([true]);
    expect(logs[logs.length - 1]).toMatch(/: no key down any more; grabbed$/);
    expect(sent(vm)).toEqual([]); // its press never reached the guest, so neither does the release
    dev.emit([
      { type: EV_KEY, code: 30, value: 1 },
      { type: EV_SYN, code: SYN_REPORT, value: 0 },
    ]);
    expect(dev.hostSaw.some((e) => e.code === 30)).toBe(false); // grabbed: only the guest got it
    expect(sent(vm)).toEqual([{ op: 'keyPress', qnum: 0x1e }]);
  });

  it('while the grab waits, input is forwarded; it is taken only when the last of several keys is up', () => {
    const { vm, dev } = evdevSetup([KEY_LEFTSHIFT]);
    const frame = (code: number, value: number) => [
      { type: EV_KEY, code, value },
      { type: EV_SYN, code: SYN_REPORT, value: 0 },
    ];
    dev.emit(frame(30, 1));
    dev.emit(frame(KEY_LEFTSHIFT, 0));
    expect(dev.grabLog).toEqual([]); // 'a' is still down
    dev.emit(frame(30, 0));
    expect(dev.grabLog).toEqual([true]);
    expect(sent(vm)).toEqual([
      { op: 'keyPress', qnum: 0x1e },
      { op: 'keyRelease', qnum: 0x1e },
    ]);
    expect(dev.hostSaw.filter((e) => e.type === EV_KEY)).toEqual([
      { type: EV_KEY, code: 30, value: 1 },
      { type: EV_KEY, code: KEY_LEFTSHIFT, value: 0 },
      { type: EV_KEY, code: 30, value: 0 },
    ]);
  });

  it('re-attach with a key held: the re-grab waits for the release; VM gone again cancels the wait', () => {
    const { bridge, vm, kbd } = setup();
    bridge.setVm(vm);
    bridge.start();
    bridge.setVm(null);
    feed(kbd, new EventScript().key(KEY_LEFTSHIFT, 1));
    const grabs = () => kbd.grabLog.filter((on) => on).length;
    bridge.setVm(new RecordingVmInput());
    expect([kbd.grabbed, grabs()]).toEqual([false, 1]);
    bridge.setVm(null);
    feed(kbd, new EventScript().key(KEY_LEFTSHIFT, 0));
    expect([kbd.grabbed, grabs()]).toEqual([false, 1]); // no VM: nothing to grab for
    feed(kbd, new EventScript().key(KEY_LEFTSHIFT, 1));
    bridge.setVm(vm);
    feed(kbd, new EventScript().key(KEY_LEFTSHIFT, 0));
    expect([kbd.grabbed, grabs()]).toEqual([true, 2]);
    expect(kbd.hostSaw.filter((e) => e.code === KEY_LEFTSHIFT).map((e) => e.value)).toEqual([1, 0, 1, 0]);
  });

  it('an exception while handling a batch is caught, counted and logged once; later events still go through', () => {
    const { bridge, kbd, logs } = setup();
    class ThrowingVm extends RecordingVmInput {
      throwsLeft = 2;
      override keyPress(qnum: number): Promise<void> {
        if (this.throwsLeft > 0) {
          this.throwsLeft--;
          throw new TypeError('boom');
        }
        return super.keyPress(qnum);
      }
    }
    const vm = new ThrowingVm();
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().key(KEY_ENTER, 1));
    feed(kbd, new EventScript().key(KEY_LEFTSHIFT, 1));
    feed(kbd, new EventScript().key(KEY_ENTER, 0).key(KEY_ENTER, 1));
    expect(bridge.eventErrors).toBe(2);
    expect(logs.filter((l) => l.includes('handling events of /dev/input/by-id/kbd failed (boom)'))).toHaveLength(1);
    expect(sent(vm).filter((c) => c.op === 'keyPress')).toHaveLength(1);
  });

  it('bad selections and hotkeys fail at construction with one clear line', () => {
    expect(() => new InputBridge({ inputs: ['kbd'] })).toThrow(expect.objectContaining({ code: 'EINVALIDINPUT' }));
    expect(() => new InputBridge({ grabToggle: 'ctrl-banana' })).toThrow(expect.objectContaining({ code: 'EINVALIDHOTKEY' }));
  });
});
