// Pixman format codes QEMU may put in Scanout/Update/ScanoutMap (pixman_format_code_t:
// bpp<<24 | type<<16 | a<<12 | r<<8 | g<<4 | b, pixman.h). Every entry here is converted to the
// ARGB framebuffer by native/yuv.cc (yuvBlit); anything else is rejected with formatError().
// Which devices send what (QEMU 7.2 ui/console.c, hw/display/vga.c, virtio-gpu-pixman.h):
// x8r8g8b8 in practice (the common VGA renderer converts everything else to it); virtio-gpu hands
// the guest's 32-bpp format through; qxl/bochs/vmware can send 16/24 bpp.
import { CameraError } from './errors';

export interface PixmanFormat {
  code: number;
  name: string;
  bytesPerPixel: number;
}

const FORMATS: [number, string][] = [
  [0x20020888, 'x8r8g8b8'],
  [0x20028888, 'a8r8g8b8'],
  [0x20030888, 'x8b8g8r8'],
  [0x20038888, 'a8b8g8r8'],
  [0x20080888, 'b8g8r8x8'],
  [0x20088888, 'b8g8r8a8'],
  [0x20090888, 'r8g8b8x8'],
  [0x20098888, 'r8g8b8a8'],
  [0x20020aaa, 'x2r10g10b10'],
  [0x20022aaa, 'a2r10g10b10'],
  [0x20030aaa, 'x2b10g10r10'],
  [0x20032aaa, 'a2b10g10r10'],
  [0x18020888, 'r8g8b8'],
  [0x18030888, 'b8g8r8'],
  [0x10020565, 'r5g6b5'],
  [0x10030565, 'b5g6r5'],
  [0x10020555, 'x1r5g5b5'],
  [0x10021555, 'a1r5g5b5'],
  [0x10030555, 'x1b5g5r5'],
  [0x10031555, 'a1b5g5r5'],
  [0x10020444, 'x4r4g4b4'],
  [0x10024444, 'a4r4g4b4'],
  [0x10030444, 'x4b4g4r4'],
  [0x10034444, 'a4b4g4r4'],
];

export const PIXMAN_FORMATS: ReadonlyMap<number, PixmanFormat> = new Map(
  FORMATS.map(([code, name]) => [code, { code, name, bytesPerPixel: (code >>> 24) / 8 }]),
);

export const PIXMAN_X8R8G8B8 = 0x20020888;
export const PIXMAN_A8R8G8B8 = 0x20028888;

export function pixmanFormat(code: number): PixmanFormat | undefined {
  return PIXMAN_FORMATS.get(code >>> 0);
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** Error for a pixman format we do not convert: says what it is and what would work. */
export function formatError(code: number): CameraError {
  const bpp = (code >>> 24) & 0xff;
  const type = (code >>> 16) & 0xff;
  const kind =
    type === 6 || type === 7 ? 'a YUV format' : type === 4 ? 'a palette format' : type === 5 ? 'a grey format' : `${bpp} bpp`;
  return new CameraError(
    'EPIXMANFORMAT',
    `guest display uses pixman format ${hex32(code)} (${kind}), which the camera does not convert; ` +
      `supported: 32-bpp [ax]8r8g8b8 and every channel order, 2:10:10:10, 24-bpp r8g8b8/b8g8r8, 16-bpp 565/1555/4444`,
    'configure the guest for 32-bit colour (e.g. virtio-gpu/bochs at 32 bpp)',
  );
}
