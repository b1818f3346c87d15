// Types of the addon's evdev surface (native/evdev.cc). Optional members: an addon built before
// the evdev code existed must still load; src/input/device.ts reports ENATIVE when they are absent.

/** What libevdev reports about a device (EvdevDevice.info()). */
export interface EvdevRawInfo {
  name: string | null;
  phys: string | null;
  uniq: string | null;
  bustype: number;
  vendor: number;
  product: number;
  version: number;
  driverVersion: number;
  /** event type -> supported codes */
  events: Record<number, number[]>;
  /** ABS code -> [minimum, maximum, resolution] */
  abs: Record<number, [number, number, number]>;
  /** INPUT_PROP_* the device has (absent from an addon built before it was reported) */
  props?: number[];
}

export interface EvdevDeviceHandle {
  readonly fd: number;
  /** false when the node could only be opened read-only (no LED writes) */
  readonly writable: boolean;
  info(): EvdevRawInfo;
  /** EVIOCGRAB on/off; throws Error with errno `code` (EBUSY: someone else holds the grab). */
  grab(on: boolean): void;
  setLeds(num: boolean, caps: boolean, scroll: boolean): void;
  /** [num, caps, scroll]; null where the device has no such LED */
  leds(): [boolean | null, boolean | null, boolean | null];
  /** EV_KEY codes down in libevdev's copy of the device state (EVIOCGKEY at open + events read) */
  keysDown(): number[];
  /** Starts uv_poll reads: onEvents(count, errorCode?) with `count` events in the batch array. */
  start(): void;
  close(): void;
}

export interface EvdevDeviceConstructor {
  /** batch: Float64Array of 4 doubles per event (type, code, value, time in µs), reused every call. */
  new (path: string, batch: Float64Array, onEvents: (count: number, errorCode?: string) => void): EvdevDeviceHandle;
}

export interface EvdevLayout {
  size: number;
  sec: number;
  usec: number;
  type: number;
  code: number;
  value: number;
}

export interface EvdevNativeApi {
  EvdevDevice?: EvdevDeviceConstructor;
  /** Bare EVIOCGRAB on an fd: ENOTTY for anything that is not an evdev node. */
  evdevGrabFd?(fd: number, on: boolean): void;
  /** sizeof/offsetof of the kernel's struct input_event */
  evdevEventLayout?(): EvdevLayout;
  /** One struct input_event packed by C code with the kernel header. */
  evdevPackEvent?(type: number, code: number, value: number, sec: number, usec: number): Buffer;
}
