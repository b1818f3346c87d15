// One PipeWire client connection: a pw_thread_loop, a context with client-rt.conf and a core,
// shared by every stream class (pw_audio.cc, pw_capture.cc, pw_video.cc). Each stream object
// owns its own PwClient, so a daemon restart affects each stream independently and TypeScript
// just recreates it.
//
// Threads: Open/Close and the accessors run on the JS thread; the core error callback runs on
// the loop thread with the loop lock held. Nothing here runs on a real-time data thread.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_PW_CLIENT_H_
#define QEMU_DBUS_BRIDGE_NATIVE_PW_CLIENT_H_

#include <pipewire/pipewire.h>

#include <functional>
#include <string>

#include "addon.h"

namespace qdb {

class PwClient {
 public:
  // Loop thread, loop lock held. `id` is the failing object (PW_ID_CORE: the connection itself
  // is gone or refused), `res` a negative errno.
  using CoreErrorFn = void (*)(void* owner, uint32_t id, int res, const char* message);

  PwClient() = default;
  PwClient(const PwClient&) = delete;
  PwClient& operator=(const PwClient&) = delete;
  ~PwClient() { Close(); }

  // Starts the loop thread `thread_name` and connects to `remote` (socket name or absolute path,
  // PIPEWIRE_REMOTE semantics; empty = the environment's default). On success the loop runs and
  // its lock is HELD, so the caller creates its stream before any callback can run, then calls
  // Unlock(). On failure nothing is left open and an Error with code EPIPEWIRE is thrown; a
  // failed connect reads "cannot connect to PipeWire at <remote> (<reason>)" (what to check is
  // TypeScript's to add, by code).
  void Open(Napi::Env env, const char* thread_name, const std::string& remote,
            CoreErrorFn on_core_error, void* owner);

  // Idempotent, JS thread only, never from a loop callback (it joins the loop thread). The
  // order is PipeWire's: `destroy_streams` (the owner's streams/sources) and the core go under
  // the loop lock, then the loop stops, then the context and the loop are freed.
  void Close(const std::function<void()>& destroy_streams = nullptr);

  bool is_open() const { return loop_ != nullptr; }
  pw_thread_loop* loop() const { return loop_; }
  pw_core* core() const { return core_; }
  void Lock() { pw_thread_loop_lock(loop_); }
  void Unlock() { pw_thread_loop_unlock(loop_); }

 private:
  pw_thread_loop* loop_ = nullptr;
  pw_context* context_ = nullptr;
  pw_core* core_ = nullptr;
  spa_hook core_hook_{};
  CoreErrorFn on_core_error_ = nullptr;
  void* owner_ = nullptr;
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_PW_CLIENT_H_
