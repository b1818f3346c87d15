#include "addon.h"

#include <errno.h>
#include <string.h>

namespace qdb {

void ThrowWithCode(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  throw err;
}

void ThrowErrno(Napi::Env env, int err, const std::string& what) {
  const char* name = strerrorname_np(err);
  ThrowWithCode(env, name ? name : "EUNKNOWN", what + ": " + strerror(err));
}

std::string OptionString(Napi::Object options, const char* key, const std::string& fallback) {
  Napi::Value v = options.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

uint32_t OptionUint32(Napi::Env env, Napi::Object options, const char* key, const char* who) {
  Napi::Value v = options.Get(key);
  if (!v.IsNumber())
    ThrowWithCode(env, "EINVAL", std::string(who) + ": option " + key + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

}  // namespace qdb

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  qdb::InitSocketpair(env, exports);
  qdb::InitFdFlags(env, exports);
  qdb::InitNotify(env, exports);
  qdb::InitPwAudio(env, exports);
  qdb::InitPulseAudio(env, exports);
  qdb::InitPwCapture(env, exports);
  qdb::InitPulseCapture(env, exports);
  qdb::InitPwVideo(env, exports);
  qdb::InitYuv(env, exports);
  qdb::InitV4l2(env, exports);
  qdb::InitEvdev(env, exports);
  qdb::InitLibvirt(env, exports);
  return exports;
}

NODE_API_MODULE(qemu_dbus_bridge, Init)
