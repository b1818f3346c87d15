// setCloexec(fd): usocket (our fd-passing transport) creates its connected sockets with plain
// socket() and receives SCM_RIGHTS descriptors without MSG_CMSG_CLOEXEC, so without this every
// child process we spawn later (QEMU in tests, gst-launch, pw-* tools) inherits our D-Bus
// connection and QEMU's shared-memory frames. Node has no fcntl().
#include <errno.h>
#include <fcntl.h>

#include "addon.h"
#include "js_args.h"

namespace qdb {

static Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt32(Arg(info, 0), "setCloexec", "fd");
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) ThrowErrno(env, errno, "fcntl(F_GETFD)");
  if ((flags & FD_CLOEXEC) == 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "fcntl(F_SETFD, FD_CLOEXEC)");
  }
  return env.Undefined();
}

void InitFdFlags(Napi::Env env, Napi::Object exports) {
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
}

}  // namespace qdb
