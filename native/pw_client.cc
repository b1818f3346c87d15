#include "pw_client.h"

#include <errno.h>
#include <string.h>

#include <mutex>

namespace qdb {

namespace {

void EnsurePwInit() {
  static std::once_flag once;
  std::call_once(once, [] { pw_init(nullptr, nullptr); });
}

}  // namespace

void PwClient::Open(Napi::Env env, const char* thread_name, const std::string& remote,
                    CoreErrorFn on_core_error, void* owner) {
  EnsurePwInit();
  on_core_error_ = on_core_error;
  owner_ = owner;
  loop_ = pw_thread_loop_new(thread_name, nullptr);
  if (!loop_)
    ThrowWithCode(
        env, "EPIPEWIRE",
        std::string("PipeWire: cannot create the client thread loop (") + strerror(errno) + ")");
  // client-rt.conf loads libpipewire-module-rt: the data thread becomes SCHED_FIFO where the
  // system allows it (root or rtkit). The lab saw a mid-stream glitch with plain client.conf.
  context_ = pw_context_new(pw_thread_loop_get_loop(loop_),
                            pw_properties_new(PW_KEY_CONFIG_NAME, "client-rt.conf", nullptr), 0);
  if (!context_) {
    int err = errno;
    Close();
    ThrowWithCode(env, "EPIPEWIRE",
                  std::string("PipeWire: cannot create a context with client-rt.conf (") +
                      strerror(err) + ")");
  }
  if (pw_thread_loop_start(loop_) < 0) {
    Close();
    ThrowWithCode(env, "EPIPEWIRE", "PipeWire: cannot start the client thread loop");
  }
  pw_thread_loop_lock(loop_);
  // Connecting is synchronous (a unix socket connect): a missing daemon is reported here.
  core_ = pw_context_connect(
      context_,
      remote.empty() ? nullptr : pw_properties_new(PW_KEY_REMOTE_NAME, remote.c_str(), nullptr), 0);
  if (!core_) {
    int err = errno;
    pw_thread_loop_unlock(loop_);
    Close();
    // The problem only: what to check depends on the caller (audio or camera), and TypeScript
    // adds it by code (src/native.ts NativeError).
    ThrowWithCode(env, "EPIPEWIRE",
                  "cannot connect to PipeWire at " +
                      (remote.empty() ? "the default socket" : remote) + " (" + strerror(err) +
                      ")");
  }
  // The daemon going away (restart, crash) shows up here, not always as a stream state.
  static const pw_core_events core_events = [] {
    pw_core_events e{};
    e.version = PW_VERSION_CORE_EVENTS;
    e.error = [](void* d, uint32_t id, int seq, int res, const char* message) {
      auto* self = static_cast<PwClient*>(d);
      if (self->on_core_error_) self->on_core_error_(self->owner_, id, res, message);
    };
    return e;
  }();
  pw_core_add_listener(core_, &core_hook_, &core_events, this);
}

void PwClient::Close(const std::function<void()>& destroy_streams) {
  if (loop_) {
    pw_thread_loop_lock(loop_);
    if (destroy_streams) destroy_streams();  // pw_stream_destroy must hold the loop lock
    if (core_) {
      spa_hook_remove(&core_hook_);
      pw_core_disconnect(core_);
      core_ = nullptr;
    }
    pw_thread_loop_unlock(loop_);
    pw_thread_loop_stop(loop_);  // joins the thread (a no-op if it never started)
  }
  if (context_) {
    pw_context_destroy(context_);
    context_ = nullptr;
  }
  if (loop_) {
    pw_thread_loop_destroy(loop_);
    loop_ = nullptr;
  }
}

}  // namespace qdb
