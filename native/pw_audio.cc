// PipeWire playback stream (guest speaker -> host graph).
//
// Thin by design: TypeScript resolves every option (format, positions, properties, latency,
// ring size) and owns all policy (drift control, reconnect, the guest's volume: applied to the PCM
// in src/audio/out/voice.ts). This file only:
//   - runs one pw_thread_loop + context + core + pw_stream per player, so a sound-server restart
//     affects each player independently and TS just recreates it;
//   - moves PCM from an SpscRing (filled by JS, never blocking) to the graph on the real-time
//     data thread (PW_STREAM_FLAG_RT_PROCESS), which touches only the ring and atomics;
//   - exposes counters/state for JS to poll (no JS ever runs on the RT thread, and no
//     ThreadSafeFunction is needed: state changes are rare and the TS side polls stats() for
//     drift control anyway).
// Option parsing, the ring, write() and the common stats live in playback_common.h, shared
// with pulse_audio.cc.
#include <errno.h>
#include <pipewire/pipewire.h>
#include <spa/param/audio/format-utils.h>
#include <spa/param/props.h>
#include <string.h>

#include <atomic>
#include <string>
#include <vector>

#include "addon.h"
#include "playback_common.h"
#include "pw_client.h"
#include "speaker_core.h"
#include "speaker_intake.h"

namespace qdb {
namespace {

// stats().state stores pw_stream_state as is.
static_assert(int(PW_STREAM_STATE_ERROR) == kPlaybackError &&
                  int(PW_STREAM_STATE_UNCONNECTED) == kPlaybackUnconnected &&
                  int(PW_STREAM_STATE_CONNECTING) == kPlaybackConnecting &&
                  int(PW_STREAM_STATE_PAUSED) == kPlaybackPaused &&
                  int(PW_STREAM_STATE_STREAMING) == kPlaybackStreaming,
              "PlaybackState mirrors pw_stream_state");

class PwPlayback : public PlaybackBase<PwPlayback> {
 public:
  static constexpr char kClassName[] = "PwPlayback";
  static constexpr char kCoreClassName[] = "PwSpeakerCore";  // its SpeakerCore (speaker_core.h)
  static constexpr napi_type_tag kTypeTag = {0x71646270772d706cULL, 0x61796261636b0001ULL};
  static constexpr char kIntakeClassName[] = "PwSpeakerIntake";  // speaker_intake.h
  static constexpr napi_type_tag kCoreTypeTag = {0x71646270772d636fULL, 0x72652d7370656b01ULL};

  explicit PwPlayback(const Napi::CallbackInfo& info) : PlaybackBase<PwPlayback>(info) {
    Napi::Env env = info.Env();
    silence_byte_ = opts_.format->name[0] == 'U' ? 0x80 : 0;

    spa_audio_info_raw raw{};
    raw.format = opts_.format->spa;
    raw.rate = opts_.rate;
    raw.channels = opts_.channels;
    for (uint32_t i = 0; i < opts_.channels; i++) raw.position[i] = opts_.positions[i]->spa;

    pw_properties* props =
        pw_properties_new(PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CATEGORY, "Playback", nullptr);
    for (const auto& kv : opts_.props)
      pw_properties_set(props, kv.first.c_str(), kv.second.c_str());
    pw_properties_setf(props, PW_KEY_NODE_LATENCY, "%u/%u", opts_.latency_frames, opts_.rate);

    try {
      client_.Open(env, "qdb-play", opts_.remote, &PwPlayback::OnCoreError, this);
    } catch (...) {
      pw_properties_free(props);
      throw;
    }
    static const pw_stream_events stream_events = [] {
      pw_stream_events e{};
      e.version = PW_VERSION_STREAM_EVENTS;
      e.process = [](void* d) { static_cast<PwPlayback*>(d)->Process(); };
      // No `drained` listener and no pw_stream_flush(drain): see Process().
      e.state_changed = [](void* d, pw_stream_state old, pw_stream_state state, const char* error) {
        auto* self = static_cast<PwPlayback*>(d);
        self->state_.store(int(state));
        if (state == PW_STREAM_STATE_ERROR)
          self->RecordError(std::string("PipeWire stream error: ") + (error ? error : ""));
        // Controls only stick once the adapter exists: re-apply the wanted rate.
        if (state == PW_STREAM_STATE_PAUSED || state == PW_STREAM_STATE_STREAMING)
          self->ApplyControlsLocked();
      };
      return e;
    }();
    stream_ = pw_stream_new(client_.core(), opts_.stream_name.c_str(), props);  // takes props
    if (!stream_) {
      int err = errno;
      client_.Unlock();
      Teardown();
      ThrowErrno(env, err, "pw_stream_new");
    }
    pw_stream_add_listener(stream_, &stream_hook_, &stream_events, this);
    uint8_t buf[1024];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
    const spa_pod* params[1] = {spa_format_audio_raw_build(&b, SPA_PARAM_EnumFormat, &raw)};
    int res =
        pw_stream_connect(stream_, PW_DIRECTION_OUTPUT, PW_ID_ANY,
                          pw_stream_flags(PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS |
                                          PW_STREAM_FLAG_RT_PROCESS),
                          params, 1);
    client_.Unlock();
    if (res < 0) {
      Teardown();
      ThrowWithCode(env, "EPIPEWIRE",
                    std::string("PipeWire: pw_stream_connect failed: ") + strerror(-res));
    }
  }

