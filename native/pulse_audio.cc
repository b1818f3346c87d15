// PulseAudio playback stream (guest speaker -> PulseAudio, or pipewire-pulse).
//
// Same JS surface as pw_audio.cc's PwPlayback (src/native-api/audio.ts), same policy split:
// TypeScript decides everything, this file moves bytes. One pa_threaded_mainloop + context +
// stream per player, connected asynchronously (the constructor never waits for the server: a
// missing server shows up as state "error" with a message, and TS reopens with backoff).
//
// Data path: JS write() puts whole frames into an SpscRing (dropping the oldest when full), then
// pumps what the server can take right away; the stream's write callback (mainloop thread)
// pumps the rest as the server asks for more. Neither side waits for the other: the JS thread
// only takes the mainloop lock for the few microseconds a pa_stream_write needs. The server
// does prebuffering (prebuf) and reports underruns (underflow callback).
//
// Buffering: small tlength + PA_STREAM_ADJUST_LATENCY, or the server defaults to a 2 s buffer
// (docs/lab/audio-video.md §2). PA_STREAM_VARIABLE_RATE allows pa_stream_update_sample_rate
// for drift control.
#include <math.h>
#include <pulse/pulseaudio.h>
#include <string.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "pcm_names.h"
#include "pulse_client.h"
#include "spsc_ring.h"

