// socketpair(): Node has none, and every QEMU listener needs one (one end is passed to QEMU
// as a D-Bus `h`, the other carries the peer-to-peer D-Bus connection).
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addon.h"

namespace qdb {

static Napi::Value Socketpair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    ThrowErrno(env, errno, "socketpair(AF_UNIX, SOCK_STREAM)");
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, sv[0]));
  pair.Set(1u, Napi::Number::New(env, sv[1]));
  return pair;
}

void InitSocketpair(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New(env, Socketpair, "socketpair"));
}

}  // namespace qdb
