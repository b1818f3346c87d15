// PulseAudio playback stream (guest speaker -> PulseAudio, or pipewire-pulse).
//
// Same JS surface as pw_audio.cc's PwPlayback (src/native-api/audio.ts), same policy split:
// TypeScript decides everything, this file moves bytes. One pa_threaded_mainloop + context +
// stream per player, connected asynchronously (the constructor never waits for the server: a
// missing server shows up as state "error" with a message, and TS reopens with backoff).
// Option parsing, the ring, write() and the common stats live in playback_common.h.
//
// Data path: JS write() puts whole frames into an SpscRing (dropping the oldest when full), then
// pumps what the server can take right away; the stream's write callback (mainloop thread)
// pumps the rest as the server asks for more. Neither side waits for the other: the JS thread
// only takes the mainloop lock for the few microseconds a pa_stream_write needs. The server
// does prebuffering (prebuf) and reports underruns (underflow callback).
//
// Buffering: small tlength + PA_STREAM_ADJUST_LATENCY, or the server defaults to a 2 s buffer
// (PulseAudio 16). PA_STREAM_VARIABLE_RATE allows pa_stream_update_sample_rate
// for drift control.
#include <math.h>
#include <pulse/pulseaudio.h>

#include <string>
#include <vector>

#include "addon.h"
#include "playback_common.h"
#include "pulse_client.h"
#include "speaker_core.h"
#include "speaker_intake.h"

namespace qdb {
namespace {

class PulsePlayback : public PlaybackBase<PulsePlayback> {
 public:
  static constexpr char kClassName[] = "PulsePlayback";
  static constexpr char kCoreClassName[] = "PulseSpeakerCore";  // its SpeakerCore (speaker_core.h)
  static constexpr napi_type_tag kTypeTag = {0x71646270756c7365ULL, 0x706c61796261636bULL};
  static constexpr char kIntakeClassName[] = "PulseSpeakerIntake";  // speaker_intake.h
  static constexpr napi_type_tag kCoreTypeTag = {0x71646270756c7365ULL, 0x636f72652d737001ULL};

  explicit PulsePlayback(const Napi::CallbackInfo& info) : PlaybackBase<PulsePlayback>(info) {
    Napi::Env env = info.Env();
    spec_ = SampleSpec(*opts_.format, opts_.rate, opts_.channels);
    rate_hz_ = spec_.rate;
    pa_channel_map_init(&map_);
    map_.channels = uint8_t(opts_.channels);
    for (uint32_t i = 0; i < opts_.channels; i++) map_.map[i] = opts_.positions[i]->pulse;

    proplist_ = pa_proplist_new();
    for (const auto& kv : opts_.props)
      pa_proplist_sets(proplist_, kv.first.c_str(), kv.second.c_str());

    state_.store(kPlaybackConnecting);
    const char* app = pa_proplist_gets(proplist_, PA_PROP_APPLICATION_NAME);
    try {
      client_.Open(env, "qdb-pa-play", app ? app : "qemu-dbus-bridge", proplist_, opts_.remote,
                   &PulsePlayback::OnContextState, this);
    } catch (...) {
      Teardown();  // frees the proplist
      throw;
    }
    client_.Unlock();
  }

  ~PulsePlayback() override { Teardown(); }

 private:
  friend class PlaybackBase<PulsePlayback>;

  static pa_sample_spec SampleSpec(const SampleFormatName& format, uint32_t rate,
                                   uint32_t channels) {
    pa_sample_spec spec{};
    spec.format = format.pulse;
    spec.rate = rate;
    spec.channels = uint8_t(channels);
    return spec;
  }

  // ---- option checks (JS thread, from PlaybackBase's constructor) --------------------------
  static const SampleFormatName* CheckFormat(Napi::Env env, const std::string& name) {
    const SampleFormatName* f = SampleFormatByName(name);
    // S8/U16/U32 have no PulseAudio format: src/audio/format.ts converts those before here.
    if (!f || f->pulse == PA_SAMPLE_INVALID)
      ThrowWithCode(env, "EINVAL",
                    "PulsePlayback: PulseAudio cannot play sample format '" + name + "'");
    return f;
  }

  static void CheckSpec(Napi::Env env, const SampleFormatName& format, uint32_t rate,
                        uint32_t channels) {
    if (channels < 1 || channels > PA_CHANNELS_MAX)
      ThrowWithCode(env, "EINVAL", "PulsePlayback: channels must be 1..32");
    pa_sample_spec spec = SampleSpec(format, rate, channels);
    if (!pa_sample_spec_valid(&spec))
      ThrowWithCode(env, "EINVAL", "PulsePlayback: invalid sample spec");
  }

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
    stream_ = pa_stream_new_with_proplist(client_.context(), opts_.stream_name.c_str(), &spec_,
                                          &map_, proplist_);
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
    attr.tlength = (opts_.start_frames + opts_.latency_frames) * stride_;
    attr.prebuf = opts_.start_frames * stride_;
    attr.minreq = uint32_t(-1);
    attr.fragsize = uint32_t(-1);
    pa_stream_flags_t flags = pa_stream_flags_t(
        PA_STREAM_ADJUST_LATENCY | PA_STREAM_AUTO_TIMING_UPDATE | PA_STREAM_INTERPOLATE_TIMING |
        PA_STREAM_VARIABLE_RATE | (active_ ? 0 : PA_STREAM_START_CORKED));
    if (pa_stream_connect_playback(stream_, opts_.device.empty() ? nullptr : opts_.device.c_str(),
                                   &attr, flags, nullptr, nullptr) < 0)
      SetError(std::string("PulseAudio: cannot connect the playback stream: ") +
               pa_strerror(pa_context_errno(client_.context())));
  }

