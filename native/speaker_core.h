// The speaker's per-Write work, written once (issue 17: the CPU of ten audio-only bridges): one
// SpeakerCore per Speaker (src/audio/out/speaker.ts) holds a table QEMU voice id -> {playback
// stream, layout, sign flip, mute + gains, silence-skip threshold, counters} and the Speaker's
// WriteJitter (write_jitter.h). Per Write: frames, the jitter note, the next Write's due time, the
// sign flip and the guest's volume into a scratch buffer when needed, the silence-skip test, the
// ring write with the due time, counters. Policy and state stay in TypeScript (the voice pushes
// the threshold, gains and stream; it reads the counters and the lateness at each poll).
//
// Compiled into each addon with a playback class (header-only, like playback_common.h):
// SpeakerCore<PwPlayback> is "PwSpeakerCore", SpeakerCore<PulsePlayback> "PulseSpeakerCore".
// A stream registered with setStream() is one of this addon's playback objects (checked by type
// tag), whose ring the core fills directly; any other object (test/fakes/playback.ts) is a JS
// sink whose write(block, nextDueInNs) the core calls, on the JS thread only.
//
// Threading. Every method runs on the JS thread, and Process() may also run on a speaker intake
// thread (speaker_intake.h) that takes the Writes of QEMU's listener connection without waking
// Node. One mutex (mutex_) guards the table, the jitter and the counters: whoever processes a
// Write holds it for the whole Write, so the JS path and the intake never produce into a ring at
// once (the ring stays single-producer), and a stream is unregistered under it before JS may
// close or free it. It is not the real-time thread's: the PipeWire/PulseAudio data threads only
// consume the rings and never take it. The lock is held for one Write's copy and arithmetic (a
// few microseconds), and by the JS thread for a table update or a counter read.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_SPEAKER_CORE_H_
#define QEMU_DBUS_BRIDGE_NATIVE_SPEAKER_CORE_H_

#include <math.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "js_args.h"
#include "pcm_ops.h"
#include "playback_common.h"
#include "write_jitter.h"

namespace qdb {

// What SpeakerCore::Write (and the intake) did with a Write; src/native-api/audio.ts WriteResult.
enum SpeakerWriteResult {
  kWriteQueued = 0,
  kWriteSilenceSkipped = 1,  // digital silence while the ring held more than it needs
  kWriteDropped = 2,         // no stream open (server down): counted, not kept
  kWriteUnknownVoice = 3,    // no voice with that id (or its format was refused)
  kWriteNeedsJs = 4,         // intake only: the voice is corked or has a JS sink
};

// The most of one Write that is queued: a larger one keeps its last kMaxWriteBytes (its frames
// still counted whole; 4 MiB is ~24 s of S16 stereo at 44.1 kHz, more than any ring holds).
// Bounds the scratch buffer whatever the guest sends (dbus-native's array limit, 64 MiB, would
// otherwise size it).
constexpr size_t kMaxWriteBytes = 4u << 20;

template <typename Playback>
class SpeakerCore : public Napi::ObjectWrap<SpeakerCore<Playback>> {
 public:
  using Wrap = Napi::ObjectWrap<SpeakerCore<Playback>>;

  static Napi::Function Define(Napi::Env env) {
    return Wrap::DefineClass(env, Playback::kCoreClassName,
                             {
                                 Wrap::InstanceMethod("addVoice", &SpeakerCore::AddVoice),
                                 Wrap::InstanceMethod("removeVoice", &SpeakerCore::RemoveVoice),
                                 Wrap::InstanceMethod("setStream", &SpeakerCore::SetStream),
                                 Wrap::InstanceMethod("setActive", &SpeakerCore::SetActive),
                                 Wrap::InstanceMethod("setVolume", &SpeakerCore::SetVolume),
                                 Wrap::InstanceMethod("setSkipAbove", &SpeakerCore::SetSkipAbove),
                                 Wrap::InstanceMethod("write", &SpeakerCore::Write),
                                 Wrap::InstanceMethod("voiceStats", &SpeakerCore::VoiceStats),
                                 Wrap::InstanceMethod("jitter", &SpeakerCore::Jitter),
                             });
  }

