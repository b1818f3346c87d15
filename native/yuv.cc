// Pixel work for the guest-screen camera, all through libyuv:
//   yuvBlit     pixman-format rectangle -> the ARGB framebuffer (every format QEMU may send)
//   yuvCompose  framebuffer (+ cursor) -> letterboxed camera picture in YUY2, I420 or NV12
// Policy (which formats are accepted, the letterbox geometry, when to compose) is decided in
// src/camera/; these functions only check bounds, so a bad argument is an Error, never a crash.
// "ARGB" is libyuv's name: bytes B,G,R,A in memory (PIXMAN_a8r8g8b8 on little-endian hosts).
#include <libyuv.h>
#include <string.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "addon.h"
#include "js_args.h"

namespace qdb {

namespace {

// pixman_format_code_t = bpp<<24 | type<<16 | a<<12 | r<<8 | g<<4 | b (pixman.h).
constexpr uint32_t kX8R8G8B8 = 0x20020888, kA8R8G8B8 = 0x20028888;
constexpr uint32_t kX8B8G8R8 = 0x20030888, kA8B8G8R8 = 0x20038888;
constexpr uint32_t kB8G8R8X8 = 0x20080888, kB8G8R8A8 = 0x20088888;
constexpr uint32_t kR8G8B8X8 = 0x20090888, kR8G8B8A8 = 0x20098888;
constexpr uint32_t kX2R10G10B10 = 0x20020aaa, kA2R10G10B10 = 0x20022aaa;
constexpr uint32_t kX2B10G10R10 = 0x20030aaa, kA2B10G10R10 = 0x20032aaa;
constexpr uint32_t kR8G8B8 = 0x18020888, kB8G8R8 = 0x18030888;
constexpr uint32_t kR5G6B5 = 0x10020565, kB5G6R5 = 0x10030565;
constexpr uint32_t kX1R5G5B5 = 0x10020555, kA1R5G5B5 = 0x10021555;
constexpr uint32_t kX1B5G5R5 = 0x10030555, kA1B5G5R5 = 0x10031555;
constexpr uint32_t kX4R4G4B4 = 0x10020444, kA4R4G4B4 = 0x10024444;
constexpr uint32_t kX4B4G4R4 = 0x10030444, kA4B4G4R4 = 0x10034444;

enum OutFormat { kYUY2 = 0, kI420 = 1, kNV12 = 2 };

int BytesPerPixel(uint32_t fmt) { return static_cast<int>(fmt >> 24) / 8; }

// Converts one rectangle; false if the format is not one we handle. dst is ARGB.
bool ConvertRect(const uint8_t* src, int src_stride, uint32_t fmt, uint8_t* dst, int dst_stride,
                 int w, int h) {
  using namespace libyuv;
  switch (fmt) {
    case kX8R8G8B8:
    case kA8R8G8B8:
      ARGBCopy(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kX8B8G8R8:
    case kA8B8G8R8:
      ABGRToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kB8G8R8X8:
    case kB8G8R8A8:
      BGRAToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kR8G8B8X8:
    case kR8G8B8A8:
      RGBAToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kX2R10G10B10:
    case kA2R10G10B10:
      AR30ToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kX2B10G10R10:
    case kA2B10G10R10:
      AB30ToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kR8G8B8:
      RGB24ToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kB8G8R8:
      RAWToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kR5G6B5:
      RGB565ToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kX1R5G5B5:
    case kA1R5G5B5:
      ARGB1555ToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    case kX4R4G4B4:
    case kA4R4G4B4:
      ARGB4444ToARGB(src, src_stride, dst, dst_stride, w, h);
      return true;
    // libyuv has no red/blue-swapped 16-bit readers: read as the swapped twin, then swap R/B in
    // place (ABGRToARGB is a per-row byte shuffle, safe with src == dst).
    case kB5G6R5:
      RGB565ToARGB(src, src_stride, dst, dst_stride, w, h);
      ABGRToARGB(dst, dst_stride, dst, dst_stride, w, h);
      return true;
    case kX1B5G5R5:
    case kA1B5G5R5:
      ARGB1555ToARGB(src, src_stride, dst, dst_stride, w, h);
      ABGRToARGB(dst, dst_stride, dst, dst_stride, w, h);
      return true;
    case kX4B4G4R4:
    case kA4B4G4R4:
      ARGB4444ToARGB(src, src_stride, dst, dst_stride, w, h);
      ABGRToARGB(dst, dst_stride, dst, dst_stride, w, h);
      return true;
    default:
      return false;
  }
}

uint32_t U32(const Napi::Value& v, const char* what) {
  return ArgUint32(v, "yuv", what, 0, 0x7fffffff);
}

int32_t I32(const Napi::Value& v, const char* what) {
  return ArgInt32(v, "yuv", what, -0x7fffffff, 0x7fffffff);
}

struct Bytes {
  uint8_t* data;
  size_t length;
};

Bytes View(const Napi::Value& v, const char* what) {
  auto a = ArgBytes(v, "yuv", what);
  return {a.Data(), a.ByteLength()};
}

// Rows needed to hold h rows of rowBytes at stride: the last row need not be padded.
bool Fits(size_t length, uint64_t stride, uint64_t row_bytes, uint64_t h) {
  if (h == 0) return true;
  return (h - 1) * stride + row_bytes <= length;
}

// yuvBlit(src, srcStride, pixmanFormat, width, height, dst, dstStride, dx, dy)
Napi::Value Blit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Bytes src = View(info[0], "src");
  uint32_t src_stride = U32(info[1], "srcStride");
  uint32_t fmt = U32(info[2], "pixmanFormat");
  uint32_t w = U32(info[3], "width"), h = U32(info[4], "height");
  Bytes dst = View(info[5], "dst");
  uint32_t dst_stride = U32(info[6], "dstStride");
  uint32_t dx = U32(info[7], "dx"), dy = U32(info[8], "dy");
  if (w == 0 || h == 0) return env.Undefined();
  int bpp = BytesPerPixel(fmt);
  if (!Fits(src.length, src_stride, static_cast<uint64_t>(w) * bpp, h))
    ThrowWithCode(env, "ERANGE",
                  "update data too short: " + std::to_string(src.length) + " bytes for " +
                      std::to_string(w) + "x" + std::to_string(h) + " at stride " +
                      std::to_string(src_stride));
  if (!Fits(dst.length, dst_stride, (static_cast<uint64_t>(dx) + w) * 4,
            static_cast<uint64_t>(dy) + h) ||
      static_cast<uint64_t>(dx + w) * 4 > dst_stride)
    ThrowWithCode(env, "ERANGE", "rectangle does not fit the framebuffer");
  if (!ConvertRect(src.data, static_cast<int>(src_stride), fmt,
                   dst.data + static_cast<size_t>(dy) * dst_stride + static_cast<size_t>(dx) * 4,
                   static_cast<int>(dst_stride), static_cast<int>(w), static_cast<int>(h))) {
    char hex[16];
    snprintf(hex, sizeof hex, "0x%08x", fmt);
    ThrowWithCode(env, "EFORMAT", std::string("unsupported pixman format ") + hex);
  }
  return env.Undefined();
}

// Straight (non-premultiplied) alpha "over" of an ARGB cursor onto ARGB pixels.
void BlendCursor(const uint8_t* cur, int cur_stride, uint8_t* dst, int dst_stride, int w, int h) {
  for (int y = 0; y < h; y++) {
    const uint8_t* s = cur + static_cast<size_t>(y) * cur_stride;
    uint8_t* d = dst + static_cast<size_t>(y) * dst_stride;
    for (int x = 0; x < w; x++, s += 4, d += 4) {
      unsigned a = s[3];
      if (a == 0) continue;
      if (a == 255) {
        d[0] = s[0], d[1] = s[1], d[2] = s[2];
        continue;
      }
      for (int c = 0; c < 3; c++)
        d[c] = static_cast<uint8_t>((s[c] * a + d[c] * (255 - a) + 127) / 255);
    }
  }
}

size_t OutSize(int fmt, uint32_t w, uint32_t h) {
  size_t px = static_cast<size_t>(w) * h;
  return fmt == kYUY2 ? px * 2 : px + 2 * (static_cast<size_t>(w / 2) * (h / 2));
}

// The camera frame being written: tightly packed planes, even width and height.
struct Frame {
  uint8_t* data;
  int fmt, w, h;
};

// Converts a w x h ARGB picture into the frame at (x, y). x and w are even; for I420/NV12 y and
// h are even too, so every 2x1 / 2x2 chroma block lies wholly inside the region and a region
// converts to exactly the bytes the whole picture would have given there.
void ToYuvAt(const uint8_t* argb, int stride, const Frame& f, int x, int y, int w, int h) {
  using namespace libyuv;
  size_t ysize = static_cast<size_t>(f.w) * f.h;
  if (f.fmt == kYUY2) {
    ARGBToYUY2(argb, stride, f.data + (static_cast<size_t>(y) * f.w + x) * 2, f.w * 2, w, h);
    return;
  }
  uint8_t* py = f.data + static_cast<size_t>(y) * f.w + x;
  uint8_t* chroma = f.data + ysize;
  if (f.fmt == kI420) {
    size_t c_off = static_cast<size_t>(y / 2) * (f.w / 2) + x / 2;
    ARGBToI420(argb, stride, py, f.w, chroma + c_off, f.w / 2, chroma + ysize / 4 + c_off, f.w / 2,
               w, h);
  } else {
    ARGBToNV12(argb, stride, py, f.w, chroma + static_cast<size_t>(y / 2) * f.w + x, f.w, w, h);
  }
}

// Black (Y=16, U=V=128: what ARGBToYUY2/I420/NV12 give for opaque black) over a region with the
// same alignment as ToYuvAt.
void BlackAt(const Frame& f, int x, int y, int w, int h) {
  using namespace libyuv;
  if (w <= 0 || h <= 0) return;
  if (f.fmt == kYUY2) {
    // A YUY2 pixel pair Y0,U,Y1,V is one 32-bit word: fill it like an ARGB pixel.
    ARGBRect(f.data, f.w * 2, x / 2, y, w / 2, h, 0x80108010u);
    return;
  }
  size_t ysize = static_cast<size_t>(f.w) * f.h;
  SetPlane(f.data + static_cast<size_t>(y) * f.w + x, f.w, w, h, 16);
  uint8_t* chroma = f.data + ysize;
  if (f.fmt == kI420) {
    size_t c_off = static_cast<size_t>(y / 2) * (f.w / 2) + x / 2;
    SetPlane(chroma + c_off, f.w / 2, w / 2, h / 2, 128);
    SetPlane(chroma + ysize / 4 + c_off, f.w / 2, w / 2, h / 2, 128);
  } else {
    SetPlane(chroma + static_cast<size_t>(y / 2) * f.w + x, f.w, w, h / 2, 128);
  }
}

// A pixel range [lo, hi) of a length-`from` axis mapped onto a length-`to` axis, widened by
// `margin` pixels each side (bilinear taps reach one pixel beyond the sample point; the rest is
// slack), clamped to [0, to).
void MapSpan(int lo, int hi, int from, int to, int margin, int* out_lo, int* out_hi) {
  int64_t a = static_cast<int64_t>(lo) * to / from - margin;
  int64_t b = (static_cast<int64_t>(hi) * to + from - 1) / from + margin;
  *out_lo = static_cast<int>(std::max<int64_t>(0, a));
  *out_hi = static_cast<int>(std::min<int64_t>(to, b));
}

// Scales the output pixels [dx0, dx1) x [dy0, dy1) of the w x h scaling of an sw x sh picture
// into dst, byte for byte as the whole scaling would have (dx0 on a 16-pixel boundary, dx1 on one
// or at w: libyuv's row scalers do whole SIMD blocks and the rest of a row in C, which round
// differently, so every pixel must take the same route as in the whole scaling).
void ScaleRegion(const uint8_t* src, int src_stride, int sw, int sh, uint8_t* dst, int dst_stride,
                 int w, int h, int dx0, int dy0, int dx1, int dy1) {
  if (dx1 <= dx0 || dy1 <= dy0) return;
  if (sw % w == 0 && sh % h == 0) {
    // Whole-number factors: libyuv takes its even/odd shortcuts there, whose clipped variant
    // samples elsewhere than the full scale. Each output pixel reads only its own kx*ky cell,
    // so scaling the cells of the wanted pixels alone gives the same bytes.
    int kx = sw / w, ky = sh / h;
    libyuv::ARGBScale(
        src + static_cast<size_t>(dy0) * ky * src_stride + static_cast<size_t>(dx0) * kx * 4,
        src_stride, (dx1 - dx0) * kx, (dy1 - dy0) * ky,
        dst + static_cast<size_t>(dy0) * dst_stride + static_cast<size_t>(dx0) * 4, dst_stride,
        dx1 - dx0, dy1 - dy0, libyuv::kFilterBilinear);
  } else {
    libyuv::ARGBScaleClip(src, src_stride, sw, sh, dst, dst_stride, w, h, dx0, dy0, dx1 - dx0,
                          dy1 - dy0, libyuv::kFilterBilinear);
  }
}

// The output pixels of a w x h scaling of an sw x sh picture that the picture's [x0, x1) x
// [y0, y1) can reach (widened for the filter taps), aligned as ScaleRegion and the chroma need.
void ReachedRegion(int x0, int y0, int x1, int y1, int sw, int sh, int w, int h, int* dx0, int* dy0,
                   int* dx1, int* dy1) {
  MapSpan(x0, x1, sw, w, 3, dx0, dx1);
  MapSpan(y0, y1, sh, h, 3, dy0, dy1);
  *dx0 &= ~15;
  *dx1 = std::min(w, (*dx1 + 15) & ~15);
  *dy0 &= ~1;
  *dy1 = std::min(h, (*dy1 + 1) & ~1);
}

// Cursor pixels outside the picture are clipped away; what is left, where it lies.
struct CursorClip {
  const uint8_t* data = nullptr;  // first visible cursor pixel
  int stride = 0;
  int x0 = 0, y0 = 0, w = 0, h = 0;  // in picture pixels
};

// Bytes of the cursorWork buffer yuvCompose needs: the cursor's chroma-aligned box when the
// picture is not scaled, else a whole picture (the scaler reads the cursor band in place).
size_t CursorWorkBytes(bool scaled, uint32_t fb_w, uint32_t fb_h, const CursorClip& c) {
  if (!c.data) return 0;
  if (scaled) return static_cast<size_t>(fb_w) * fb_h * 4;
  return static_cast<size_t>(c.w + 2) * (c.h + 2) * 4;
}

// yuvCompose({fb, fbStride, fbWidth, fbHeight, cursor?: {data, width, height, x, y},
//             cursorWork?, scratch?, camWidth, camHeight, rect: [x, y, w, h], format, out})
// fb is only read (it may be QEMU's own message bytes or a shared mapping). The picture goes into
// rect (letterbox), black around it, converted in one pass when it is not scaled; scaled, it goes
// through scratch (rect w*h*4 bytes of ARGB). The cursor is composed only over the rectangle it
// covers: a copy of the pixels under it (cursorWork) is blended and converted (or re-scaled) again
// over that spot, never written into fb.
// damage (optional) [x, y, w, h] in picture pixels: out already holds this picture's frame (same
// geometry and format) except there and under the cursor's last position, which the caller adds;
// only that part is scaled and converted again, the bars are left as they are. w or h 0: nothing
// but the cursor.
Napi::Value Compose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ArgObject(Arg(info, 0), "yuvCompose", "options");
  Bytes fb = View(o.Get("fb"), "fb");
  uint32_t fb_stride = U32(o.Get("fbStride"), "fbStride");
  uint32_t fb_w = U32(o.Get("fbWidth"), "fbWidth"), fb_h = U32(o.Get("fbHeight"), "fbHeight");
  uint32_t cam_w = U32(o.Get("camWidth"), "camWidth"), cam_h = U32(o.Get("camHeight"), "camHeight");
  int fmt = static_cast<int>(U32(o.Get("format"), "format"));
  Bytes out = View(o.Get("out"), "out");
  if (fb_w == 0 || fb_h == 0 || fb_w > 32768 || fb_h > 32768 ||
      static_cast<uint64_t>(fb_stride) < static_cast<uint64_t>(fb_w) * 4 ||
      !Fits(fb.length, fb_stride, static_cast<uint64_t>(fb_w) * 4, fb_h))
    ThrowWithCode(env, "ERANGE", "framebuffer smaller than its declared size");
  if (cam_w == 0 || cam_h == 0 || cam_w % 2 || cam_h % 2 || cam_w > 32768 || cam_h > 32768)
    ThrowWithCode(env, "EINVAL", "camera size must be even and non-zero");
  if (fmt < kYUY2 || fmt > kNV12)
    ThrowWithCode(env, "EINVAL", "format must be 0 (YUY2), 1 (I420) or 2 (NV12)");
  if (out.length < OutSize(fmt, cam_w, cam_h)) ThrowWithCode(env, "ERANGE", "out buffer too small");
  Napi::Array ra = ArgArray(o.Get("rect"), "yuvCompose", "option rect", 4);
  uint32_t rx = U32(ra.Get(0u), "rect.x"), ry = U32(ra.Get(1u), "rect.y");
  uint32_t rw = U32(ra.Get(2u), "rect.width"), rh = U32(ra.Get(3u), "rect.height");
  if (rw == 0 || rh == 0 || rx + rw > cam_w || ry + rh > cam_h)
    ThrowWithCode(env, "ERANGE", "letterbox rectangle outside the camera picture");
  if (rx % 2 || ry % 2 || rw % 2 || rh % 2)
    ThrowWithCode(env, "EINVAL", "letterbox rectangle must have even offsets and sizes");

