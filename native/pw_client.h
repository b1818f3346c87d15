// A stream's PipeWire client connection: a pw_thread_loop, a context with client-rt.conf and a
// core, used by every stream class (pw_audio.cc, pw_capture.cc, pw_video.cc). Each stream object
// owns a PwClient; PwClients opened with the same loop name on the same remote share ONE
// connection (loop thread, context, data thread, core), counted by its users: the speaker and the
// microphone both open kAudioLoop, so a bridge that plays and records holds one client, not two
// (issue 17: a loop thread, a data thread and ~0.4 MB resident less per bridge that records).
// The camera opens its own name: its frame work never shares a thread with audio. A connection
// whose core failed (the daemon restarted or crashed) is never handed out again: a stream that
// TypeScript recreates after the error gets a fresh connection, while the other user keeps the
// dead one until it too closes.
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

// The loop name (and sharing key) of the audio streams, speaker and microphone.
inline constexpr char kAudioLoop[] = "qdb-play";

struct PwConnection;  // pw_client.cc: the shared loop, context and core, and their users

class PwClient {
 public:
  // Loop thread, loop lock held. `id` is the failing object (PW_ID_CORE: the connection itself
  // is gone or refused), `res` a negative errno.
  using CoreErrorFn = void (*)(void* owner, uint32_t id, int res, const char* message);

  PwClient() = default;
  PwClient(const PwClient&) = delete;
  PwClient& operator=(const PwClient&) = delete;
  ~PwClient() { Close(); }

  // Joins the live connection named `thread_name` on `remote` (socket name or absolute path,
  // PIPEWIRE_REMOTE semantics; empty = the environment's default), or starts the loop thread of
  // that name and connects. On success the loop runs and its lock is HELD, so the caller creates
  // its stream before any callback can run, then calls Unlock(). `on_core_error` receives every
  // error of the connection's core: an id other than PW_ID_CORE may be another user's object.
  // On failure nothing is left open and an Error with code EPIPEWIRE is thrown; a failed connect
  // reads "cannot connect to PipeWire at <remote> (<reason>)" (what to check is TypeScript's to
  // add, by code).
  void Open(Napi::Env env, const char* thread_name, const std::string& remote,
            CoreErrorFn on_core_error, void* owner);

  // Idempotent, JS thread only, never from a loop callback (it may join the loop thread). Under
  // the loop lock: `destroy_streams` (the owner's streams/sources), then this owner's core
  // listener, so no callback of this owner runs after Close. The last user of the connection
  // then tears it down in PipeWire's order: the core under the lock, the loop stopped, then the
  // context and the loop freed.
  void Close(const std::function<void()>& destroy_streams = nullptr);

  // Loop lock held, JS thread only (never a loop callback). Returns once the loop thread has run
  // everything queued on it so far (it lets the lock go meanwhile, as pw_thread_loop_wait does):
  // PipeWire's data thread posts calls holding a stream's address there (a driver's
  // trigger_done), which pw_stream_destroy neither cancels nor waits for (0.3.65). A stream's
  // owner disconnects it (no data thread runs it any more), settles, then destroys it.
  void SettleLocked();

  bool is_open() const { return conn_ != nullptr; }
  pw_thread_loop* loop() const;
  pw_core* core() const;
  void Lock() { pw_thread_loop_lock(loop()); }
  void Unlock() { pw_thread_loop_unlock(loop()); }

 private:
  PwConnection* conn_ = nullptr;
  spa_hook core_hook_{};
  CoreErrorFn on_core_error_ = nullptr;
  void* owner_ = nullptr;
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_PW_CLIENT_H_
