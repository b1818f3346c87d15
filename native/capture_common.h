// Shared by the microphone capture streams (pw_capture.cc, pulse_capture.cc): option parsing,
// the state events sent to JavaScript, the JavaScript-facing read/discard/stats over the ring,
// and CaptureBase, which holds those and defines the JS class once for both servers.
// Header-only so that binding.gyp (a shared file) needs no new source entry.
//
// Data path: the server's capture callback (PipeWire RT data thread, PulseAudio mainloop
// thread) copies each chunk into a preallocated SPSC ring (spsc_ring.h) and returns; the Node
// main thread drains the ring synchronously when QEMU calls AudioInListener.Read. Neither side
// ever waits for the other: a full ring drops the OLDEST bytes (counted: for a microphone the
// newest audio is the one worth keeping, and latency stays bounded), an empty ring returns
// 0 bytes (the TypeScript handler pads with silence and counts it).
#ifndef QEMU_DBUS_BRIDGE_NATIVE_CAPTURE_COMMON_H_
#define QEMU_DBUS_BRIDGE_NATIVE_CAPTURE_COMMON_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "js_args.h"
#include "pcm_names.h"
#include "spsc_ring.h"

namespace qdb {

// What the TypeScript side asked for (src/native-api/capture.ts NativeCaptureOptions). Policy
// and validation live in src/audio/in/ (it maps the guest's format to one of these names), and
// the stream's identity (node name, description, role, media class, target) arrives whole in
// `props` from src/stream-identity.ts; here we only re-check what would otherwise crash.
struct CaptureOptions {
  std::string format;  // "U8" "S8" "S16LE" "S16BE" "U16LE" "U16BE" "S32LE" "S32BE" "U32LE" "U32BE"
                       // "F32LE" "F32BE"
  uint32_t rate = 0;
  uint32_t channels = 0;
  uint32_t bytes_per_sample = 0;
  std::string stream_name;  // PulseAudio stream name / PipeWire stream name
  std::vector<std::pair<std::string, std::string>> props;  // stream properties, in JS order
  std::string device;  // PulseAudio source; empty = default (PipeWire: target.object in props)
  std::string remote;  // PipeWire remote (name or socket path) / PulseAudio server; empty = default
  uint32_t latency_frames = 0;  // capture period asked of the server
  uint32_t ring_frames = 0;     // ring capacity
  // Channel position names per channel (src/audio/format.ts CHANNEL_LAYOUTS); empty: unpositioned.
  std::vector<std::string> positions;
};

inline CaptureOptions ParseCaptureOptions(const Napi::Object& o, const std::string& who) {
  CaptureOptions c;
  c.format = OptString(o, "format", who);
  const SampleFormatName* sf = SampleFormatByName(c.format);
  c.bytes_per_sample = sf ? sf->bytes : 0;
  if (c.bytes_per_sample == 0)
    ThrowInvalid(o.Env(), who, "option format: unknown sample format '" + c.format + "'");
  c.rate = OptUint32(o, "rate", who, 1000, 768000);
  c.channels = OptUint32(o, "channels", who, 1, 64);
  c.stream_name = OptString(o, "streamName", who);
  c.props = OptStringMap(o, "props", who);
  c.device = OptStringOr(o, "device", who, "");
  c.remote = OptStringOr(o, "remote", who, "");
  c.latency_frames = OptUint32(o, "latencyFrames", who, 16, 65536);
  c.ring_frames = OptUint32(o, "ringFrames", who, 256, 1u << 22);
  if (!o.Get("positions").IsUndefined()) {
    c.positions = OptStrings(o, "positions", who, c.channels);
    for (const std::string& name : c.positions)
      if (!ChannelByName(name))
        ThrowInvalid(o.Env(), who, "option positions: unknown channel position '" + name + "'");
  }
  return c;
}

// The value of property `key` in `props`, or `fallback`.
inline std::string PropOr(const std::vector<std::pair<std::string, std::string>>& props,
                          const char* key, const std::string& fallback) {
  for (const auto& kv : props)
    if (kv.first == key) return kv.second;
  return fallback;
}

// State changes posted to JavaScript through one ThreadSafeFunction per stream:
// onState(state: string, message: string). Posted only from the server's control thread,
// never from the RT data thread (a post allocates).
class CaptureEvents {
 public:
  void Start(Napi::Env env, Napi::Function on_state, const char* resource) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, on_state, resource, 0, 1);
    // An open microphone must not keep Node alive by itself: the D-Bus connection does that.
    tsfn_.Unref(env);
    started_ = true;
  }
  void Post(const char* state, const std::string& message) {
    if (!started_) return;
    auto* ev = new Event{state, message};
    napi_status s = tsfn_.NonBlockingCall(ev, [](Napi::Env env, Napi::Function cb, Event* e) {
      std::unique_ptr<Event> owned(e);
      if (env == nullptr || cb == nullptr) return;  // queue drained at teardown
      try {
        cb.Call({Napi::String::New(env, owned->state), Napi::String::New(env, owned->message)});
      } catch (const Napi::Error&) {
        // JS can no longer run (environment shutting down): an exception must not escape into
        // libuv, it would terminate the process. (The TypeScript listener catches its own.)
      }
    });
    if (s != napi_ok) delete ev;  // queue closing: the stream is being closed anyway
  }
  // Call once the server thread can no longer post.
  void Stop() {
    if (!started_) return;
    started_ = false;
    tsfn_.Release();
  }

 private:
  struct Event {
    std::string state;
    std::string message;
  };
  Napi::ThreadSafeFunction tsfn_;
  bool started_ = false;
};

