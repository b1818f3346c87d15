// v4l2loopback producer setup: the four ioctls a writer needs (QUERYCAP, S_FMT on the OUTPUT
// queue, S_PARM, STREAMON on the OUTPUT queue). The fd is opened and written from TypeScript (fs),
// and TypeScript turns the errno codes thrown here (ENOTTY on a non-V4L2 file, EBUSY, EINVAL...)
// into advice. Each call returns what the driver KEPT: v4l2loopback silently substitutes formats,
// so the caller compares.
#include <errno.h>
#include <linux/videodev2.h>
#include <string.h>
#include <sys/ioctl.h>

#include <string>

#include "addon.h"
#include "js_args.h"

namespace qdb {

namespace {

// Any int: a bad fd is the kernel's to refuse (EBADF, thrown by the ioctl below).
int Fd(const Napi::Value& v) { return ArgInt32(v, "v4l2", "fd"); }

uint32_t U32(const Napi::Value& v, const char* what) { return ArgUint32(v, "v4l2", what); }

int Ioctl(int fd, unsigned long req, void* arg) {
  int r;
  do r = ioctl(fd, req, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

std::string Str(const uint8_t* s, size_t n) {
  return std::string(reinterpret_cast<const char*>(s),
                     strnlen(reinterpret_cast<const char*>(s), n));
}

// v4l2QueryCap(fd) -> {driver, card, busInfo, version, capabilities, deviceCaps}
Napi::Value QueryCap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info[0]);
  struct v4l2_capability cap;
  memset(&cap, 0, sizeof cap);
  if (Ioctl(fd, VIDIOC_QUERYCAP, &cap) < 0) ThrowErrno(env, errno, "VIDIOC_QUERYCAP");
  Napi::Object o = Napi::Object::New(env);
  o.Set("driver", Str(cap.driver, sizeof cap.driver));
  o.Set("card", Str(cap.card, sizeof cap.card));
  o.Set("busInfo", Str(cap.bus_info, sizeof cap.bus_info));
  o.Set("version", Napi::Number::New(env, cap.version));
  o.Set("capabilities", Napi::Number::New(env, cap.capabilities));
  // device_caps is only valid when V4L2_CAP_DEVICE_CAPS is set (drivers since 3.4 set it).
  o.Set("deviceCaps",
        Napi::Number::New(
            env, (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities));
  return o;
}

Napi::Object PixToJs(Napi::Env env, const struct v4l2_pix_format& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("width", Napi::Number::New(env, p.width));
  o.Set("height", Napi::Number::New(env, p.height));
  o.Set("pixelformat", Napi::Number::New(env, p.pixelformat));
  o.Set("field", Napi::Number::New(env, p.field));
  o.Set("bytesperline", Napi::Number::New(env, p.bytesperline));
  o.Set("sizeimage", Napi::Number::New(env, p.sizeimage));
  o.Set("colorspace", Napi::Number::New(env, p.colorspace));
  return o;
}

// v4l2SetOutputFormat(fd, width, height, fourcc, bytesperline, sizeimage) -> the format kept
Napi::Value SetOutputFormat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info[0]);
  struct v4l2_format f;
  memset(&f, 0, sizeof f);
  f.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
  f.fmt.pix.width = U32(info[1], "width");
  f.fmt.pix.height = U32(info[2], "height");
  f.fmt.pix.pixelformat = U32(info[3], "fourcc");
  f.fmt.pix.field = V4L2_FIELD_NONE;
  f.fmt.pix.bytesperline = U32(info[4], "bytesperline");
  f.fmt.pix.sizeimage = U32(info[5], "sizeimage");
  f.fmt.pix.colorspace = V4L2_COLORSPACE_SRGB;
  if (Ioctl(fd, VIDIOC_S_FMT, &f) < 0) ThrowErrno(env, errno, "VIDIOC_S_FMT(OUTPUT)");
  return PixToJs(env, f.fmt.pix);
}

// v4l2SetOutputFps(fd, fps) -> {numerator, denominator} kept (timeperframe)
Napi::Value SetOutputFps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info[0]);
  struct v4l2_streamparm p;
  memset(&p, 0, sizeof p);
  p.type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
  p.parm.output.timeperframe.numerator = 1;
  p.parm.output.timeperframe.denominator = U32(info[1], "fps");
  if (Ioctl(fd, VIDIOC_S_PARM, &p) < 0) ThrowErrno(env, errno, "VIDIOC_S_PARM(OUTPUT)");
  Napi::Object o = Napi::Object::New(env);
  o.Set("numerator", Napi::Number::New(env, p.parm.output.timeperframe.numerator));
  o.Set("denominator", Napi::Number::New(env, p.parm.output.timeperframe.denominator));
  return o;
}

// v4l2StreamOn(fd): VIDIOC_STREAMON on the OUTPUT queue. A write()-only producer does not need
// it to move frames, but v4l2loopback (0.12.7) marks an opener as its writer only here, and only
// a writer's close() gives the device its OUTPUT capability back: without it the device is left
// with no capability at all and every later producer fails until the module is reloaded.
Napi::Value StreamOn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(info[0]);
  int type = V4L2_BUF_TYPE_VIDEO_OUTPUT;
  if (Ioctl(fd, VIDIOC_STREAMON, &type) < 0) ThrowErrno(env, errno, "VIDIOC_STREAMON(OUTPUT)");
  return env.Undefined();
}

}  // namespace

void InitV4l2(Napi::Env env, Napi::Object exports) {
  exports.Set("v4l2QueryCap", Napi::Function::New(env, QueryCap, "v4l2QueryCap"));
  exports.Set("v4l2SetOutputFormat",
              Napi::Function::New(env, SetOutputFormat, "v4l2SetOutputFormat"));
  exports.Set("v4l2SetOutputFps", Napi::Function::New(env, SetOutputFps, "v4l2SetOutputFps"));
  exports.Set("v4l2StreamOn", Napi::Function::New(env, StreamOn, "v4l2StreamOn"));
}

}  // namespace qdb