namespace qdb {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

class PulsePlayback : public Napi::ObjectWrap<PulsePlayback> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PulsePlayback",
                       {
                           InstanceMethod("write", &PulsePlayback::Write),
                           InstanceMethod("stats", &PulsePlayback::Stats),
                           InstanceMethod("setActive", &PulsePlayback::SetActive),
                           InstanceMethod("setVolume", &PulsePlayback::SetVolume),
                           InstanceMethod("setRate", &PulsePlayback::SetRate),
                           InstanceMethod("drain", &PulsePlayback::Drain),
                           InstanceMethod("close", &PulsePlayback::Close),
                       });
  }

  explicit PulsePlayback(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PulsePlayback>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject())
      ThrowWithCode(env, "EINVAL", "PulsePlayback: options object required");
    Napi::Object o = info[0].As<Napi::Object>();
    std::string fmt = OptionString(o, "format");
    const SampleFormatName* pf = SampleFormatByName(fmt);
    // S8/U16/U32 have no PulseAudio format: src/audio/format.ts converts those before here.
    if (!pf || pf->pulse == PA_SAMPLE_INVALID)
      ThrowWithCode(env, "EINVAL",
                    "PulsePlayback: PulseAudio cannot play sample format '" + fmt + "'");
    spec_.format = pf->pulse;
    spec_.rate = OptionUint32(env, o, "rate", "PulsePlayback");
    rate_hz_ = spec_.rate;
    uint32_t channels = OptionUint32(env, o, "channels", "PulsePlayback");
    if (channels < 1 || channels > PA_CHANNELS_MAX)
      ThrowWithCode(env, "EINVAL", "PulsePlayback: channels must be 1..32");
    spec_.channels = uint8_t(channels);
    if (!pa_sample_spec_valid(&spec_))
      ThrowWithCode(env, "EINVAL", "PulsePlayback: invalid sample spec");
    Napi::Value posv = o.Get("positions");
    if (!posv.IsArray() || posv.As<Napi::Array>().Length() != channels)
      ThrowWithCode(env, "EINVAL", "PulsePlayback: positions must list one name per channel");
    pa_channel_map_init(&map_);
    map_.channels = uint8_t(channels);
    Napi::Array pos = posv.As<Napi::Array>();
    for (uint32_t i = 0; i < channels; i++) {
      std::string p = pos.Get(i).ToString().Utf8Value();
      const ChannelName* ch = ChannelByName(p);
      if (!ch) ThrowWithCode(env, "EINVAL", "PulsePlayback: unknown channel position '" + p + "'");
      map_.map[i] = ch->pulse;
    }
    stride_ = pf->bytes * channels;
    ring_ =
        std::make_unique<SpscRing>(OptionUint32(env, o, "ringFrames", "PulsePlayback"), stride_);
    start_frames_ = OptionUint32(env, o, "startFrames", "PulsePlayback");
    latency_frames_ = OptionUint32(env, o, "latencyFrames", "PulsePlayback");
    stream_name_ = OptionString(o, "streamName");
    if (stream_name_.empty()) stream_name_ = "playback";
    server_ = OptionString(o, "remote");
    device_ = OptionString(o, "device");
    volumes_.assign(channels, 1.0);

    proplist_ = pa_proplist_new();
    Napi::Value pv = o.Get("props");
    if (pv.IsObject()) {
      Napi::Object po = pv.As<Napi::Object>();
      Napi::Array keys = po.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); i++) {
        std::string k = keys.Get(i).ToString().Utf8Value();
        pa_proplist_sets(proplist_, k.c_str(), po.Get(k).ToString().Utf8Value().c_str());
      }
    }

    state_.store(kConnecting);
    const char* app = pa_proplist_gets(proplist_, PA_PROP_APPLICATION_NAME);
    try {
      client_.Open(env, "qdb-pa-play", app ? app : "qemu-dbus-bridge", proplist_, server_,
                   &PulsePlayback::OnContextState, this);
    } catch (...) {
      Teardown();  // frees the proplist
      throw;
    }
    client_.Unlock();
  }

  ~PulsePlayback() override { Teardown(); }

 private:
  enum State { kError = -1, kUnconnected = 0, kConnecting = 1, kPaused = 2, kStreaming = 3 };

  // ---- mainloop thread ---------------------------------------------------------------------
  static void OnContextState(pa_context* c, void* ud) {
    auto* self = static_cast<PulsePlayback*>(ud);
    switch (pa_context_get_state(c)) {
      case PA_CONTEXT_READY:
        self->CreateStream();
        break;
      case PA_CONTEXT_FAILED:
      case PA_CONTEXT_TERMINATED:
        self->SetError(std::string("PulseAudio connection lost: ") +
                       pa_strerror(pa_context_errno(c)));
        break;
      default:
        break;
    }
  }

  void CreateStream() {
    stream_ = pa_stream_new_with_proplist(client_.context(), stream_name_.c_str(), &spec_, &map_,
                                          proplist_);
    if (!stream_) {
      SetError(std::string("PulseAudio: pa_stream_new failed: ") +
               pa_strerror(pa_context_errno(client_.context())));
      return;
    }
    pa_stream_set_state_callback(stream_, &PulsePlayback::OnStreamState, this);
    pa_stream_set_write_callback(
        stream_, [](pa_stream*, size_t, void* ud) { static_cast<PulsePlayback*>(ud)->Pump(); },
        this);
    pa_stream_set_underflow_callback(
        stream_,
        [](pa_stream*, void* ud) { static_cast<PulsePlayback*>(ud)->underruns_.fetch_add(1); },
        this);
    pa_buffer_attr attr;
    attr.maxlength = uint32_t(-1);
    // prebuf = our start threshold (latency + one QEMU block): the server waits for it before
    // playing, so the 10 ms jitter of QEMU's Writes does not underrun at once (with prebuf =
    // latency only, every block boundary underran). tlength leaves room for one more latency's
    // worth so a Write never has to wait in our ring while the server could take it.
    attr.tlength = (start_frames_ + latency_frames_) * stride_;
    attr.prebuf = start_frames_ * stride_;
    attr.minreq = uint32_t(-1);
    attr.fragsize = uint32_t(-1);
    pa_stream_flags_t flags = pa_stream_flags_t(
        PA_STREAM_ADJUST_LATENCY | PA_STREAM_AUTO_TIMING_UPDATE | PA_STREAM_INTERPOLATE_TIMING |
        PA_STREAM_VARIABLE_RATE | (active_ ? 0 : PA_STREAM_START_CORKED));
    if (pa_stream_connect_playback(stream_, device_.empty() ? nullptr : device_.c_str(), &attr,
                                   flags, nullptr, nullptr) < 0)
      SetError(std::string("PulseAudio: cannot connect the playback stream: ") +
               pa_strerror(pa_context_errno(client_.context())));
  }

  static void OnStreamState(pa_stream* s, void* ud) {
    auto* self = static_cast<PulsePlayback*>(ud);
    switch (pa_stream_get_state(s)) {
      case PA_STREAM_READY:
        self->ready_ = true;
        self->state_.store(self->active_ ? kStreaming : kPaused);
        self->ApplyVolumeLocked();
        if (self->rate_hz_ != self->spec_.rate)
          pa_operation_unref(pa_stream_update_sample_rate(s, self->rate_hz_, nullptr, nullptr));
        self->Pump();
        break;
      case PA_STREAM_FAILED:
        self->SetError(std::string("PulseAudio stream failed: ") +
                       pa_strerror(pa_context_errno(self->client_.context())));
        break;
      case PA_STREAM_TERMINATED:
        if (!self->closing_) self->SetError("PulseAudio stream terminated by the server");
        break;
      default:
        break;
    }
  }

  // Moves what the server can take from the ring into the stream. Mainloop lock held.
  void Pump() {
    if (!stream_ || !ready_) return;
    size_t writable = pa_stream_writable_size(stream_);
    while (writable >= stride_ && ring_->Fill() >= stride_) {
      void* data = nullptr;
      size_t n = writable;
      if (pa_stream_begin_write(stream_, &data, &n) < 0 || !data) break;
      n -= n % stride_;
      size_t got = ring_->Read(static_cast<uint8_t*>(data), n);
      if (got == 0) {
        pa_stream_cancel_write(stream_);
        break;
      }
      pa_stream_write(stream_, data, got, nullptr, 0, PA_SEEK_RELATIVE);
      sent_bytes_ += got;
      consumed_frames_.fetch_add(got / stride_);
      writable -= got;
    }
    if (draining_ && !drain_started_ && ring_->Fill() < stride_) {
      drain_started_ = true;
      // Start playback even if prebuf was never reached (a sound shorter than the threshold),
      // then let the server play everything out; drained_ turns true in the callback.
      pa_operation_unref(pa_stream_trigger(stream_, nullptr, nullptr));
      pa_operation_unref(pa_stream_drain(
          stream_,
          [](pa_stream*, int, void* ud) { static_cast<PulsePlayback*>(ud)->drained_.store(true); },
          this));
    }
  }

  void ApplyVolumeLocked() {
    if (!stream_ || !ready_) return;
    pa_cvolume cv;
    pa_cvolume_init(&cv);
    cv.channels = spec_.channels;
    for (uint8_t i = 0; i < spec_.channels; i++)
      cv.values[i] = pa_sw_volume_from_linear(volumes_[i]);
    uint32_t idx = pa_stream_get_index(stream_);
    pa_operation_unref(
        pa_context_set_sink_input_volume(client_.context(), idx, &cv, nullptr, nullptr));
    pa_operation_unref(
        pa_context_set_sink_input_mute(client_.context(), idx, mute_ ? 1 : 0, nullptr, nullptr));
  }

  void SetError(const std::string& msg) {
    {
      std::lock_guard<std::mutex> g(error_mutex_);
      if (error_.empty()) error_ = msg;
    }
    has_error_.store(true);
    state_.store(kError);
  }

  void Teardown() {
    client_.Close([this] {
      closing_ = true;
      if (stream_) {
        pa_stream_set_state_callback(stream_, nullptr, nullptr);
        pa_stream_set_write_callback(stream_, nullptr, nullptr);
        pa_stream_set_underflow_callback(stream_, nullptr, nullptr);
        pa_stream_disconnect(stream_);
        pa_stream_unref(stream_);
        stream_ = nullptr;
      }
    });
    if (proplist_) {
      pa_proplist_free(proplist_);
      proplist_ = nullptr;
    }
    closed_ = true;
  }

  void CheckOpen(Napi::Env env) {
    if (closed_) ThrowWithCode(env, "ECLOSED", "PulsePlayback: already closed");
  }

  // ---- JS thread ---------------------------------------------------------------------------
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsTypedArray())
      ThrowWithCode(env, "EINVAL", "PulsePlayback.write: Uint8Array required");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    size_t n = ta.ByteLength();
    n -= n % stride_;
    size_t dropped = ring_->WriteDropOldest(p, n);
    if (dropped) overflow_frames_.fetch_add(dropped / stride_);
    written_frames_ += n / stride_;
    client_.Lock();
    Pump();
    client_.Unlock();
    return Napi::Number::New(env, double(n));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    double server_queued = 0;
    double delay_ns = 0;
    bool have_delay = false;
    if (!closed_) {
      client_.Lock();
      if (stream_ && ready_) {
        // Server queue = what the stream's buffer holds: tlength minus what the server asked
        // for and has not been given yet. Not write_index - read_index: on a null sink that
        // also counts the sink's own render latency (~500 ms here, varying in big steps), and
        // libpulse's interpolation of it drifted the wrong way under
        // pa_stream_update_sample_rate; neither tracked clock drift (drift test).
        const pa_buffer_attr* a = pa_stream_get_buffer_attr(stream_);
        size_t writable = pa_stream_writable_size(stream_);
        if (a && writable != size_t(-1) && !drained_.load() && a->tlength > writable)
          server_queued = double((a->tlength - writable) / stride_);
        const pa_timing_info* ti = pa_stream_get_timing_info(stream_);
        if (ti) {
          delay_ns = (double(ti->sink_usec) + double(ti->transport_usec)) * 1000.0;
          have_delay = true;
        }
      }
      client_.Unlock();
    }
    // Fill = our ring + what the server still holds: that is the queue drift control must see
    // (PulseAudio takes data ahead of playback, unlike the PipeWire pull).
    r.Set("fillFrames", double(ring_->Fill() / stride_) + server_queued);
    r.Set("ringFrames", double(ring_->Fill() / stride_));
    r.Set("rateHz", double(rate_hz_));
    r.Set("rateUpdates", double(rate_updates_));
    r.Set("serverQueuedFrames", server_queued);
    r.Set("capacityFrames", double(ring_->capacity_bytes() / stride_));
    r.Set("writtenFrames", double(written_frames_));
    r.Set("consumedFrames", double(consumed_frames_.load()));
    r.Set("underruns", double(underruns_.load()));
    r.Set("underrunFrames", 0.0);
    r.Set("overflowFrames", double(overflow_frames_.load()));
    r.Set("cycles", 0.0);
    r.Set("drained", drained_.load());
    r.Set("nowNs", double(NowNs()));
    static const char* kStates[] = {"error", "unconnected", "connecting", "paused", "streaming"};
    int st = closed_ ? kUnconnected : state_.load();
    r.Set("state", kStates[st + 1]);
    if (has_error_.load()) {
      std::lock_guard<std::mutex> g(error_mutex_);
      r.Set("error", error_);
    }
    if (have_delay) r.Set("delayNs", delay_ns);
    return r;
  }

  Napi::Value SetActive(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    bool active = info[0].ToBoolean();
    client_.Lock();
    active_ = active;
    if (stream_ && ready_) {
      pa_operation_unref(pa_stream_cork(stream_, active ? 0 : 1, nullptr, nullptr));
      state_.store(active ? kStreaming : kPaused);
    }
    client_.Unlock();
    return info.Env().Undefined();
  }

  Napi::Value SetVolume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 2 || !info[1].IsArray())
      ThrowWithCode(env, "EINVAL", "PulsePlayback.setVolume(mute, volumes[])");
    Napi::Array a = info[1].As<Napi::Array>();
    client_.Lock();
    mute_ = info[0].ToBoolean();
    for (uint32_t i = 0; i < spec_.channels && i < a.Length(); i++)
      volumes_[i] = a.Get(i).ToNumber().DoubleValue();
    ApplyVolumeLocked();
    client_.Unlock();
    return env.Undefined();
  }

  // setRate(ratio): the server then consumes ratio x the nominal rate (>1 drains the queue).
  Napi::Value SetRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    double r = info[0].ToNumber().DoubleValue();
    if (!(r > 0.9 && r < 1.1))
      ThrowWithCode(env, "EINVAL", "PulsePlayback.setRate: ratio must be within 0.9..1.1");
    uint32_t hz = uint32_t(lround(spec_.rate * r));
    client_.Lock();
    // Every pa_stream_update_sample_rate is a server round trip that reconfigures the sink
    // input's resampler; called on each 50 ms poll it did not take effect (the drift test's
    // fill kept growing with the ratio pinned at +0.5 %). Update when the rate moved by 3 Hz
    // (~60 ppm) or after 1 s.
    int64_t now = NowNs();
    uint32_t diff = hz > rate_hz_ ? hz - rate_hz_ : rate_hz_ - hz;
    if (diff >= 3 || (diff > 0 && now - last_rate_update_ns_ > 1000000000LL)) {
      rate_hz_ = hz;
      last_rate_update_ns_ = now;
      if (stream_ && ready_) {
        rate_updates_++;
        pa_operation_unref(pa_stream_update_sample_rate(stream_, hz, nullptr, nullptr));
      }
    }
    client_.Unlock();
    return env.Undefined();
  }

  Napi::Value Drain(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    client_.Lock();
    draining_ = true;
    Pump();
    client_.Unlock();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (!closed_) Teardown();
    return info.Env().Undefined();
  }

  pa_sample_spec spec_{};
  pa_channel_map map_{};
  uint32_t stride_ = 1;
  uint32_t start_frames_ = 0, latency_frames_ = 0;
  std::string stream_name_, server_, device_;
  std::unique_ptr<SpscRing> ring_;
  PulseClient client_;
  pa_stream* stream_ = nullptr;
  pa_proplist* proplist_ = nullptr;
  bool closed_ = false;

  // Mainloop-lock protected.
  bool ready_ = false;
  bool active_ = true;
  bool draining_ = false;
  bool drain_started_ = false;
  bool closing_ = false;
  bool mute_ = false;
  std::vector<double> volumes_;
  uint32_t rate_hz_ = 0;
  uint64_t sent_bytes_ = 0;
  int64_t last_rate_update_ns_ = 0;
  uint64_t rate_updates_ = 0;

  uint64_t written_frames_ = 0;  // JS thread only
  std::atomic<int> state_{kUnconnected};
  std::atomic<bool> drained_{false};
  std::atomic<uint64_t> consumed_frames_{0}, underruns_{0}, overflow_frames_{0};
  std::atomic<bool> has_error_{false};
  std::mutex error_mutex_;
  std::string error_;
};

}  // namespace

void InitPulseAudio(Napi::Env env, Napi::Object exports) {
  exports.Set("PulsePlayback", PulsePlayback::Define(env));
}

}  // namespace qdb
