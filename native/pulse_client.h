// One PulseAudio client connection: a pa_threaded_mainloop and a context, shared by
// pulse_audio.cc (playback) and pulse_capture.cc (capture). Each stream object owns its own
// PulseClient. Connecting is asynchronous: the owner's context state callback (mainloop thread)
// creates the stream on READY and reports FAILED/TERMINATED.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_PULSE_CLIENT_H_
#define QEMU_DBUS_BRIDGE_NATIVE_PULSE_CLIENT_H_

#include <pulse/pulseaudio.h>

#include <functional>
#include <string>

#include "addon.h"

namespace qdb {

class PulseClient {
 public:
  PulseClient() = default;
  PulseClient(const PulseClient&) = delete;
  PulseClient& operator=(const PulseClient&) = delete;
  ~PulseClient() { Close(); }

  // Creates the mainloop (thread `thread_name`, or libpulse's default name when null) and a
  // context named `app_name` with `proplist` (may be null; not taken), registers `on_state` and
  // connects to `server` (empty = PULSE_SERVER / client.conf), then starts the mainloop thread.
  // On success the mainloop lock is HELD, so the caller finishes its setup before `on_state` can
  // run, then calls Unlock(). On failure nothing is left open and an Error with code EPULSE is
  // thrown; a failed connect reads "cannot connect to PulseAudio at <server> (<reason>)"
  // (what to check is TypeScript's to add, by code).
  void Open(Napi::Env env, const char* thread_name, const std::string& app_name,
            pa_proplist* proplist, const std::string& server, pa_context_notify_cb_t on_state,
            void* owner);

  // Idempotent, JS thread only, never from a mainloop callback (it joins the thread).
  // `destroy_streams` runs first under the mainloop lock, then the context is disconnected.
  void Close(const std::function<void()>& destroy_streams = nullptr);

  bool is_open() const { return mainloop_ != nullptr; }
  pa_context* context() const { return context_; }
  void Lock() { pa_threaded_mainloop_lock(mainloop_); }
  void Unlock() { pa_threaded_mainloop_unlock(mainloop_); }

 private:
  pa_threaded_mainloop* mainloop_ = nullptr;
  pa_context* context_ = nullptr;
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_PULSE_CLIENT_H_
