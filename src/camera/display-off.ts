// The picture shown after QEMU's Disable (display off / GL scanout released): a dark grey frame
// with "DISPLAY OFF" in a built-in 5x7 bitmap font, so a viewer can tell "the guest turned its
// screen off" from "the bridge froze on the last picture". Drawn once, in native memory.

const GLYPHS: Record<string, string[]> = {
  D: ['####.', '#...#', '#...#', '#...#', '#...#', '#...#', '####.'],
  I: ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '#####'],
  S: ['.####', '#....', '#....', '.###.', '....#', '....#', '####.'],
  P: ['####.', '#...#', '#...#', '####.', '#....', '#....', '#....'],
  L: ['#....', '#....', '#....', '#....', '#....', '#....', '#####'],
  A: ['.###.', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  Y: ['#...#', '#...#', '.#.#.', '..#..', '..#..', '..#..', '..#..'],
  O: ['.###.', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  F: ['#####', '#....', '#....', '####.', '#....', '#....', '#....'],
  ' ': ['.....', '.....', '.....', '.....', '.....', '.....', '.....'],
};

export const DISPLAY_OFF_WIDTH = 640;
export const DISPLAY_OFF_HEIGHT = 360;
/** background and text colours (0xAARRGGBB), exported for tests */
export const DISPLAY_OFF_BACKGROUND = 0xff202020;
export const DISPLAY_OFF_TEXT = 0xffc0c0c0;
export const DISPLAY_OFF_TEXT_SCALE = 8;

/** Text box of the message inside the 640x360 picture: [x, y, width, height]. */
export function displayOffTextBox(text = 'DISPLAY OFF'): [number, number, number, number] {
  const s = DISPLAY_OFF_TEXT_SCALE;
  const w = (text.length * 6 - 1) * s;
  const h = 7 * s;
  return [Math.floor((DISPLAY_OFF_WIDTH - w) / 2), Math.floor((DISPLAY_OFF_HEIGHT - h) / 2), w, h];
}

let cached: Buffer | undefined;

/** 640x360 ARGB picture (B,G,R,A in memory). */
export function displayOffPicture(): Buffer {
  if (cached) return cached;
  const w = DISPLAY_OFF_WIDTH;
  const buf = Buffer.alloc(w * DISPLAY_OFF_HEIGHT * 4);
  for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(DISPLAY_OFF_BACKGROUND, i);
  const text = 'DISPLAY OFF';
  const s = DISPLAY_OFF_TEXT_SCALE;
  const [x0, y0] = displayOffTextBox(text);
  for (let c = 0; c < text.length; c++) {
    const glyph = GLYPHS[text[c]];
    for (let gy = 0; gy < 7; gy++)
      for (let gx = 0; gx < 5; gx++) {
        if (glyph[gy][gx] !== '#') continue;
        for (let py = 0; py < s; py++)
          for (let px = 0; px < s; px++) {
            const x = x0 + (c * 6 + gx) * s + px;
            const y = y0 + gy * s + py;
            buf.writeUInt32LE(DISPLAY_OFF_TEXT, (y * w + x) * 4);
          }
      }
  }
  cached = buf;
  return buf;
}
