// libvirt: one connection object with the five calls the bridge needs (open, domain lookup,
// domain XML, virDomainOpenGraphics, close) and lifecycle/close events. Thin on purpose: which
// domain, what an event means, when to reconnect and every message a user sees live in
// src/libvirt/. Errors carry code "ELIBVIRT" plus libvirt's own number (`virCode`) so TypeScript
// can decide by number, never by message text.
//
// Threads and why each step is safe:
// - Blocking calls (they are RPCs to libvirtd and may take as long as libvirtd does) run on
//   libuv's thread pool through LibvirtCall, never on the JavaScript thread. Each call takes its
//   own reference on the virConnectPtr (virConnectRef) before it is queued and drops it at the
//   end, so close() racing a call in flight cannot free the connection under it. libvirt
//   documents a virConnectPtr as safe to use from several threads at once; the virDomainPtr each
//   call looks up is used and freed by that call alone.
// - libvirt's error state (virGetLastError) is thread-local: a worker reads it on the thread
//   that made the failing call, right after the call.
// - Events need an event loop. We use libvirt's default implementation
//   (virEventRegisterDefaultImpl, once per process, before the first connection, as libvirt
//   requires) run by one detached thread that does nothing but virEventRunDefaultImpl. The same
//   loop drives the keepalive pings that detect a dead libvirtd (close callback). The domain
//   event and close callbacks therefore run on that thread: they only copy their arguments into
//   a heap Event and hand it to a ThreadSafeFunction (NonBlockingCall; N-API queues it for the
//   JavaScript thread). They never touch N-API values.
// - Lifetime of what the callbacks use: each registration owns one "use" of the
//   ThreadSafeFunction (initial thread count 2: lifecycle + close). libvirt calls the free
//   callback once it will never call that callback again (after deregistration or when the
//   connection is finally freed); the free callback releases that use. So the function cannot be
//   released while a callback might still call it. When both uses are gone N-API finalizes it.
// - The event thread lives as long as the process: libvirt has no way to stop the default loop
//   from outside, and it costs one thread blocked in poll(2).
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>
#include <unistd.h>

#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "addon.h"
#include "js_args.h"

namespace qdb {

namespace {

struct LvError {
  int code = 0;
  std::string message;
};

LvError LastError(const char* what) {
  LvError e;
  virErrorPtr err = virGetLastError();
  if (err) {
    e.code = err->code;
    e.message = err->message ? err->message : what;
  } else {
    e.code = VIR_ERR_INTERNAL_ERROR;
    e.message = std::string(what) + " failed";
  }
  virResetLastError();
  return e;
}

// libvirt prints every error on stderr unless told otherwise: TypeScript reports them instead.
void SilentErrors(void*, virErrorPtr) {}

std::once_flag event_loop_once;
int event_loop_rc = 0;

void StartEventLoop() {
  std::call_once(event_loop_once, [] {
    virSetErrorFunc(nullptr, SilentErrors);
    event_loop_rc = virEventRegisterDefaultImpl();
    if (event_loop_rc < 0) return;
    std::thread([] {
      for (;;) virEventRunDefaultImpl();
    }).detach();
  });
}

// One event on its way from libvirt's event thread to JavaScript.
struct Event {
  std::string kind;  // "lifecycle" | "closed"
  std::string name;
  std::string uuid;
  int id = -1;
  int event = 0;
  int detail = 0;
};

struct EventSink;

void DeliverEvent(Napi::Env env, Napi::Function callback, EventSink*, Event* ev) {
  if (env != nullptr && callback != nullptr) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", ev->kind);
    if (ev->kind == "lifecycle") {
      o.Set("name", ev->name);
      o.Set("uuid", ev->uuid);
      o.Set("id", ev->id);
      o.Set("event", ev->event);
      o.Set("detail", ev->detail);
    } else {
      o.Set("reason", ev->detail);
    }
    callback.Call({o});
  }
  delete ev;
}

using EventFn = Napi::TypedThreadSafeFunction<EventSink, Event, DeliverEvent>;

// Shared by both registrations; see "Lifetime" above.
struct EventSink {
  EventFn fn;
  void Post(Event* ev) {
    if (fn.NonBlockingCall(ev) != napi_ok) delete ev;  // closing: nobody listens any more
  }
};

int OnLifecycle(virConnectPtr, virDomainPtr dom, int event, int detail, void* opaque) {
  auto* ev = new Event();
  ev->kind = "lifecycle";
  const char* name = virDomainGetName(dom);
  ev->name = name ? name : "";
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(dom, uuid) == 0) ev->uuid = uuid;
  ev->id = static_cast<int>(virDomainGetID(dom));
  ev->event = event;
  ev->detail = detail;
  static_cast<EventSink*>(opaque)->Post(ev);
  return 0;
}

