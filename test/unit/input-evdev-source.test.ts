// EvdevSource's TypeScript side over the fake EvdevBackend (test/fakes/input.ts; the real node is
// missing on these machines): batch decoding, unplug, grab with LED save/restore,
// LED bit mapping, read-only nodes, and the capability classification.
import { describe, expect, it } from 'vitest';
import { EvdevSource, describeDevice, nativeEvdevBackend } from '../../src/input/device';
import { EV_ABS, EV_KEY, EV_REL, InputEvent } from '../../src/input/events';
import { FakeEvdevBackend, FakeNativeDevice, FAKE_KEYBOARD_INFO } from '../fakes/input';

const KEYBOARD = FAKE_KEYBOARD_INFO;

/** An EvdevSource over the fake backend, and the fake device it opened. */
function open(): { src: EvdevSource; dev: FakeNativeDevice } {
  const backend = new FakeEvdevBackend(KEYBOARD);
  const src = new EvdevSource('/dev/input/event3', backend);
  return { src, dev: backend.last! };
}

describe('EvdevSource (TypeScript side, fake native device)', () => {
  it('decodes batches into events, across several full batches', () => {
    const { src, dev } = open();
    const got: InputEvent[] = [];
    src.start({ onEvents: (e) => got.push(...e), onEnd: () => undefined });
    expect(dev.started).toBe(true);
    const evs = Array.from({ length: 600 }, (_, i) => ({ type: EV_REL, code: i % 2, value: i - 300, timeUs: 1e15 + i }));
    dev.emit(evs);
    expect(got).toEqual(evs);
  });

  it('reports an unplug (ENODEV) after delivering what was read before it', () => {
    const { src, dev } = open();
    const got: InputEvent[] = [];
    const ends: string[] = [];
    src.start({ onEvents: (e) => got.push(...e), onEnd: (r) => ends.push(r) });
    dev.emit([{ type: EV_KEY, code: 30, value: 0 }], 'ENODEV');
    expect(got.length).toBe(1);
    expect(ends).toEqual(['ENODEV']);
  });

  it('maps Modifiers bits (Scroll=1, Num=2, Caps=4) to num/caps/scroll LEDs', () => {
    const { src, dev } = open();
    src.setLeds(4);
    src.setLeds(2);
    src.setLeds(1);
    src.setLeds(7);
    expect(dev.ledWrites).toEqual([
      [false, true, false],
      [true, false, false],
      [false, false, true],
      [true, true, true],
    ]);
  });

  it('grab saves the host LED state and ungrab restores it; close ungrabs', () => {
    const { src, dev } = open();
    dev.ledState = [true, false, false]; // host: Num Lock on
    src.grab(true);
    src.setLeds(4); // guest: Caps Lock only
    expect(dev.ledState).toEqual([false, true, false]);
    src.grab(false);
    expect(dev.grabbed).toBe(false);
    expect(dev.ledState).toEqual([true, false, false]);
    src.grab(true);
    src.close();
    expect(dev.grabbed).toBe(false);
    expect(dev.closed).toBe(true);
    const writes = dev.ledWrites.length;
    src.setLeds(1); // after close: ignored
    expect(dev.ledWrites.length).toBe(writes);
  });

  it('the host LED state is restored after EVIOCGRAB is released, so the console handler cannot undo it', () => {
    const { src, dev } = open();
    dev.ledState = [true, false, false]; // host: Num Lock on
    dev.consoleLeds = [false, false, false]; // the VT's own idea, written on release
    src.grab(true);
    src.setLeds(4);
    src.grab(false);
    expect(dev.ledState).toEqual([true, false, false]);
  });

  it('a node opened read-only gets no LED writes', () => {
    const { src, dev } = open();
    dev.writable = false;
    src.setLeds(7);
    expect(dev.ledWrites).toEqual([]);
  });

  it('without evdev support in the addon: ENATIVE with the fix', () => {
    expect(() => new EvdevSource('/dev/input/event3', nativeEvdevBackend({}))).toThrow(expect.objectContaining({ code: 'ENATIVE', message: expect.stringMatching(/npm run setup/) }));
  });
});

describe('device classification from capabilities', () => {
  it('keyboard, mouse, tablet, touchscreen, joystick', () => {
    const kb = describeDevice(KEYBOARD);
    expect([kb.keyboard, kb.mouse, kb.absolutePointer, kb.hasLeds, kb.vendor, kb.name]).toEqual([true, false, false, true, 0x046d, 'Fake Keyboard']);
    const mouse = describeDevice({ ...KEYBOARD, name: 'Mouse', events: { [EV_KEY]: [0x110, 0x111, 0x112], [EV_REL]: [0, 1, 8, 11] } });
    expect([mouse.keyboard, mouse.mouse, mouse.hiResWheel, mouse.hasLeds]).toEqual([false, true, true, false]);
    const tablet = describeDevice({ ...KEYBOARD, events: { [EV_KEY]: [0x140, 0x14a, 0x14b], [EV_ABS]: [0, 1, 24] }, abs: { 0: [0, 21600, 100], 1: [0, 13500, 100] } });
    expect([tablet.absolutePointer, tablet.absX, tablet.absY]).toEqual([true, [0, 21600], [0, 13500]]);
    const touch = describeDevice({ ...KEYBOARD, events: { [EV_KEY]: [0x14a], [EV_ABS]: [0, 1, 0x35, 0x36] }, abs: { 0: [0, 4095, 0], 1: [0, 4095, 0] } });
    expect(touch.absolutePointer).toBe(true);
    const pad = describeDevice({ ...KEYBOARD, events: { [EV_KEY]: [0x130, 0x131], [EV_ABS]: [0, 1] }, abs: { 0: [-32768, 32767, 0], 1: [-32768, 32767, 0] } });
    expect([pad.absolutePointer, pad.mouse, pad.keyboard]).toEqual([false, false, false]);
  });
});