  bool scaled = rw != fb_w || rh != fb_h;
  Bytes scratch{nullptr, 0};
  if (scaled) {
    scratch = View(o.Get("scratch"), "scratch");
    if (scratch.length < static_cast<size_t>(rw) * 4 * rh)
      ThrowWithCode(env, "ERANGE", "scratch buffer too small");
  }

  // Cursor (optional): clip to the picture.
  CursorClip cur;
  Napi::Value cv = o.Get("cursor");
  if (cv.IsObject()) {
    Napi::Object c = cv.As<Napi::Object>();
    Bytes cd = View(c.Get("data"), "cursor.data");
    uint32_t w = U32(c.Get("width"), "cursor.width"), h = U32(c.Get("height"), "cursor.height");
    int32_t x = I32(c.Get("x"), "cursor.x"), y = I32(c.Get("y"), "cursor.y");
    if (static_cast<uint64_t>(w) * h * 4 > cd.length)
      ThrowWithCode(env, "ERANGE", "cursor data too short");
    int x0 = std::max(0, x), y0 = std::max(0, y);
    int x1 = static_cast<int>(std::min<int64_t>(fb_w, static_cast<int64_t>(x) + w));
    int y1 = static_cast<int>(std::min<int64_t>(fb_h, static_cast<int64_t>(y) + h));
    if (x1 > x0 && y1 > y0) {
      cur.stride = static_cast<int>(w) * 4;
      cur.data =
          cd.data + static_cast<size_t>(y0 - y) * cur.stride + static_cast<size_t>(x0 - x) * 4;
      cur.x0 = x0, cur.y0 = y0, cur.w = x1 - x0, cur.h = y1 - y0;
    }
  }
  Bytes work{nullptr, 0};
  if (cur.data) {
    work = View(o.Get("cursorWork"), "cursorWork");
    if (work.length < CursorWorkBytes(scaled, fb_w, fb_h, cur))
      ThrowWithCode(env, "ERANGE", "cursorWork buffer too small for the cursor");
  }

