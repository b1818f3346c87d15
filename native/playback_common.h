// Shared by the speaker playback streams (pw_audio.cc PwPlayback, pulse_audio.cc PulsePlayback):
// the server-independent half, written once so both classes keep one JavaScript surface
// (src/native-api/audio.ts NativePlayback). Header-only so that binding.gyp (a shared file)
// needs no new source entry.
//
// PlaybackBase<Derived> parses the options, owns the SpscRing that JS write() fills and the
// counters that stats() reports, and defines the JS method table. Everything that depends on
// the sound server (creating and connecting the stream, moving bytes out of the ring, applying
// cork/rate, draining, tearing down) stays in the derived class, behind the hooks listed
// on PlaybackBase. Nothing here runs on a server thread except the ring and the atomics the
// derived class touches there, so the real-time rules (no allocation, no lock, no JS) are the
// derived class's to keep, as before.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_PLAYBACK_COMMON_H_
#define QEMU_DBUS_BRIDGE_NATIVE_PLAYBACK_COMMON_H_

#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "js_args.h"
#include "pcm_names.h"
#include "spsc_ring.h"

namespace qdb {

// CLOCK_MONOTONIC in ns: stats().nowNs, so TS can pair each sample with the server's clock.
inline int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// stats().state. The values are PipeWire's pw_stream_state (pw_audio.cc stores those as is and
// checks they match); pulse_audio.cc maps PulseAudio's states onto them.
enum PlaybackState {
  kPlaybackError = -1,
  kPlaybackUnconnected = 0,
  kPlaybackConnecting = 1,
  kPlaybackPaused = 2,
  kPlaybackStreaming = 3,
};

// What TypeScript resolved (NativePlaybackOptions). Policy and validation live in src/audio/out;
// here we only re-check what would otherwise crash.
struct PlaybackOptions {
  const SampleFormatName* format = nullptr;
  uint32_t rate = 0;
  uint32_t channels = 0;
  uint32_t ring_frames = 0;
  uint32_t start_frames = 0;                  // prebuffer before playing
  uint32_t latency_frames = 0;                // PipeWire node.latency / PulseAudio tlength share
  std::vector<const ChannelName*> positions;  // one per channel
  std::vector<std::pair<std::string, std::string>> props;  // stream properties, in JS order
  std::string stream_name;
  std::string remote;  // PipeWire remote / PulseAudio server; empty = the environment's
  std::string device;  // PulseAudio sink; empty = default (PipeWire: target.object in props)
};

// Derived (JS thread unless noted) provides:
//   static constexpr char kClassName[];  // the JS class name, also the prefix of every error
//   static const SampleFormatName* CheckFormat(Napi::Env, const std::string& name);
//       the server's entry for `name`, or throws EINVAL
//   static void CheckSpec(Napi::Env, const SampleFormatName&, uint32_t rate, uint32_t channels);
//       throws EINVAL when the server cannot take this rate/channel count
//   void AfterWrite();                       // new frames are in the ring
//   double AddServerStats(Napi::Object r);   // sets server-specific stats fields; returns the
//                                            // frames the server holds beyond the ring
//   void ApplyActive(bool active);           // cork/uncork
//   void ApplyRate(double ratio);            // already checked to be within 0.9..1.1
//   void StartDrain();
//   void PlayOut();                          // play what is queued without the start threshold
//   void ApplyStartFrames(uint32_t frames);  // start_frames_ changed (already stored)
//   void Teardown();                         // idempotent; also called by the destructor
// Property names of stats(), made once per stream and kept (JS thread only). A name made from a C
// string is looked up in V8's string table on every use: that was most of a stats() call in perf
// (issue 17: drift control polls 20 times a second per voice). A kept name is looked up once. Kept
// in an array: Node 20's napi_create_reference takes no strings.
class StatsKeys {
 public:
  napi_value operator()(Napi::Env env, const char* name) {
    if (held_.IsEmpty()) held_ = Napi::Persistent(Napi::Array::New(env));
    Napi::Array a = held_.Value().As<Napi::Array>();
    for (uint32_t i = 0; i < names_.size(); i++)
      if (names_[i] == name) return a.Get(i);
    a.Set(uint32_t(names_.size()), Napi::String::New(env, name));
    names_.push_back(name);
    return a.Get(uint32_t(names_.size() - 1));
  }

