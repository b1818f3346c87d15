// Bounds on every size and coordinate QEMU announces. The guest controls these values (through
// its display driver, or a buggy QEMU passes them on), so each one is checked where it enters
// the bridge, before any handler computes with it or allocates for it. README "Security and
// robustness" lists them.

/** Largest frame/console side accepted (QEMU's own D-Bus display never goes past this). */
export const MAX_DISPLAY_SIDE = 16384;

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