  // Damage: clipped to the picture; absent means the whole frame.
  bool partial = false;
  int gx0 = 0, gy0 = 0, gx1 = 0, gy1 = 0;
  Napi::Value dv = o.Get("damage");
  if (!dv.IsUndefined() && !dv.IsNull()) {
    Napi::Array da = ArgArray(dv, "yuvCompose", "option damage", 4);
    uint32_t dx = U32(da.Get(0u), "damage.x"), dy = U32(da.Get(1u), "damage.y");
    uint32_t dw = U32(da.Get(2u), "damage.width"), dh = U32(da.Get(3u), "damage.height");
    partial = true;
    gx0 = static_cast<int>(std::min(dx, fb_w)), gy0 = static_cast<int>(std::min(dy, fb_h));
    gx1 = static_cast<int>(std::min<uint64_t>(fb_w, static_cast<uint64_t>(dx) + dw));
    gy1 = static_cast<int>(std::min<uint64_t>(fb_h, static_cast<uint64_t>(dy) + dh));
  }

  Frame f{out.data, fmt, static_cast<int>(cam_w), static_cast<int>(cam_h)};
  int x = static_cast<int>(rx), y = static_cast<int>(ry);
  int w = static_cast<int>(rw), h = static_cast<int>(rh);
  int cw = static_cast<int>(cam_w), ch = static_cast<int>(cam_h);
  if (!partial) {
    // Bars: only the four areas around the picture.
    BlackAt(f, 0, 0, cw, y);
    BlackAt(f, 0, y + h, cw, ch - y - h);
    BlackAt(f, 0, y, x, h);
    BlackAt(f, x + w, y, cw - x - w, h);
  }