  ~PwPlayback() override { Teardown(); }

 private:
  friend class PlaybackBase<PwPlayback>;

  // ---- option checks (JS thread, from PlaybackBase's constructor) --------------------------
  static const SampleFormatName* CheckFormat(Napi::Env env, const std::string& name) {
    const SampleFormatName* f = SampleFormatByName(name);
    if (!f) ThrowWithCode(env, "EINVAL", "PwPlayback: unknown sample format '" + name + "'");
    return f;
  }

  static void CheckSpec(Napi::Env env, const SampleFormatName&, uint32_t rate, uint32_t channels) {
    if (channels < 1 || channels > SPA_AUDIO_MAX_CHANNELS || rate < 1000 || rate > 384000)
      ThrowWithCode(env, "EINVAL", "PwPlayback: channels must be 1..64 and rate 1000..384000");
  }

  // ---- real-time data thread -------------------------------------------------------------
  void Process() {
    if (flushed_) {
      // Drained, told without PipeWire's drain: pw_stream_flush(drain=true) has the data thread
      // post `drained` to the loop thread as a queued call holding the stream's address, and
      // PipeWire 0.3.65 neither cancels nor waits for it in pw_stream_destroy. A close that
      // came between the post and the loop thread running it (voice.ts gives up waiting on a
      // timeout; a re-Init closes at once) left the loop thread walking the freed stream: the
      // SIGSEGV of the listener fuzz, in pw_stream's do_call_drained, on memory a guest's
      // payload had since refilled. So the data thread tells it itself, where PipeWire would:
      // an RT_PROCESS stream pops the buffer we queue in the same cycle, so being asked again
      // means the graph has taken our last one and finds none queued. Nothing is queued from
      // here on (the stream goes silent until it is closed).
      drained_.store(true, std::memory_order_release);
      return;
    }
    pw_buffer* b = pw_stream_dequeue_buffer(stream_);
    if (!b) return;
    spa_data& d = b->buffer->datas[0];
    if (!d.data) {
      pw_stream_queue_buffer(stream_, b);
      return;
    }
    uint32_t frames = d.maxsize / stride_;
    if (b->requested) frames = SPA_MIN(frames, uint32_t(b->requested));
    size_t want = size_t(frames) * stride_;
    uint8_t* out = static_cast<uint8_t*>(d.data);
    bool draining = draining_.load(std::memory_order_acquire);
    size_t got = 0;
    if (draining) {
      got = ring_->Read(out, want);
      if (got < want && drain_pad_cycles_ < kDrainPadCycles) {
        // The ring is empty: follow the last samples with a few cycles of silence before
        // flushing. `drained` only means the stream's queue is empty; the adapter (converter,
        // resampler) and the graph still hold the last cycle, and closing right at `drained`
        // cut 7-29 ms of the tail in tests. The padding pushes real audio through first.
        drain_pad_cycles_++;
      } else if (got < want) {
        flushed_ = true;  // the last buffer: the next cycles count towards drained_
        Finish(b, d, got);
        return;
      }
    } else if (rearm_.exchange(false, std::memory_order_acq_rel)) {
      playing_ = false;  // uncorked: prebuffer again instead of counting an underrun
    }
    // Taken every cycle, so a playOut() that found the stream already playing is not left over
    // to skip a later prebuffer.
    bool play_out = play_out_.exchange(false, std::memory_order_acq_rel);
    if (!draining && !playing_) playing_ = ReadyToStart(want, play_out);
    if (!draining && playing_) {
      got = ring_->Read(out, want);
      if (got < want) {
        underruns_.fetch_add(1, std::memory_order_relaxed);
        underrun_frames_.fetch_add((want - got) / stride_, std::memory_order_relaxed);
        playing_ = false;  // re-prebuffer rather than stutter block by block
      }
    }
    if (got < want) memset(out + got, SilenceByte(), want - got);
    consumed_frames_.fetch_add(got / stride_, std::memory_order_relaxed);
    Finish(b, d, want);
  }

  // Prebuffer: stay silent (not an underrun) until the ring holds enough that QEMU's next Write
  // comes before it runs dry. Without a schedule: the start threshold. With one (write() told
  // when the next Write is due): the fill projected to that instant must still hold the threshold
  // plus this cycle's request, so the level right before each Write is the threshold whatever
  // the phase of the Write that crossed it (a plain threshold leaves up to one block more).
  bool ReadyToStart(size_t want, bool play_out) {
    size_t fill = ring_->Fill();  // first: see next_due_ns_ in playback_common.h
    if (play_out) return fill > 0;
    size_t start = size_t(start_frames_.load(std::memory_order_relaxed)) * stride_;
    int64_t due = next_due_ns_.load(std::memory_order_relaxed);
    if (due == 0) return fill >= start;
    int64_t ahead_ns = due - MonoNs();  // vDSO clock_gettime: no syscall, no lock
    size_t until_due = 0;
    if (ahead_ns > 0) until_due = size_t(double(ahead_ns) * opts_.rate / 1e9) * stride_;
    return fill >= until_due + start + want;
  }