// The ring plus counters, and the JavaScript methods that read it (main thread only).
class CaptureRing {
 public:
  void Init(uint32_t ring_frames, uint32_t frame_bytes) {
    ring_.reset(new SpscRing(ring_frames, frame_bytes));
  }
  uint32_t frame_bytes() const { return static_cast<uint32_t>(ring_->frame_bytes()); }

  // Producer (server thread, possibly real-time): no allocation, no lock, no syscall.
  void Produce(const uint8_t* data, uint32_t size) {
    size -= size % ring_->frame_bytes();
    size_t dropped = ring_->WriteDropOldest(data, size);
    captured_bytes_.fetch_add(size, std::memory_order_relaxed);
    if (dropped) overrun_bytes_.fetch_add(dropped, std::memory_order_relaxed);
    callbacks_.fetch_add(1, std::memory_order_relaxed);
  }

  // read(into: Uint8Array, offset?: number, length?: number): number of bytes copied (whole
  // frames, <= length). Never waits.
  Napi::Value JsRead(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    static const std::string who = "read";
    Napi::Uint8Array into = ArgBytes(Arg(info, 0), who, "into");
    size_t len = into.ByteLength();
    size_t offset = 0;
    if (!Arg(info, 1).IsUndefined())
      offset = ArgInteger(info[1], who, "offset", 0, static_cast<int64_t>(len));
    size_t n = len - offset;
    if (!Arg(info, 2).IsUndefined())
      n = ArgInteger(info[2], who, "length", 0, static_cast<int64_t>(n));
    size_t got = ring_ ? ring_->Read(into.Data() + offset, n) : 0;
    return Napi::Number::New(env, static_cast<double>(got));
  }

  // discard(bytes): drops up to `bytes` of the oldest queued audio; returns bytes dropped.
  Napi::Value JsDiscard(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t n = ArgInteger(Arg(info, 0), "discard", "bytes", 0, INT64_C(1) << 40);
    return Napi::Number::New(env, static_cast<double>(ring_ ? ring_->Discard(n) : 0));
  }