  if (!scaled) {
    // One pass from the guest's pixels to the camera format (rw == fb_w, so fb_w/fb_h are even).
    if (!partial) {
      ToYuvAt(fb.data, static_cast<int>(fb_stride), f, x, y, w, h);
    } else if (gx1 > gx0 && gy1 > gy0) {
      int ax0 = gx0 & ~1, ay0 = gy0 & ~1;
      int ax1 = std::min(w, (gx1 + 1) & ~1), ay1 = std::min(h, (gy1 + 1) & ~1);
      ToYuvAt(fb.data + static_cast<size_t>(ay0) * fb_stride + static_cast<size_t>(ax0) * 4,
              static_cast<int>(fb_stride), f, x + ax0, y + ay0, ax1 - ax0, ay1 - ay0);
    }
    if (cur.data) {
      // The cursor's box, widened to whole chroma blocks, blended in cursorWork and converted
      // over the same spot.
      int ax0 = cur.x0 & ~1, ay0 = cur.y0 & ~1;
      int ax1 = std::min(w, (cur.x0 + cur.w + 1) & ~1),
          ay1 = std::min(h, (cur.y0 + cur.h + 1) & ~1);
      int pw = ax1 - ax0, ph = ay1 - ay0, ps = pw * 4;
      libyuv::ARGBCopy(
          fb.data + static_cast<size_t>(ay0) * fb_stride + static_cast<size_t>(ax0) * 4,
          static_cast<int>(fb_stride), work.data, ps, pw, ph);
      BlendCursor(cur.data, cur.stride,
                  work.data + static_cast<size_t>(cur.y0 - ay0) * ps +
                      static_cast<size_t>(cur.x0 - ax0) * 4,
                  ps, cur.w, cur.h);
      ToYuvAt(work.data, ps, f, x + ax0, y + ay0, pw, ph);
    }
    return env.Undefined();
  }