  void Finish(pw_buffer* b, spa_data& d, size_t bytes) {
    d.chunk->offset = 0;
    d.chunk->stride = int32_t(stride_);
    d.chunk->size = uint32_t(bytes);
    b->size = bytes / stride_;
    cycles_.fetch_add(1, std::memory_order_relaxed);
    pw_stream_queue_buffer(stream_, b);
  }

  // Unsigned formats' silence is mid-scale: 0x80 for U8; for U16/U32 a 0x80 byte pattern is
  // 0x8080.. instead of 0x8000.., an inaudible DC offset of < 0.2 % of full scale.
  uint8_t SilenceByte() const { return silence_byte_; }

  // ---- loop thread (or JS with the loop lock held) -----------------------------------------
  static void OnCoreError(void* owner, uint32_t id, int res, const char* message) {
    if (id == PW_ID_CORE)
      static_cast<PwPlayback*>(owner)->RecordError(std::string("PipeWire core error: ") +
                                                   (message ? message : "") + " (" +
                                                   strerror(-res) + ")");
  }

  void ApplyControlsLocked() {
    if (!stream_) return;
    if (rate_ratio_ != 1.0f) pw_stream_set_control(stream_, SPA_PROP_rate, 1, &rate_ratio_, 0);
  }

  // ---- JS thread: PlaybackBase hooks -------------------------------------------------------
  void Teardown() {
    client_.Close([this] {
      if (stream_) {
        spa_hook_remove(&stream_hook_);
        pw_stream_destroy(stream_);
        stream_ = nullptr;
      }
    });
  }

  // The RT thread pulls from the ring on its own schedule: nothing to do.
  void AfterWrite() {}

  double AddServerStats(Napi::Object r) {
    if (stream_) {
      pw_time t{};
      client_.Lock();
      int res = pw_stream_get_time_n(stream_, &t, sizeof(t));
      uint32_t node_id = pw_stream_get_node_id(stream_);
      client_.Unlock();
      r.Set("nodeId", double(node_id));
      if (res == 0 && t.rate.denom) {
        // Graph delay (device side) plus what sits in the stream's queue and resampler, in ns.
        double graph_ns = double(t.delay) * 1e9 * t.rate.num / t.rate.denom;
        double queued_ns = (double(t.queued / stride_) + double(t.buffered)) * 1e9 / opts_.rate;
        r.Set("delayNs", graph_ns + queued_ns);
        r.Set("graphRate", double(t.rate.denom));
        r.Set("timeNs", double(t.now));
      }
    }
    // A pull model: the graph takes one cycle at a time, so the ring is the whole queue.
    return 0;
  }

  void ApplyActive(bool active) {
    client_.Lock();
    if (active) rearm_.store(true);
    pw_stream_set_active(stream_, active);
    client_.Unlock();
  }

  // An adaptive resampling factor applied by the stream's adapter.
  void ApplyRate(double ratio) {
    client_.Lock();
    rate_ratio_ = float(ratio);
    pw_stream_set_control(stream_, SPA_PROP_rate, 1, &rate_ratio_, 0);
    client_.Unlock();
  }

  // From now on the RT thread plays out the ring without prebuffering, pads it with silence,
  // and sets drained_ once the graph has taken the last buffer (Process).
  void StartDrain() { draining_.store(true, std::memory_order_release); }

  // Release pairs with the RT thread's acq_rel exchange: the frames written before playOut() are
  // in the ring when the flag is seen.
  void PlayOut() { play_out_.store(true, std::memory_order_release); }

  // The RT thread reads start_frames_ itself.
  void ApplyStartFrames(uint32_t) {}

  uint8_t silence_byte_ = 0;
  PwClient client_;
  pw_stream* stream_ = nullptr;
  spa_hook stream_hook_{};

  // RT-thread-only state.
  bool playing_ = false;
  bool flushed_ = false;  // the last buffer of a drain is queued
  int drain_pad_cycles_ = 0;
  static constexpr int kDrainPadCycles = 3;

  std::atomic<bool> draining_{false};
  std::atomic<bool> play_out_{false};
  std::atomic<bool> rearm_{false};

  // Loop-lock protected.
  float rate_ratio_ = 1.0f;
};

}  // namespace

void InitPwAudio(Napi::Env env, Napi::Object exports) {
  exports.Set("PwPlayback", PwPlayback::Define(env));
  exports.Set("PwSpeakerCore", SpeakerCore<PwPlayback>::Define(env));
  exports.Set("PwSpeakerIntake", SpeakerIntake<PwPlayback>::Define(env));
}

}  // namespace qdb
