// sdNotify(text): the systemd notification protocol (sd_notify(3)) without linking
// libsystemd: one datagram to $NOTIFY_SOCKET. Node has no AF_UNIX datagram sockets.
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "addon.h"
#include "js_args.h"

namespace qdb {

// Returns true when a datagram was sent, false when NOTIFY_SOCKET is unset (not under
// systemd, or Type= is not notify). Throws on a socket error so the caller can log it.
static Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string text = ArgString(Arg(info, 0), "sdNotify", "text");
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return Napi::Boolean::New(env, false);

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len >= sizeof(addr.sun_path)) {
    ThrowWithCode(env, "ENAMETOOLONG", std::string("NOTIFY_SOCKET path too long: ") + path);
  }
  memcpy(addr.sun_path, path, len);
  // '@' marks an abstract socket (sd_notify(3)): the name starts with a NUL byte.
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addrlen = offsetof(struct sockaddr_un, sun_path) + len;

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "socket(AF_UNIX, SOCK_DGRAM)");
  ssize_t n = sendto(fd, text.data(), text.size(), MSG_NOSIGNAL,
                     reinterpret_cast<struct sockaddr*>(&addr), addrlen);
  int err = errno;
  close(fd);
  if (n < 0) ThrowErrno(env, err, std::string("sd_notify to ") + path);
  return Napi::Boolean::New(env, true);
}

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}

}  // namespace qdb