  static void OnStreamState(pa_stream* s, void* ud) {
    auto* self = static_cast<PulsePlayback*>(ud);
    switch (pa_stream_get_state(s)) {
      case PA_STREAM_READY:
        self->ready_ = true;
        self->state_.store(self->active_ ? kPlaybackStreaming : kPlaybackPaused);
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

  // Unlike PipeWire, the stream's state does not report its own failures: mark it here.
  void SetError(const std::string& msg) {
    RecordError(msg);
    state_.store(kPlaybackError);
  }

  // ---- JS thread: PlaybackBase hooks -------------------------------------------------------
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
    state_.store(kPlaybackUnconnected);
  }

  // Hand the server what it can take now rather than waiting for its next write callback.
  void AfterWrite() {
    client_.Lock();
    Pump();
    client_.Unlock();
  }

  double AddServerStats(Napi::Object r) {
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
    r.Set("ringFrames", double(ring_->Fill() / stride_));
    r.Set("rateHz", double(rate_hz_));
    r.Set("rateUpdates", double(rate_updates_));
    r.Set("serverQueuedFrames", server_queued);
    if (have_delay) r.Set("delayNs", delay_ns);
    // PulseAudio takes data ahead of playback, unlike the PipeWire pull: fillFrames must
    // include what the server still holds.
    return server_queued;
  }

  void ApplyActive(bool active) {
    client_.Lock();
    active_ = active;
    if (stream_ && ready_) {
      pa_operation_unref(pa_stream_cork(stream_, active ? 0 : 1, nullptr, nullptr));
      state_.store(active ? kPlaybackStreaming : kPlaybackPaused);
    }
    client_.Unlock();
  }

  // The server then consumes ratio x the nominal rate.
  void ApplyRate(double ratio) {
    uint32_t hz = uint32_t(lround(spec_.rate * ratio));
    client_.Lock();
    // Every pa_stream_update_sample_rate is a server round trip that reconfigures the sink
    // input's resampler; called on each 50 ms poll it did not take effect (the drift test's
    // fill kept growing with the ratio pinned at +0.5 %). Update when the rate moved by 3 Hz
    // (~60 ppm) or after 1 s.
    int64_t now = MonoNs();
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
  }

  void StartDrain() {
    client_.Lock();
    draining_ = true;
    Pump();
    client_.Unlock();
  }

  // The server prebuffers: trigger starts its playback below prebuf. What is still in our ring
  // follows through Pump() as the server asks for it.
  void PlayOut() {
    client_.Lock();
    if (stream_ && ready_) pa_operation_unref(pa_stream_trigger(stream_, nullptr, nullptr));
    client_.Unlock();
  }

  // prebuf is the server's start threshold: hand it the new one (tlength keeps its relation to
  // it, as in CreateStream). A later reconnect uses opts_.start_frames; the voice sets it again.
  void ApplyStartFrames(uint32_t frames) {
    client_.Lock();
    if (stream_ && ready_) {
      pa_buffer_attr attr;
      attr.maxlength = uint32_t(-1);
      attr.tlength = (frames + opts_.latency_frames) * stride_;
      attr.prebuf = frames * stride_;
      attr.minreq = uint32_t(-1);
      attr.fragsize = uint32_t(-1);
      pa_operation_unref(pa_stream_set_buffer_attr(stream_, &attr, nullptr, nullptr));
    }
    client_.Unlock();
  }

  pa_sample_spec spec_{};
  pa_channel_map map_{};
  PulseClient client_;
  pa_stream* stream_ = nullptr;
  pa_proplist* proplist_ = nullptr;

  // Mainloop-lock protected.
  bool ready_ = false;
  bool active_ = true;
  bool draining_ = false;
  bool drain_started_ = false;
  bool closing_ = false;
  uint32_t rate_hz_ = 0;
  int64_t last_rate_update_ns_ = 0;
  uint64_t rate_updates_ = 0;
};

}  // namespace

void InitPulseAudio(Napi::Env env, Napi::Object exports) {
  exports.Set("PulsePlayback", PulsePlayback::Define(env));
  exports.Set("PulseSpeakerCore", SpeakerCore<PulsePlayback>::Define(env));
  exports.Set("PulseSpeakerIntake", SpeakerIntake<PulsePlayback>::Define(env));
}

}  // namespace qdb
