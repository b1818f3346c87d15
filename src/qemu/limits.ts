// Bounds on every size and coordinate QEMU announces. The guest controls these values (through
// its display driver, or a buggy QEMU passes them on), so each one is checked where it enters
// the bridge, before any handler computes with it or allocates for it. README "Security and
// robustness" lists them.

/** Largest frame/console side accepted (QEMU's own D-Bus display never goes past this). */
export const MAX_DISPLAY_SIDE = 16384;

/** Largest frame in pixels: 8192x8192, i.e. 256 MiB of 32-bit pixels (8K UHD is 33 Mpixel). */
export const MAX_DISPLAY_PIXELS = 8192 * 8192;

/**
 * Largest span of bytes one frame rectangle may cover ((height-1) * stride + width * bytes per
 * pixel): a mapped scanout (ScanoutMap) is read through a buffer of that size, so its stride is
 * bounded by this too, not only by the width.
 */
export const MAX_FRAME_BYTES = MAX_DISPLAY_PIXELS * 4;

/** Largest cursor side (QEMU's cursors are 64x64; 512 leaves room for hi-dpi guests). */
export const MAX_CURSOR_SIDE = 512;

/**
 * Mouse positions are clamped to [-MAX_DISPLAY_SIDE, MAX_DISPLAY_SIDE]: a pointer partly off the
 * left/top edge stays meaningful, and `x - hotX` can never leave int32 in the compositor.
 */
export function clampCoordinate(v: number): number {
  return v < -MAX_DISPLAY_SIDE ? -MAX_DISPLAY_SIDE : v > MAX_DISPLAY_SIDE ? MAX_DISPLAY_SIDE : v;
}

/** A console size from Width/Height: both in 1..MAX_DISPLAY_SIDE, else null (ignored). */
export function boundedConsoleSize(width: unknown, height: unknown): { width: number; height: number } | null {
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_DISPLAY_SIDE;
  return ok(width) && ok(height) ? { width, height } : null;
}

/**
 * Voices one audio listener keeps at once. QEMU announces one per audio front-end (1 or 2 in
 * practice); each costs a sound-server stream, so an Init for a new id beyond this is refused.
 */
export const MAX_VOICES = 16;

/** Largest AudioInListener.Read answered (QEMU 7.2 asks for one 4 KiB block at most, 10.x less). */
export const MAX_READ_BYTES = 4 * 1024 * 1024;