 private:
  Napi::Reference<Napi::Array> held_;
  std::vector<const char*> names_;
};

template <typename Derived>
class PlaybackBase : public Napi::ObjectWrap<Derived> {
 public:
  // The stream behind a JS object, when it is one of this class's (checked by type tag, so an
  // object that only looks like one is never unwrapped); else nullptr. JS thread.
  static Derived* FromObject(Napi::Object o) {
    if (!o.CheckTypeTag(&Derived::kTypeTag)) return nullptr;
    return Napi::ObjectWrap<Derived>::Unwrap(o);
  }

  // The ring's producer side, for whichever thread produces (write() on the JS thread, or
  // speaker_core.h's SpeakerCore under its lock: never both at once). `due_ns`: when the next
  // Write is due, CLOCK_MONOTONIC ns (0 = no schedule). Never blocks: when the ring is full the
  // OLDEST queued frames are dropped (counted in overflowFrames). Returns the bytes queued.
  size_t Produce(const uint8_t* p, size_t n, int64_t due_ns) {
    next_due_ns_.store(due_ns, std::memory_order_relaxed);
    n -= n % stride_;
    size_t dropped = ring_->WriteDropOldest(p, n);
    if (dropped) overflow_frames_.fetch_add(dropped / stride_, std::memory_order_relaxed);
    written_frames_.fetch_add(n / stride_, std::memory_order_relaxed);
    derived().AfterWrite();
    return n;
  }

  // Frames in the ring now (a snapshot; the server's own queue not included).
  size_t RingFillFrames() const { return ring_->Fill() / stride_; }

  static Napi::Function Define(Napi::Env env) {
    using Wrap = Napi::ObjectWrap<Derived>;
    return Wrap::DefineClass(
        env, Derived::kClassName,
        {
            Wrap::InstanceMethod("write", &PlaybackBase::Write),
            Wrap::InstanceMethod("stats", &PlaybackBase::Stats),
            Wrap::InstanceMethod("setActive", &PlaybackBase::SetActive),
            Wrap::InstanceMethod("setRate", &PlaybackBase::SetRate),
            Wrap::InstanceMethod("drain", &PlaybackBase::Drain),
            Wrap::InstanceMethod("playOut", &PlaybackBase::PlayOut),
            Wrap::InstanceMethod("setStartFrames", &PlaybackBase::SetStartFrames),
            Wrap::InstanceMethod("close", &PlaybackBase::Close),
        });
  }

