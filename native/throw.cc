// ThrowWithCode and ThrowErrno (addon.h), linked into both addons.
#include <errno.h>
#include <string.h>

#include "addon.h"

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