  // new <kCoreClassName>({runGapMs, halfLifeMs, maxMs}): the jitter's constants (TypeScript's).
  explicit SpeakerCore(const Napi::CallbackInfo& info)
      : Wrap(info),
        jitter_(JitterOption(info, "runGapMs"), JitterOption(info, "halfLifeMs"),
                JitterOption(info, "maxMs")) {
    // So that an intake (speaker_intake.h) unwraps only a real core.
    info.This().As<Napi::Object>().TypeTag(&Playback::kCoreTypeTag);
  }

  // ---- any thread, under mutex_ ------------------------------------------------------------
  struct Voice {
    uint64_t id = 0;
    PcmLayout layout;  // of the stream's format (after the flip)
    bool convert = false;
    bool scheduled = false;
    uint32_t rate = 48000;
    bool mute = false;
    bool unity = true;
    std::vector<double> gains;  // one per channel
    uint32_t skip_above = 0;    // frames; 0 = off
    bool active = true;         // false: corked; a Write must go through JS to uncork
    Playback* stream = nullptr;
    Napi::ObjectReference stream_ref;  // keeps `stream` (or the JS sink) alive; JS thread only
    bool js_sink = false;
    uint64_t written = 0, skipped = 0, dropped = 0;
    int64_t last_due_ns = 0;  // due time of the Write after the last one queued; 0 = none
    std::vector<uint8_t> scratch;
  };

  // One Write, on whichever thread took it (the caller does not hold mutex_), arriving at `now_ns`
  // (CLOCK_MONOTONIC; JS may pass its own clock, see Write()). `js` is the JS thread's env when
  // called from JS (JS sinks need it), nullptr from the intake, which gets kWriteNeedsJs instead
  // of touching JS.
  int Process(uint64_t id, const uint8_t* data, size_t len, int64_t now_ns, Napi::Env* js) {
    std::lock_guard<std::mutex> g(mutex_);
    Voice* v = Find(id);
    if (!v) {
      unknown_writes_++;
      return kWriteUnknownVoice;
    }
    if (!js && (!v->active || v->js_sink)) return kWriteNeedsJs;
    const uint32_t frame = v->layout.frame();
    const size_t frames = len / frame;
    // A short last Write is not a block: a block size is two equal Writes in a row.
    if (frames == last_write_frames_ && frames > 0) seen_block_frames_ = frames;
    last_write_frames_ = frames;
    const double now_ms = double(now_ns) / 1e6;
    jitter_.Note(double(frames) * 1000.0 / v->rate, now_ms);
    v->written += frames;
    if (!v->stream && !v->js_sink) {
      v->dropped += frames;
      return kWriteDropped;
    }
    size_t n = frames * frame;
    if (n > kMaxWriteBytes) {
      // The newest audio is kept, as the ring itself would (it drops the oldest).
      const size_t cut = kMaxWriteBytes - kMaxWriteBytes % frame;
      data += n - cut;
      n = cut;
    }
    const uint8_t* block = data;
    if (v->convert || v->mute || !v->unity) {
      // A copy we own: `data` is the message's buffer.
      if (v->scratch.size() < n) v->scratch.resize(n);
      memcpy(v->scratch.data(), data, n);
      if (v->convert) FlipSignBits(v->layout, v->scratch.data(), n);
      ApplyVolume(v->layout, v->scratch.data(), n, v->mute, v->gains.data(), v->unity);
      block = v->scratch.data();
    }
    if (v->skip_above > 0 && IsSilence(v->layout, block, n) && FillFrames(*v) >= v->skip_above) {
      v->skipped += frames;
      return kWriteSilenceSkipped;
    }
    // Clamped to +-1 s: an absurd Write carrying seconds of audio must not push the schedule out
    // of reach, and a schedule that far out only keeps the stream waiting for more.
    int64_t due_in_ns = 0;
    bool has_due = v->scheduled && jitter_.HasSchedule();
    if (has_due) {
      double in_ms = jitter_.NextDueMs() - now_ms;
      in_ms = in_ms < -1000 ? -1000 : in_ms > 1000 ? 1000 : in_ms;
      due_in_ns = int64_t(in_ms * 1e6);
      v->last_due_ns = now_ns + due_in_ns;
      if (v->last_due_ns == 0) v->last_due_ns = 1;
    }
    if (v->stream) {
      v->stream->Produce(block, n, has_due ? (now_ns + due_in_ns ? now_ns + due_in_ns : 1) : 0);
    } else {
      // A JS sink (test fake): only ever reached on the JS thread (checked above).
      Napi::Env env = *js;
      Napi::Object sink = v->stream_ref.Value();
      Napi::Uint8Array copy = Napi::Uint8Array::New(env, n);
      memcpy(copy.Data(), block, n);
      Napi::Value due = has_due ? Napi::Number::New(env, double(due_in_ns)) : env.Undefined();
      sink.Get("write").As<Napi::Function>().Call(sink, {copy, due});
    }
    return kWriteQueued;
  }

