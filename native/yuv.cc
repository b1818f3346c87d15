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

// Converts an ARGB picture to the camera format (tightly packed planes, even w/h).
void ToYuv(const uint8_t* argb, int stride, int fmt, uint8_t* out, int w, int h) {
  using namespace libyuv;
  uint8_t* y = out;
  size_t ysize = static_cast<size_t>(w) * h;
  if (fmt == kYUY2) {
    ARGBToYUY2(argb, stride, out, w * 2, w, h);
  } else if (fmt == kI420) {
    uint8_t* u = y + ysize;
    uint8_t* v = u + ysize / 4;
    ARGBToI420(argb, stride, y, w, u, w / 2, v, w / 2, w, h);
  } else {
    ARGBToNV12(argb, stride, y, w, y + ysize, w, w, h);
  }
}

// yuvCompose({fb, fbStride, fbWidth, fbHeight, cursor?: {data, width, height, x, y},
//             saveUnder, scratch, camWidth, camHeight, rect: [x, y, w, h], format, out})
// The cursor is drawn into fb at guest coordinates (clipped) and the pixels underneath are put
// back before returning, so fb stays the guest's picture. scratch (camWidth*camHeight*4) holds the
// letterboxed ARGB picture; it is skipped when the picture needs no scaling or bars.
Napi::Value Compose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ArgObject(Arg(info, 0), "yuvCompose", "options");
  Bytes fb = View(o.Get("fb"), "fb");
  uint32_t fb_stride = U32(o.Get("fbStride"), "fbStride");
  uint32_t fb_w = U32(o.Get("fbWidth"), "fbWidth"), fb_h = U32(o.Get("fbHeight"), "fbHeight");
  uint32_t cam_w = U32(o.Get("camWidth"), "camWidth"), cam_h = U32(o.Get("camHeight"), "camHeight");
  int fmt = static_cast<int>(U32(o.Get("format"), "format"));
  Bytes out = View(o.Get("out"), "out");
  if (fb_w == 0 || fb_h == 0 || fb_stride < fb_w * 4 || !Fits(fb.length, fb_stride, fb_w * 4, fb_h))
    ThrowWithCode(env, "ERANGE", "framebuffer smaller than its declared size");
  if (cam_w == 0 || cam_h == 0 || cam_w % 2 || cam_h % 2)
    ThrowWithCode(env, "EINVAL", "camera size must be even and non-zero");
  if (fmt < kYUY2 || fmt > kNV12)
    ThrowWithCode(env, "EINVAL", "format must be 0 (YUY2), 1 (I420) or 2 (NV12)");
  if (out.length < OutSize(fmt, cam_w, cam_h)) ThrowWithCode(env, "ERANGE", "out buffer too small");
  Napi::Array ra = ArgArray(o.Get("rect"), "yuvCompose", "option rect", 4);
  uint32_t rx = U32(ra.Get(0u), "rect.x"), ry = U32(ra.Get(1u), "rect.y");
  uint32_t rw = U32(ra.Get(2u), "rect.width"), rh = U32(ra.Get(3u), "rect.height");
  if (rw == 0 || rh == 0 || rx + rw > cam_w || ry + rh > cam_h)
    ThrowWithCode(env, "ERANGE", "letterbox rectangle outside the camera picture");

  bool direct = rx == 0 && ry == 0 && rw == cam_w && rh == cam_h && fb_w == cam_w && fb_h == cam_h;
  Bytes scratch{nullptr, 0};
  if (!direct) {
    scratch = View(o.Get("scratch"), "scratch");
    if (scratch.length < static_cast<size_t>(cam_w) * 4 * cam_h)
      ThrowWithCode(env, "ERANGE", "scratch buffer too small");
  }

  // Cursor (optional): clip to the framebuffer. Everything that can throw is checked before the
  // cursor is drawn into fb, so fb is always restored.
  Bytes under{nullptr, 0};
  const uint8_t* cur = nullptr;
  int cx0 = 0, cy0 = 0, cw = 0, ch = 0, cur_stride = 0, skip_x = 0, skip_y = 0;
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
      under = View(o.Get("saveUnder"), "saveUnder");
      cx0 = x0, cy0 = y0, cw = x1 - x0, ch = y1 - y0;
      if (under.length < static_cast<size_t>(cw) * ch * 4)
        ThrowWithCode(env, "ERANGE", "saveUnder buffer too small for the cursor");
      cur_stride = static_cast<int>(w) * 4;
      skip_x = x0 - x, skip_y = y0 - y;
      cur = cd.data + static_cast<size_t>(skip_y) * cur_stride + static_cast<size_t>(skip_x) * 4;
    }
  }
  uint8_t* cur_dst = fb.data + static_cast<size_t>(cy0) * fb_stride + static_cast<size_t>(cx0) * 4;
  if (cur) {
    libyuv::ARGBCopy(cur_dst, fb_stride, under.data, cw * 4, cw, ch);
    BlendCursor(cur, cur_stride, cur_dst, fb_stride, cw, ch);
  }

  if (direct) {
    ToYuv(fb.data, fb_stride, fmt, out.data, cam_w, cam_h);
  } else {
    uint32_t ss = cam_w * 4;
    // Bars: black (Y=16, U=V=128 after conversion). Only the four areas around the picture.
    const uint32_t black = 0xff000000;
    if (ry) libyuv::ARGBRect(scratch.data, ss, 0, 0, cam_w, ry, black);
    if (ry + rh < cam_h)
      libyuv::ARGBRect(scratch.data, ss, 0, ry + rh, cam_w, cam_h - ry - rh, black);
    if (rx) libyuv::ARGBRect(scratch.data, ss, 0, ry, rx, rh, black);
    if (rx + rw < cam_w)
      libyuv::ARGBRect(scratch.data, ss, rx + rw, ry, cam_w - rx - rw, rh, black);
    uint8_t* dst = scratch.data + static_cast<size_t>(ry) * ss + static_cast<size_t>(rx) * 4;
    if (rw == fb_w && rh == fb_h)
      libyuv::ARGBCopy(fb.data, fb_stride, dst, ss, rw, rh);
    else
      libyuv::ARGBScale(fb.data, fb_stride, fb_w, fb_h, dst, ss, rw, rh, libyuv::kFilterBilinear);
    ToYuv(scratch.data, ss, fmt, out.data, cam_w, cam_h);
  }
  if (cur) libyuv::ARGBCopy(under.data, cw * 4, cur_dst, fb_stride, cw, ch);
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
