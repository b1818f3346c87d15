#include "pw_client.h"

#include <errno.h>
#include <string.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace qdb {

// One connection to a PipeWire daemon and the PwClients that use it (pw_client.h).
struct PwConnection {
  std::string name;    // the loop thread's name: the sharing key, with `remote`
  std::string remote;  // as given to Open (empty: the environment's default)
  pw_thread_loop* loop = nullptr;
  pw_context* context = nullptr;
  pw_core* core = nullptr;
  spa_hook core_hook{};  // the connection's own: marks it dead
  int users = 0;         // JS thread only
  // The core failed (the daemon went away or refused us): never handed out again. Written on
  // the loop thread in the core error callback, read in Open: both under the loop lock, which
  // orders them, so a plain bool.
  bool dead = false;
};

namespace {

void EnsurePwInit() {
  static std::once_flag once;
  std::call_once(once, [] { pw_init(nullptr, nullptr); });
}

// Every open connection of the process. JS thread only (Open and Close), so no lock.
std::vector<PwConnection*>& Connections() {
  static std::vector<PwConnection*> all;
  return all;
}

// Tears a connection down in PipeWire's order: the core under the loop lock, the loop stopped
// (joins the thread; a no-op if it never started), then the context and the loop freed. Any
// part may be missing (a connection that failed half-way). JS thread, never a loop callback.
void Destroy(PwConnection* c) {
  if (c->loop) {
    pw_thread_loop_lock(c->loop);
    if (c->core) {
      spa_hook_remove(&c->core_hook);
      pw_core_disconnect(c->core);
      c->core = nullptr;
    }
    pw_thread_loop_unlock(c->loop);
    pw_thread_loop_stop(c->loop);
  }
  if (c->context) pw_context_destroy(c->context);
  if (c->loop) pw_thread_loop_destroy(c->loop);
  delete c;
}

// A new connection, its loop running and its lock HELD; throws EPIPEWIRE with nothing left open.
PwConnection* Connect(Napi::Env env, const char* name, const std::string& remote) {
  auto* c = new PwConnection{};
  c->name = name;
  c->remote = remote;
  c->loop = pw_thread_loop_new(name, nullptr);
  if (!c->loop) {
    int err = errno;
    Destroy(c);
    ThrowWithCode(
        env, "EPIPEWIRE",
        std::string("PipeWire: cannot create the client thread loop (") + strerror(err) + ")");
  }
  // client-rt.conf loads libpipewire-module-rt: the data thread becomes SCHED_FIFO where the
  // system allows it (root or rtkit). The lab saw a mid-stream glitch with plain client.conf.
  c->context = pw_context_new(pw_thread_loop_get_loop(c->loop),
                              pw_properties_new(PW_KEY_CONFIG_NAME, "client-rt.conf", nullptr), 0);
  if (!c->context) {
    int err = errno;
    Destroy(c);
    ThrowWithCode(env, "EPIPEWIRE",
                  std::string("PipeWire: cannot create a context with client-rt.conf (") +
                      strerror(err) + ")");
  }
  if (pw_thread_loop_start(c->loop) < 0) {
    Destroy(c);
    ThrowWithCode(env, "EPIPEWIRE", "PipeWire: cannot start the client thread loop");
  }
  pw_thread_loop_lock(c->loop);
  // Connecting is synchronous (a unix socket connect): a missing daemon is reported here.
  c->core = pw_context_connect(
      c->context,
      remote.empty() ? nullptr : pw_properties_new(PW_KEY_REMOTE_NAME, remote.c_str(), nullptr), 0);
  if (!c->core) {
    int err = errno;
    pw_thread_loop_unlock(c->loop);
    Destroy(c);
    // The problem only: what to check depends on the caller (audio or camera), and TypeScript
    // adds it by code (src/native.ts NativeError).
    ThrowWithCode(env, "EPIPEWIRE",
                  "cannot connect to PipeWire at " +
                      (remote.empty() ? "the default socket" : remote) + " (" + strerror(err) +
                      ")");
  }
  // Added before any user's listener, so the connection is marked dead before they hear of it.
  static const pw_core_events connection_events = [] {
    pw_core_events e{};
    e.version = PW_VERSION_CORE_EVENTS;
    e.error = [](void* d, uint32_t id, int seq, int res, const char* message) {
      if (id == PW_ID_CORE) static_cast<PwConnection*>(d)->dead = true;
    };
    return e;
  }();
  pw_core_add_listener(c->core, &c->core_hook, &connection_events, c);
  return c;
}

}  // namespace

pw_thread_loop* PwClient::loop() const { return conn_ ? conn_->loop : nullptr; }
pw_core* PwClient::core() const { return conn_ ? conn_->core : nullptr; }

void PwClient::Open(Napi::Env env, const char* thread_name, const std::string& remote,
                    CoreErrorFn on_core_error, void* owner) {
  EnsurePwInit();
  on_core_error_ = on_core_error;
  owner_ = owner;
  PwConnection* c = nullptr;
  for (PwConnection* x : Connections()) {
    if (x->name != thread_name || x->remote != remote) continue;
    pw_thread_loop_lock(x->loop);
    if (!x->dead) {
      c = x;  // the lock stays held: the caller's stream comes before any callback
      break;
    }
    pw_thread_loop_unlock(x->loop);
  }
  if (!c) {
    c = Connect(env, thread_name, remote);
    Connections().push_back(c);
  }
  c->users++;
  conn_ = c;
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
  pw_core_add_listener(c->core, &core_hook_, &core_events, this);
}

void PwClient::SettleLocked() {
  pw_thread_loop* tl = loop();
  pw_loop* l = pw_thread_loop_get_loop(tl);
  struct Mark {
    pw_thread_loop* tl;
    bool done;  // written by the loop thread, read here: both under the loop lock
  } mark{tl, false};
  spa_source* ev = pw_loop_add_event(
      l,
      [](void* d, uint64_t) {
        auto* m = static_cast<Mark*>(d);
        m->done = true;
        pw_thread_loop_signal(m->tl, false);
      },
      &mark);
  if (!ev) return;  // no eventfd left: nothing better to do than destroy as before
  // Queued calls are posted before their wakeup is signalled, and ours is signalled after them:
  // the loop thread's poll sees their wakeup in the same iteration as ours or an earlier one, and
  // holds the lock through the whole iteration, so when the wait below returns (lock held again)
  // they have all run.
  pw_loop_signal_event(l, ev);
  while (!mark.done) pw_thread_loop_wait(tl);
  pw_loop_destroy_source(l, ev);
}

void PwClient::Close(const std::function<void()>& destroy_streams) {
  PwConnection* c = conn_;
  if (!c) return;
  pw_thread_loop_lock(c->loop);
  if (destroy_streams) destroy_streams();  // pw_stream_destroy must hold the loop lock
  spa_hook_remove(&core_hook_);
  pw_thread_loop_unlock(c->loop);
  conn_ = nullptr;  // after destroy_streams, which may still use loop()
  if (--c->users > 0) return;
  auto& all = Connections();
  all.erase(std::find(all.begin(), all.end(), c));
  Destroy(c);
}

}  // namespace qdb