  int ss = w * 4;
  int sw = static_cast<int>(fb_w), sh = static_cast<int>(fb_h);
  auto convert = [&](int rx0, int ry0, int rx1, int ry1) {
    if (rx1 > rx0 && ry1 > ry0)
      ToYuvAt(scratch.data + static_cast<size_t>(ry0) * ss + static_cast<size_t>(rx0) * 4, ss, f,
              x + rx0, y + ry0, rx1 - rx0, ry1 - ry0);
  };
  if (!partial) {
    libyuv::ARGBScale(fb.data, static_cast<int>(fb_stride), sw, sh, scratch.data, ss, w, h,
                      libyuv::kFilterBilinear);
  } else if (gx1 > gx0 && gy1 > gy0) {
    int dx0, dy0, dx1, dy1;
    ReachedRegion(gx0, gy0, gx1, gy1, sw, sh, w, h, &dx0, &dy0, &dx1, &dy1);
    ScaleRegion(fb.data, static_cast<int>(fb_stride), sw, sh, scratch.data, ss, w, h, dx0, dy0, dx1,
                dy1);
    convert(dx0, dy0, dx1, dy1);
  }
  if (cur.data) {
    // The scaled pixels the cursor can reach, and the source band those pixels read (mapped
    // back, widened again). The band goes into cursorWork at its own place in a picture-sized
    // image, the cursor is blended into it and only the reached pixels are scaled again from it.
    // Rows outside the band are never read by those pixels; should they be, they are stale but in
    // bounds.
    int dx0, dy0, dx1, dy1, bx0, bx1, by0, by1;
    ReachedRegion(cur.x0, cur.y0, cur.x0 + cur.w, cur.y0 + cur.h, sw, sh, w, h, &dx0, &dy0, &dx1,
                  &dy1);
    MapSpan(dx0, dx1, w, sw, 4, &bx0, &bx1);
    MapSpan(dy0, dy1, h, sh, 4, &by0, &by1);
    int ws = sw * 4;
    size_t band_off = static_cast<size_t>(by0) * ws + static_cast<size_t>(bx0) * 4;
    libyuv::ARGBCopy(fb.data + static_cast<size_t>(by0) * fb_stride + static_cast<size_t>(bx0) * 4,
                     static_cast<int>(fb_stride), work.data + band_off, ws, bx1 - bx0, by1 - by0);
    BlendCursor(cur.data, cur.stride,
                work.data + static_cast<size_t>(cur.y0) * ws + static_cast<size_t>(cur.x0) * 4, ws,
                cur.w, cur.h);
    ScaleRegion(work.data, ws, sw, sh, scratch.data, ss, w, h, dx0, dy0, dx1, dy1);
    if (partial) convert(dx0, dy0, dx1, dy1);
  }
  if (!partial) convert(0, 0, w, h);
  return env.Undefined();
}

// yuvFrameSize(format, width, height): bytes of one packed camera frame.
Napi::Value FrameSize(const Napi::CallbackInfo& info) {
  int fmt = static_cast<int>(U32(info[0], "format"));
  uint32_t w = U32(info[1], "width"), h = U32(info[2], "height");
  if (fmt > kNV12) ThrowWithCode(info.Env(), "EINVAL", "format must be 0, 1 or 2");
  return Napi::Number::New(info.Env(), static_cast<double>(OutSize(fmt, w, h)));
}

}  // namespace

void InitYuv(Napi::Env env, Napi::Object exports) {
  exports.Set("yuvBlit", Napi::Function::New(env, Blit, "yuvBlit"));
  exports.Set("yuvCompose", Napi::Function::New(env, Compose, "yuvCompose"));
  exports.Set("yuvFrameSize", Napi::Function::New(env, FrameSize, "yuvFrameSize"));
}

}  // namespace qdb