 private:
  static double JitterOption(const Napi::CallbackInfo& info, const char* key) {
    static const std::string who = std::string(Playback::kCoreClassName);
    Napi::Object o = ArgObject(Arg(info, 0), who, "options");
    double v = ArgDouble(o.Get(key), who, OptName(key));
    if (!(v > 0 && v < 1e9))
      ThrowInvalid(info.Env(), who, OptName(key) + " must be a positive number of ms");
    return v;
  }

  static uint64_t ArgId(const Napi::Value& v, const char* who) {
    if (!v.IsBigInt()) ThrowInvalid(v.Env(), who, "voice id must be a bigint");
    bool lossless = false;
    uint64_t id = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowInvalid(v.Env(), who, "voice id must be a u64");
    return id;
  }

  Voice* Find(uint64_t id) {
    for (auto& v : voices_)
      if (v->id == id) return v.get();
    return nullptr;
  }

  Voice& Need(Napi::Env env, uint64_t id, const char* who) {
    Voice* v = Find(id);
    if (!v) ThrowWithCode(env, "EINVAL", std::string(who) + ": no voice " + std::to_string(id));
    return *v;
  }

  // What the ring holds, frames: a JS sink (a test fake, JS thread only) is asked its stats().
  size_t FillFrames(const Voice& v) const {
    if (v.stream) return v.stream->RingFillFrames();
    Napi::Object sink = v.stream_ref.Value();
    Napi::Value fill = sink.Get("stats").As<Napi::Function>().Call(sink, {}).As<Napi::Object>().Get(
        "ringFillFrames");
    return fill.IsNumber() ? size_t(fill.As<Napi::Number>().DoubleValue()) : 0;
  }

  // ---- JS thread ---------------------------------------------------------------------------
  // addVoice(id, {format, channels, rate, convert, scheduled}): replaces a voice with that id.
  Napi::Value AddVoice(const Napi::CallbackInfo& info) {
    static const char* who = "SpeakerCore.addVoice";
    Napi::Env env = info.Env();
    uint64_t id = ArgId(Arg(info, 0), who);
    Napi::Object o = ArgObject(Arg(info, 1), who, "options");
    auto v = std::make_unique<Voice>();
    v->id = id;
    std::string format = OptString(o, "format", who);
    uint32_t channels = OptUint32(o, "channels", who, 1, 64);
    if (!PcmLayoutOf(format, channels, &v->layout))
      ThrowInvalid(env, who, "unknown sample format '" + format + "'");
    v->rate = OptUint32(o, "rate", who, 1000, 768000);
    v->convert = ArgBool(o.Get("convert"), who, OptName("convert"));
    v->scheduled = ArgBool(o.Get("scheduled"), who, OptName("scheduled"));
    v->gains.assign(channels, 1.0);
    std::unique_ptr<Voice> old;
    {
      std::lock_guard<std::mutex> g(mutex_);
      for (auto& slot : voices_)
        if (slot->id == id) {
          old = std::move(slot);
          slot = std::move(v);
          break;
        }
      if (!old) voices_.push_back(std::move(v));
    }
    return env.Undefined();  // `old` (and its references) released here, on the JS thread
  }