void OnClose(virConnectPtr, int reason, void* opaque) {
  auto* ev = new Event();
  ev->kind = "closed";
  ev->detail = reason;
  static_cast<EventSink*>(opaque)->Post(ev);
}

// Called by libvirt once per registration when it will not call that callback again.
void ReleaseSink(void* opaque) {
  auto* sink = static_cast<EventSink*>(opaque);
  // The last Release() finalizes the function; the sink itself is freed by its finalizer.
  sink->fn.Release();
}

// A blocking libvirt call on the thread pool that settles a promise. `work` runs on the pool
// thread and returns false with `error` filled on failure; `done` builds the result on the
// JavaScript thread.
class LibvirtCall : public Napi::AsyncWorker {
 public:
  LibvirtCall(Napi::Env env, virConnectPtr conn, std::function<bool(virConnectPtr, LvError&)> work,
              std::function<Napi::Value(Napi::Env)> done, std::function<void()> always = nullptr)
      : Napi::AsyncWorker(env, "libvirt"),
        deferred_(Napi::Promise::Deferred::New(env)),
        conn_(conn),
        work_(std::move(work)),
        done_(std::move(done)),
        always_(std::move(always)) {
    if (conn_) virConnectRef(conn_);
  }
  ~LibvirtCall() override {
    if (conn_) virConnectClose(conn_);
  }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override { ok_ = work_(conn_, error_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (always_) always_();
    if (!ok_) {
      Napi::Error err = Napi::Error::New(env, error_.message);
      err.Set("code", Napi::String::New(env, "ELIBVIRT"));
      err.Set("virCode", Napi::Number::New(env, error_.code));
      deferred_.Reject(err.Value());
      return;
    }
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  virConnectPtr conn_;
  std::function<bool(virConnectPtr, LvError&)> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::function<void()> always_;
  bool ok_ = false;
  LvError error_;
};

// Looks a domain up by UUID string or by name (TypeScript says which).
virDomainPtr Lookup(virConnectPtr conn, const std::string& key, bool by_uuid, LvError& error) {
  virDomainPtr dom = by_uuid ? virDomainLookupByUUIDString(conn, key.c_str())
                             : virDomainLookupByName(conn, key.c_str());
  if (!dom) error = LastError("domain lookup");
  return dom;
}

class LibvirtConnection : public Napi::ObjectWrap<LibvirtConnection> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LibvirtConnection",
                       {
                           InstanceMethod<&LibvirtConnection::Open>("open"),
                           InstanceMethod<&LibvirtConnection::Domain>("domain"),
                           InstanceMethod<&LibvirtConnection::Xml>("xml"),
                           InstanceMethod<&LibvirtConnection::OpenGraphics>("openGraphics"),
                           InstanceMethod<&LibvirtConnection::Close>("close"),
                       });
  }

  explicit LibvirtConnection(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<LibvirtConnection>(info) {}

  ~LibvirtConnection() override {
    // Garbage-collected without close(): give the connection back (callbacks are freed by
    // libvirt with it, which releases the event function).
    if (conn_) virConnectClose(conn_);
  }

  // open(uri, readOnly, onEvent?): Promise<string> (the URI libvirt actually connected to)
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string uri = ArgString(Arg(info, 0), "LibvirtConnection.open", "uri");
    bool read_only = ArgBool(Arg(info, 1), "LibvirtConnection.open", "readOnly");
    if (conn_ || opening_) ThrowWithCode(env, "EINVAL", "LibvirtConnection: already open");
    StartEventLoop();
    if (event_loop_rc < 0)
      ThrowWithCode(env, "ELIBVIRT", "libvirt: could not register its event loop implementation");
    EventSink* sink = nullptr;
    if (info.Length() > 2 && info[2].IsFunction()) {
      sink = new EventSink();
      sink->fn = EventFn::New(env, info[2].As<Napi::Function>(), "libvirt-events", 0, 2, sink,
                              [](Napi::Env, void*, EventSink* s) { delete s; });
      // Events must not keep the process alive on their own; the service has its own keep-alive.
      sink->fn.Unref(env);
    }
    opening_ = true;
    struct Opened {
      virConnectPtr conn = nullptr;
      std::string uri;
      int lifecycle_id = -1;
      bool close_cb = false;
    };
    auto result = std::make_shared<Opened>();
    auto* call = new LibvirtCall(
        env, nullptr,
        [uri, read_only, sink, result](virConnectPtr, LvError& error) {
          const char* u = uri.empty() ? nullptr : uri.c_str();
          virConnectPtr c = read_only ? virConnectOpenReadOnly(u) : virConnectOpen(u);
          if (!c) {
            error = LastError("virConnectOpen");
            if (sink) {
              sink->fn.Release();
              sink->fn.Release();
            }
            return false;
          }
          // Keepalive makes a dead libvirtd show up as a close event within seconds.
          virConnectSetKeepAlive(c, 5, 3);
          // Drivers without keepalive (e.g. test:///) leave an error behind: not ours to report.
          virResetLastError();
          if (sink) {
            result->lifecycle_id = virConnectDomainEventRegisterAny(
                c, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle),
                sink, ReleaseSink);
            if (result->lifecycle_id < 0) {
              error = LastError("virConnectDomainEventRegisterAny");
              sink->fn.Release();
              sink->fn.Release();
              virConnectClose(c);
              return false;
            }
            result->close_cb = virConnectRegisterCloseCallback(c, OnClose, sink, ReleaseSink) == 0;
            if (!result->close_cb) sink->fn.Release();  // no close events; lifecycle still works
          }
          char* actual = virConnectGetURI(c);
          result->uri = actual ? actual : uri;
          free(actual);
          result->conn = c;
          return true;
        },
        [this, result](Napi::Env env) -> Napi::Value {
          conn_ = result->conn;
          lifecycle_id_ = result->lifecycle_id;
          close_cb_ = result->close_cb;
          return Napi::String::New(env, result->uri);
        },
        [this] {
          opening_ = false;
          self_.Reset();
        });
    // The object must outlive the call that fills conn_.
    self_ = Napi::Persistent(Value());
    Napi::Promise p = call->Promise();
    call->Queue();
    return p;
  }

  // domain(key, byUuid): Promise<{name, uuid, id, active, state}>
  Napi::Value Domain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [key, by_uuid] = KeyArgs(info, "domain");
    struct Out {
      std::string name, uuid;
      int id = -1, active = 0, state = 0;
    };
    auto out = std::make_shared<Out>();
    return Queue(
        env,
        [key, by_uuid, out](virConnectPtr c, LvError& error) {
          virDomainPtr dom = Lookup(c, key, by_uuid, error);
          if (!dom) return false;
          const char* name = virDomainGetName(dom);
          out->name = name ? name : "";
          char uuid[VIR_UUID_STRING_BUFLEN];
          if (virDomainGetUUIDString(dom, uuid) == 0) out->uuid = uuid;
          out->id = static_cast<int>(virDomainGetID(dom));
          out->active = virDomainIsActive(dom);
          int reason = 0;
          if (virDomainGetState(dom, &out->state, &reason, 0) < 0) {
            error = LastError("virDomainGetState");
            virDomainFree(dom);
            return false;
          }
          virDomainFree(dom);
          return true;
        },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("name", out->name);
          o.Set("uuid", out->uuid);
          o.Set("id", out->id);
          o.Set("active", out->active == 1);
          o.Set("state", out->state);
          return o;
        });
  }

  // xml(key, byUuid, inactive): Promise<string>
  Napi::Value Xml(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [key, by_uuid] = KeyArgs(info, "xml");
    bool inactive = info.Length() > 2 && info[2].ToBoolean().Value();
    auto out = std::make_shared<std::string>();
    return Queue(
        env,
        [key, by_uuid, inactive, out](virConnectPtr c, LvError& error) {
          virDomainPtr dom = Lookup(c, key, by_uuid, error);
          if (!dom) return false;
          char* xml = virDomainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
          if (!xml) error = LastError("virDomainGetXMLDesc");
          virDomainFree(dom);
          if (!xml) return false;
          *out = xml;
          free(xml);
          return true;
        },
        [out](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *out); });
  }

  // openGraphics(key, byUuid, index, fd): Promise<void> — hands `fd` (one end of a socketpair
  // the caller made) to QEMU as a p2p D-Bus display client (needs a read-write connection).
  // Not virDomainOpenGraphicsFD: there libvirtd makes the socketpair, so QEMU's D-Bus server sees
  // libvirtd's credentials on it, and EXTERNAL authentication as any user but root fails. Our own
  // socketpair carries our credentials. The caller keeps `fd` open until the promise settles
  // (libvirt sends a copy during the call).
  Napi::Value OpenGraphics(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [key, by_uuid] = KeyArgs(info, "openGraphics");
    unsigned int idx = ArgUint32(Arg(info, 2), "openGraphics", "index");
    int fd = ArgInt32(Arg(info, 3), "openGraphics", "fd");
    return Queue(
        env,
        [key, by_uuid, idx, fd](virConnectPtr c, LvError& error) {
          virDomainPtr dom = Lookup(c, key, by_uuid, error);
          if (!dom) return false;
          bool ok = virDomainOpenGraphics(dom, idx, fd, 0) == 0;
          if (!ok) error = LastError("virDomainOpenGraphics");
          virDomainFree(dom);
          return ok;
        },
        [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
  }

  // close(): Promise<void>. Deregistration happens inside virConnectClose's final unref; calls
  // in flight keep their own reference and finish first.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    virConnectPtr c = conn_;
    int lifecycle_id = lifecycle_id_;
    bool close_cb = close_cb_;
    conn_ = nullptr;
    lifecycle_id_ = -1;
    close_cb_ = false;
    auto* call = new LibvirtCall(
        env, nullptr,
        [c, lifecycle_id, close_cb](virConnectPtr, LvError&) {
          if (c) {
            // Best effort: on a dead connection these fail and libvirt frees the callbacks
            // (calling ReleaseSink) when the connection object itself goes.
            if (lifecycle_id >= 0) virConnectDomainEventDeregisterAny(c, lifecycle_id);
            if (close_cb) virConnectUnregisterCloseCallback(c, OnClose);
            virResetLastError();
            virConnectClose(c);
          }
          return true;
        },
        [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
    Napi::Promise p = call->Promise();
    call->Queue();
    return p;
  }

 private:
  std::pair<std::string, bool> KeyArgs(const Napi::CallbackInfo& info, const char* who) {
    Napi::Env env = info.Env();
    std::string key = ArgString(Arg(info, 0), who, "key");
    bool by_uuid = ArgBool(Arg(info, 1), who, "byUuid");
    if (!conn_)
      ThrowWithCode(env, "ENOTCONN", std::string(who) + ": the libvirt connection is closed");
    return {key, by_uuid};
  }

  Napi::Value Queue(Napi::Env env, std::function<bool(virConnectPtr, LvError&)> work,
                    std::function<Napi::Value(Napi::Env)> done) {
    auto* call = new LibvirtCall(env, conn_, std::move(work), std::move(done));
    Napi::Promise p = call->Promise();
    call->Queue();
    return p;
  }

  virConnectPtr conn_ = nullptr;
  int lifecycle_id_ = -1;
  bool close_cb_ = false;
  bool opening_ = false;
  Napi::ObjectReference self_;
};

}  // namespace

void InitLibvirt(Napi::Env env, Napi::Object exports) {
  exports.Set("LibvirtConnection", LibvirtConnection::Define(env));
}

}  // namespace qdb