 protected:
  // new <kClassName>({format, rate, channels, positions[], ringFrames, startFrames,
  //                   latencyFrames, streamName, props: {k: v}, remote?, device?})
  explicit PlaybackBase(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Derived>(info) {
    Napi::Env env = info.Env();
    info.This().As<Napi::Object>().TypeTag(&Derived::kTypeTag);
    const std::string who = Derived::kClassName;
    Napi::Object o = ArgObject(Arg(info, 0), who, "options");
    opts_.format = Derived::CheckFormat(env, OptString(o, "format", who));
    opts_.rate = OptUint32(o, "rate", who, 1000, 768000);
    opts_.channels = OptUint32(o, "channels", who, 1, 64);
    Derived::CheckSpec(env, *opts_.format, opts_.rate, opts_.channels);
    stride_ = opts_.format->bytes * opts_.channels;
    opts_.ring_frames = OptUint32(o, "ringFrames", who, 64, 1u << 22);
    opts_.start_frames = OptUint32(o, "startFrames", who);  // above the ring: never starts
    opts_.latency_frames = OptUint32(o, "latencyFrames", who, 16, 65536);
    for (const std::string& p : OptStrings(o, "positions", who, opts_.channels)) {
      const ChannelName* ch = ChannelByName(p);
      if (!ch) ThrowInvalid(env, who, "unknown channel position '" + p + "'");
      opts_.positions.push_back(ch);
    }
    // The stream's identity (node.name, description, role, media class...) comes whole from
    // TypeScript (src/stream-identity.ts): nothing here names the stream.
    opts_.props = OptStringMap(o, "props", who);
    opts_.stream_name = OptString(o, "streamName", who);
    opts_.remote = OptStringOr(o, "remote", who, "");
    opts_.device = OptStringOr(o, "device", who, "");
    ring_ = std::make_unique<SpscRing>(opts_.ring_frames, stride_);
    start_frames_.store(opts_.start_frames, std::memory_order_relaxed);
  }

  Derived& derived() { return *static_cast<Derived*>(this); }

  // First error wins: later ones are usually consequences of it. Not for real-time threads
  // (it locks and allocates): PipeWire's state/core callbacks run on the loop thread.
  void RecordError(const std::string& msg) {
    std::lock_guard<std::mutex> g(error_mutex_);
    if (error_.empty()) error_ = msg;
    has_error_.store(true);
  }

  void CheckOpen(Napi::Env env) {
    if (closed_)
      ThrowWithCode(env, "ECLOSED", std::string(Derived::kClassName) + ": already closed");
  }

  PlaybackOptions opts_;  // immutable once constructed: server threads may read it
  uint32_t stride_ = 1;   // bytes per frame
  std::unique_ptr<SpscRing> ring_;
  bool closed_ = false;  // JS thread only: set by close()

  StatsKeys key_;  // stats() property names (JS thread only)
  std::atomic<int> state_{kPlaybackUnconnected};
  // When the next Write is due, CLOCK_MONOTONIC ns; 0 = no schedule (write() without one). Stored
  // by the JS thread with each write() BEFORE the frames go into the ring; the server thread's
  // start check reads the fill (the ring's acquire load of its write index) BEFORE this. So a
  // check that sees a Write's frames also sees its due time (the relaxed store is ordered before
  // the ring's release store): never the new fill with the old, earlier due time, which would
  // start a block too soon. The converse (new due, old fill) only delays the start by a cycle.
  std::atomic<int64_t> next_due_ns_{0};
  // The start threshold in frames (opts_.start_frames at first, then setStartFrames()). Relaxed for
  // the same reason: a single value, read once per cycle while prebuffering.
  std::atomic<uint32_t> start_frames_{0};
  std::atomic<bool> drained_{false};
  std::atomic<uint64_t> consumed_frames_{0}, underruns_{0}, underrun_frames_{0},
      overflow_frames_{0}, cycles_{0};
  // Frames queued by Produce(): written by the producer (the JS thread, or a speaker intake thread
  // under speaker_core.h's lock), read by stats() on the JS thread. Relaxed: a counter.
  std::atomic<uint64_t> written_frames_{0};

 private:
  // ---- JS thread -------------------------------------------------------------------------
  // write(data: Uint8Array, nextDueInNs?: number): number of bytes accepted (all whole frames).
  // Never blocks: when the ring is full the OLDEST queued frames are dropped (counted in
  // overflowFrames). nextDueInNs: when the Write after this one is due, from now (negative: it
  // is already late); the stream's start check then projects the fill to that instant
  // (pw_audio.cc). Without it there is no schedule and the plain threshold applies.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    static const std::string who = std::string(Derived::kClassName) + ".write";
    Napi::Uint8Array ta = ArgBytes(Arg(info, 0), who, "data");
    int64_t due = 0;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      double in_ns = ArgDouble(info[1], who, "nextDueInNs");
      // Bounded: a schedule more than 10 s away is not one (and must not overflow the sum).
      if (!(in_ns > -1e10 && in_ns < 1e10))
        ThrowInvalid(env, who, "nextDueInNs must be within 10 s");
      due = MonoNs() + int64_t(in_ns);
      if (due == 0) due = 1;  // 0 means "no schedule"
    }
    return Napi::Number::New(env, double(Produce(ta.Data(), ta.ByteLength(), due)));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    // The server's part first, then the ring: what the server holds counts toward the fill
    // (PulseAudio takes data ahead of playback), and that is the queue drift control must see.
    double server_queued = derived().AddServerStats(r);
    r.Set(key_(env, "fillFrames"), double(ring_->Fill() / stride_) + server_queued);
    r.Set(key_(env, "capacityFrames"), double(ring_->capacity_bytes() / stride_));
    r.Set(key_(env, "ringFillFrames"), double(RingFillFrames()));
    r.Set(key_(env, "writtenFrames"), double(written_frames_.load(std::memory_order_relaxed)));
    r.Set(key_(env, "consumedFrames"), double(consumed_frames_.load()));
    r.Set(key_(env, "underruns"), double(underruns_.load()));
    r.Set(key_(env, "underrunFrames"), double(underrun_frames_.load()));
    r.Set(key_(env, "overflowFrames"), double(overflow_frames_.load()));
    r.Set(key_(env, "cycles"), double(cycles_.load()));
    r.Set(key_(env, "drained"), drained_.load());
    r.Set(key_(env, "nowNs"), double(MonoNs()));
    static const char* kStates[] = {"error", "unconnected", "connecting", "paused", "streaming"};
    int st = state_.load();
    r.Set(key_(env, "state"),
          (st >= kPlaybackError && st <= kPlaybackStreaming) ? kStates[st + 1] : "unknown");
    if (has_error_.load()) {
      std::lock_guard<std::mutex> g(error_mutex_);
      r.Set("error", error_);
    }
    return r;
  }

