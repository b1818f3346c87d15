#include "pulse_client.h"

namespace qdb {

void PulseClient::Open(Napi::Env env, const char* thread_name, const std::string& app_name,
                       pa_proplist* proplist, const std::string& server,
                       pa_context_notify_cb_t on_state, void* owner) {
  mainloop_ = pa_threaded_mainloop_new();
  if (!mainloop_) ThrowWithCode(env, "EPULSE", "PulseAudio: pa_threaded_mainloop_new failed");
  if (thread_name) pa_threaded_mainloop_set_name(mainloop_, thread_name);
  context_ = pa_context_new_with_proplist(pa_threaded_mainloop_get_api(mainloop_), app_name.c_str(),
                                          proplist);
  if (!context_) {
    Close();
    ThrowWithCode(env, "EPULSE", "PulseAudio: pa_context_new failed");
  }
  pa_context_set_state_callback(context_, on_state, owner);
  // NOAUTOSPAWN: never start a daemon with the user's config behind the service's back. The
  // unix socket handshake completes asynchronously; later failures reach `on_state`.
  if (pa_context_connect(context_, server.empty() ? nullptr : server.c_str(),
                         PA_CONTEXT_NOAUTOSPAWN, nullptr) < 0) {
    std::string why = pa_strerror(pa_context_errno(context_));
    Close();
    // The problem only: TypeScript adds what to check by code (src/native.ts NativeError).
    ThrowWithCode(env, "EPULSE",
                  "cannot connect to PulseAudio at " +
                      (server.empty() ? std::string("the default server") : server) + " (" + why +
                      ")");
  }
  // Locked before the thread starts: it blocks on the lock until the caller's setup is done.
  pa_threaded_mainloop_lock(mainloop_);
  if (pa_threaded_mainloop_start(mainloop_) < 0) {
    pa_threaded_mainloop_unlock(mainloop_);
    Close();
    ThrowWithCode(env, "EPULSE", "PulseAudio: cannot start the mainloop thread");
  }
}

void PulseClient::Close(const std::function<void()>& destroy_streams) {
  if (!mainloop_) return;
  pa_threaded_mainloop_lock(mainloop_);
  if (destroy_streams) destroy_streams();
  if (context_) {
    pa_context_set_state_callback(context_, nullptr, nullptr);
    pa_context_disconnect(context_);
    pa_context_unref(context_);
    context_ = nullptr;
  }
  pa_threaded_mainloop_unlock(mainloop_);
  pa_threaded_mainloop_stop(mainloop_);  // joins the thread (a no-op if it never started)
  pa_threaded_mainloop_free(mainloop_);
  mainloop_ = nullptr;
}

}  // namespace qdb
