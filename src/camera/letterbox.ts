// Where a guest picture of any size goes inside the fixed camera frame: scaled as large as it
// fits with its aspect ratio kept, centred, black bars around (letterbox/pillarbox).
// Offsets and sizes are even so that chroma (2x1 for YUY2, 2x2 for I420/NV12) never straddles
// the edge between picture and bar.

export type Rect = [x: number, y: number, width: number, height: number];

const even = (n: number): number => 2 * Math.round(n / 2);

export function letterbox(srcWidth: number, srcHeight: number, camWidth: number, camHeight: number): Rect {
  if (srcWidth <= 0 || srcHeight <= 0) return [0, 0, camWidth, camHeight];
  const scale = Math.min(camWidth / srcWidth, camHeight / srcHeight);
  const w = Math.min(camWidth, Math.max(2, even(srcWidth * scale)));
  const h = Math.min(camHeight, Math.max(2, even(srcHeight * scale)));
  const x = 2 * Math.floor((camWidth - w) / 4);
  const y = 2 * Math.floor((camHeight - h) / 4);
  return [x, y, w, h];
}

/** "WxH" with both even and within limits, for --camera-size. */
export function parseCameraSize(text: string): { width: number; height: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/i.exec(text.trim());
  const bad = (why: string): never => {
    const e = new Error(`--camera-size ${JSON.stringify(text)}: ${why} (example: --camera-size 1280x720)`) as Error & { code: string };
    e.code = 'EUSAGE';
    throw e;
  };
  if (!m) return bad('expected WIDTHxHEIGHT');
  const width = Number(m[1]);
  const height = Number(m[2]);
  if (width % 2 || height % 2) return bad('width and height must be even (YUV chroma is shared by pixel pairs)');
  if (width < 48 || height < 32 || width > 8192 || height > 8192) return bad('must be between 48x32 and 8192x8192 (v4l2loopback limits)');
  return { width, height };
}