  // setActive(bool): cork/uncork (the guest started/stopped the voice).
  Napi::Value SetActive(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    derived().ApplyActive(
        ArgBool(Arg(info, 0), std::string(Derived::kClassName) + ".setActive", "active"));
    return info.Env().Undefined();
  }

  // setRate(ratio): consumption speed for drift control (1.0 = nominal, >1 drains the queue).
  Napi::Value SetRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    double r = ArgDouble(Arg(info, 0), std::string(Derived::kClassName) + ".setRate", "ratio");
    if (!(r > 0.9 && r < 1.1))
      ThrowInvalid(env, std::string(Derived::kClassName) + ".setRate",
                   "ratio must be within 0.9..1.1");
    derived().ApplyRate(r);
    return env.Undefined();
  }

  // drain(): play out what is queued; stats().drained turns true once the server has played
  // everything. Never blocks.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    derived().StartDrain();
    return info.Env().Undefined();
  }

  // playOut(): the guest stopped the voice: play what is queued now, even below the start
  // threshold (a tail shorter than the prebuffer would otherwise wait for the next sound).
  // Prebuffering applies again once the ring has run dry.
  Napi::Value PlayOut(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    derived().PlayOut();
    return info.Env().Undefined();
  }

  // setStartFrames(frames): a new start threshold, for the next time the stream prebuffers
  // (start, uncork, after an underrun). Capped at the ring: more could never start.
  Napi::Value SetStartFrames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    uint32_t n =
        ArgUint32(Arg(info, 0), std::string(Derived::kClassName) + ".setStartFrames", "frames");
    if (n > opts_.ring_frames) n = opts_.ring_frames;
    start_frames_.store(n, std::memory_order_relaxed);
    derived().ApplyStartFrames(n);
    return env.Undefined();
  }

  // close(): idempotent; later calls to the other methods throw ECLOSED.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    derived().Teardown();
    closed_ = true;
    return info.Env().Undefined();
  }

  std::atomic<bool> has_error_{false};
  std::mutex error_mutex_;
  std::string error_;
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_PLAYBACK_COMMON_H_