  // removeVoice(id): the stream is no longer written to once this returns.
  Napi::Value RemoveVoice(const Napi::CallbackInfo& info) {
    uint64_t id = ArgId(Arg(info, 0), "SpeakerCore.removeVoice");
    std::unique_ptr<Voice> old;
    {
      std::lock_guard<std::mutex> g(mutex_);
      for (size_t i = 0; i < voices_.size(); i++)
        if (voices_[i]->id == id) {
          old = std::move(voices_[i]);
          voices_.erase(voices_.begin() + i);
          break;
        }
    }
    return info.Env().Undefined();
  }

  // setStream(id, stream | null): where the voice's Writes go; null = no stream (Writes dropped).
  // Unregistered under the lock before this returns: the caller may close the old stream next.
  Napi::Value SetStream(const Napi::CallbackInfo& info) {
    static const char* who = "SpeakerCore.setStream";
    Napi::Env env = info.Env();
    uint64_t id = ArgId(Arg(info, 0), who);
    Napi::Value s = Arg(info, 1);
    Playback* native = nullptr;
    bool js_sink = false;
    Napi::ObjectReference ref;
    if (!s.IsNull() && !s.IsUndefined()) {
      Napi::Object o = ArgObject(s, who, "stream");
      native = Playback::FromObject(o);
      if (!native) {
        if (!o.Get("write").IsFunction()) ThrowInvalid(env, who, "stream has no write()");
        js_sink = true;
      }
      ref = Napi::Persistent(o);
    }
    Napi::ObjectReference old;
    {
      std::lock_guard<std::mutex> g(mutex_);
      Voice& v = Need(env, id, who);
      v.stream = native;
      v.js_sink = js_sink;
      old = std::move(v.stream_ref);
      v.stream_ref = std::move(ref);
    }
    return env.Undefined();
  }

  // setActive(id, active): false while JS has the stream corked (a Write then goes through JS).
  Napi::Value SetActive(const Napi::CallbackInfo& info) {
    static const char* who = "SpeakerCore.setActive";
    return SetVoiceField(info, who, &Voice::active, ArgBool(Arg(info, 1), who, "active"));
  }

  // setVolume(id, mute, gains[]): one gain (0..1) per channel, from src/audio/format.ts gainsOf.
  Napi::Value SetVolume(const Napi::CallbackInfo& info) {
    static const char* who = "SpeakerCore.setVolume";
    Napi::Env env = info.Env();
    uint64_t id = ArgId(Arg(info, 0), who);
    bool mute = ArgBool(Arg(info, 1), who, "mute");
    Napi::Array a = ArgArray(Arg(info, 2), who, "gains");
    if (a.Length() > 64) ThrowInvalid(env, who, "at most 64 gains");
    std::vector<double> gains(a.Length());
    bool unity = true;
    for (uint32_t i = 0; i < a.Length(); i++) {
      double gv = ArgDouble(a.Get(i), who, "gain");
      if (!(gv >= 0 && gv <= 1)) ThrowInvalid(env, who, "gains must be within 0..1");
      gains[i] = gv;
      unity = unity && gv == 1;
    }
    std::lock_guard<std::mutex> g(mutex_);
    Voice& v = Need(env, id, who);
    if (gains.size() != v.layout.channels) ThrowInvalid(env, who, "one gain per channel");
    v.mute = mute;
    v.gains = std::move(gains);
    v.unity = unity;
    return env.Undefined();
  }

  // setSkipAbove(id, frames): a Write of digital silence is not queued while the ring holds at
  // least this many frames (voice.ts overQueued); 0 = off.
  Napi::Value SetSkipAbove(const Napi::CallbackInfo& info) {
    static const char* who = "SpeakerCore.setSkipAbove";
    return SetVoiceField(info, who, &Voice::skip_above, ArgUint32(Arg(info, 1), who, "frames"));
  }