  Napi::Value JsAvailable(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(ring_ ? ring_->Fill() : 0));
  }

  Napi::Object Stats(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("available", static_cast<double>(ring_ ? ring_->Fill() : 0));
    o.Set("capacity", static_cast<double>(ring_ ? ring_->capacity_bytes() : 0));
    o.Set("capturedBytes", static_cast<double>(captured_bytes_.load(std::memory_order_relaxed)));
    o.Set("overrunBytes", static_cast<double>(overrun_bytes_.load(std::memory_order_relaxed)));
    o.Set("callbacks", static_cast<double>(callbacks_.load(std::memory_order_relaxed)));
    return o;
  }

 private:
  std::unique_ptr<SpscRing> ring_;
  std::atomic<uint64_t> captured_bytes_{0};
  std::atomic<uint64_t> overrun_bytes_{0};
  std::atomic<uint64_t> callbacks_{0};
};

// The JS class of a capture stream (src/native-api/capture.ts NativeCapture), less what depends
// on the server. Derived (main thread) provides:
//   static constexpr char kClassName[];  // the JS class name
//   void CloseServer();                  // idempotent: destroys the stream and the client, after
//                                        // which no server thread runs or posts events
//   void AddServerStats(Napi::Object o); // sets "state" and the server's own fields
// Derived's constructor checks what its server can record, calls Start(), then connects (on a
// throw after Start(): Teardown(), then rethrow); its destructor calls Teardown().
template <typename Derived>
class CaptureBase : public Napi::ObjectWrap<Derived> {
 public:
  static Napi::Function Define(Napi::Env env) {
    using Wrap = Napi::ObjectWrap<Derived>;
    return Wrap::DefineClass(env, Derived::kClassName,
                             {
                                 Wrap::InstanceMethod("read", &CaptureBase::Read),
                                 Wrap::InstanceMethod("discard", &CaptureBase::Discard),
                                 Wrap::InstanceMethod("available", &CaptureBase::Available),
                                 Wrap::InstanceMethod("stats", &CaptureBase::Stats),
                                 Wrap::InstanceMethod("close", &CaptureBase::Close),
                             });
  }

 protected:
  // new <kClassName>(options, onState(state, message))
  explicit CaptureBase(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Derived>(info) {
    const std::string who = Derived::kClassName;
    Napi::Object o = ArgObject(Arg(info, 0), who, "options");
    ArgFunction(Arg(info, 1), who, "onState");
    opts_ = ParseCaptureOptions(o, who);
  }

  // Allocates the ring and starts the events (thread name `resource`). Only after the server's
  // own checks: from here on a failed constructor must call Teardown().
  void Start(const Napi::CallbackInfo& info, const char* resource) {
    Napi::Env env = info.Env();
    ring_.Init(opts_.ring_frames, opts_.bytes_per_sample * opts_.channels);
    events_.Start(env, info[1].As<Napi::Function>(), resource);
    // Streams still open when the environment goes away (process exit, worker end) must stop
    // their threads before the addon is unloaded.
    env_ = env;
    napi_add_env_cleanup_hook(env, &CaptureBase::OnEnvCleanup, this);
    cleanup_registered_ = true;
  }

  // Idempotent. Main thread only (also from the env cleanup hook and the finalizer).
  void Teardown() {
    static_cast<Derived*>(this)->CloseServer();
    events_.Stop();
    if (cleanup_registered_) {
      cleanup_registered_ = false;
      napi_remove_env_cleanup_hook(env_, &CaptureBase::OnEnvCleanup, this);
    }
  }

  CaptureOptions opts_;
  CaptureRing ring_;
  CaptureEvents events_;

 private:
  static void OnEnvCleanup(void* data) {
    auto* self = static_cast<CaptureBase*>(data);
    self->cleanup_registered_ = false;  // Node is running it: removing it now is not allowed
    self->Teardown();
  }

  Napi::Value Read(const Napi::CallbackInfo& info) { return ring_.JsRead(info); }
  Napi::Value Discard(const Napi::CallbackInfo& info) { return ring_.JsDiscard(info); }
  Napi::Value Available(const Napi::CallbackInfo& info) { return ring_.JsAvailable(info); }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = ring_.Stats(info.Env());
    static_cast<Derived*>(this)->AddServerStats(o);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  napi_env env_ = nullptr;
  bool cleanup_registered_ = false;
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_CAPTURE_COMMON_H_
