// InputBridge policy with fake devices: exclusive grab while forwarding, release on toggle,
// LED sync to grabbed keyboards, --no-grab, VM gone / back, EBUSY grabs.
import { describe, expect, it } from 'vitest';
import { InputBridge } from '../../src/input/bridge';
import { FakeEventSource, RecordingVmInput } from '../../src/input/fakes';
import { EventScript } from '../../src/input/replay-writer';

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
    log: (m) => logs.push(m),
    watcher: { open: (p) => devices[p] },
  });
  const vm = new RecordingVmInput();
  return { bridge, vm, kbd, mouse, logs };
}

const feed = (src: FakeEventSource, s: EventScript) => src.push(s.events.map((e) => ({ timeUs: 0, ...e })));

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
    expect(vm.calls.length).toBe(2);
    expect(kbd.grabLog).toEqual([]);
    expect(mouse.grabLog).toEqual([]);
  });

  it('starting in host mode forwards nothing until the hotkey', () => {
    const { bridge, vm, kbd } = setup({ startInHost: true });
    bridge.setVm(vm);
    bridge.start();
    expect(kbd.grabbed).toBe(false);
    feed(kbd, new EventScript().tap(30));
    expect(vm.calls).toEqual([]);
    feed(kbd, new EventScript().key(29, 1).key(97, 1).key(29, 0).key(97, 0).tap(30));
    expect(kbd.grabbed).toBe(true);
    expect(vm.calls).toEqual([
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
    expect(vm2.calls).toEqual([
      { op: 'keyPress', qnum: 0x30 },
      { op: 'keyRelease', qnum: 0x30 },
    ]);
    expect(vm.calls).toEqual([{ op: 'keyPress', qnum: 0x2a }]); // the old VM's keys went with it
  });

  it('stop releases held keys and buttons in the guest, then ungrabs and closes the devices', async () => {
    const { bridge, vm, kbd, mouse } = setup();
    bridge.setVm(vm);
    bridge.start();
    feed(kbd, new EventScript().key(42, 1).key(30, 1));
    feed(mouse, new EventScript().key(0x110, 1));
    await bridge.stop();
    expect(vm.stuck()).toEqual({ keys: [], buttons: [] });
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
    expect(vm.calls.slice(-2)).toEqual([
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
    expect(vm.calls.length).toBe(2);
  });

  it('bad selections and hotkeys fail at construction with one clear line', () => {
    expect(() => new InputBridge({ inputs: ['kbd'] })).toThrow(expect.objectContaining({ code: 'EINVALIDINPUT' }));
    expect(() => new InputBridge({ grabToggle: 'ctrl-banana' })).toThrow(expect.objectContaining({ code: 'EINVALIDHOTKEY' }));
  });
});