  // One field of voice `id` (argument 0) set under the lock; the value was checked by the caller.
  template <typename T>
  Napi::Value SetVoiceField(const Napi::CallbackInfo& info, const char* who, T Voice::*field,
                            T value) {
    uint64_t id = ArgId(Arg(info, 0), who);
    std::lock_guard<std::mutex> g(mutex_);
    Need(info.Env(), id, who).*field = value;
    return info.Env().Undefined();
  }

  // The clock of a call from JS: `nowMs` when given (the caller's clock, CLOCK_MONOTONIC ms, or a
  // unit test's fake one: every time the core keeps is relative to what its callers pass), else
  // CLOCK_MONOTONIC now.
  static int64_t NowNs(const Napi::CallbackInfo& info, size_t i, const char* who) {
    Napi::Value v = Arg(info, i);
    if (v.IsUndefined()) return MonoNs();
    double ms = ArgDouble(v, who, "nowMs");
    if (!(ms > 0 && ms < 9e12)) ThrowInvalid(info.Env(), who, "nowMs out of range");
    return int64_t(ms * 1e6);
  }

  // write(id, data, nowMs?): SpeakerWriteResult. The one Write path from JS (tests, fakes, a
  // Write the intake handed over).
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t id = ArgId(Arg(info, 0), "SpeakerCore.write");
    Napi::Uint8Array data = ArgBytes(Arg(info, 1), "SpeakerCore.write", "data");
    int64_t now = NowNs(info, 2, "SpeakerCore.write");
    return Napi::Number::New(env, Process(id, data.Data(), data.ByteLength(), now, &env));
  }

  // voiceStats(id, nowMs?): {writtenFrames, skippedFrames, droppedFrames, nextDueInMs (the Write
  // after the last one queued; undefined: none)} or undefined.
  Napi::Value VoiceStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t id = ArgId(Arg(info, 0), "SpeakerCore.voiceStats");
    int64_t now = NowNs(info, 1, "SpeakerCore.voiceStats");
    uint64_t written, skipped, dropped;
    int64_t due;
    {
      std::lock_guard<std::mutex> g(mutex_);
      Voice* v = Find(id);
      if (!v) return env.Undefined();
      written = v->written;
      skipped = v->skipped;
      dropped = v->dropped;
      due = v->last_due_ns;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set(key_(env, "writtenFrames"), double(written));
    r.Set(key_(env, "skippedFrames"), double(skipped));
    r.Set(key_(env, "droppedFrames"), double(dropped));
    r.Set(key_(env, "nextDueInMs"),
          due ? Napi::Value(Napi::Number::New(env, double(due - now) / 1e6)) : env.Undefined());
    return r;
  }

  // jitter(nowMs?): {lateMs, nextDueMs (the run's schedule, in the caller's clock; undefined
  // before any Write), blockFrames (0: not seen yet), unknownWrites, nowMs (the clock used)}.
  Napi::Value Jitter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t now = NowNs(info, 0, "SpeakerCore.jitter");
    double late, next_due = 0;
    bool has_due;
    uint64_t block, unknown;
    {
      std::lock_guard<std::mutex> g(mutex_);
      late = jitter_.LateMs(double(now) / 1e6);
      has_due = jitter_.HasSchedule();
      if (has_due) next_due = jitter_.NextDueMs();
      block = seen_block_frames_;
      unknown = unknown_writes_;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set(key_(env, "lateMs"), late);
    r.Set(key_(env, "nextDueMs"),
          has_due ? Napi::Value(Napi::Number::New(env, next_due)) : env.Undefined());
    r.Set(key_(env, "blockFrames"), double(block));
    r.Set(key_(env, "unknownWrites"), double(unknown));
    r.Set(key_(env, "nowMs"), double(now) / 1e6);
    return r;
  }

  std::mutex mutex_;
  // Guarded by mutex_ (see the header):
  std::vector<std::unique_ptr<Voice>> voices_;
  WriteJitter jitter_;
  uint64_t unknown_writes_ = 0;
  size_t last_write_frames_ = 0;
  size_t seen_block_frames_ = 0;

  StatsKeys key_;  // JS thread only
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_SPEAKER_CORE_H_
