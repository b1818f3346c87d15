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
