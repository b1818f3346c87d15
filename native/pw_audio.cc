// PipeWire playback stream (guest speaker -> host graph).
//
// Thin by design: TypeScript resolves every option (format, positions, properties, latency,
// ring size) and owns all policy (drift control, reconnect, volume mapping). This file only:
//   - runs one pw_thread_loop + context + core + pw_stream per player, so a sound-server restart
//     affects each player independently and TS just recreates it;
//   - moves PCM from an SpscRing (filled by JS, never blocking) to the graph on the real-time
//     data thread (PW_STREAM_FLAG_RT_PROCESS), which touches only the ring and atomics;
//   - exposes counters/state for JS to poll (no JS ever runs on the RT thread, and no
//     ThreadSafeFunction is needed: state changes are rare and the TS side polls stats() for
//     drift control anyway).
#include <errno.h>
#include <math.h>
#include <pipewire/pipewire.h>
#include <spa/param/audio/format-utils.h>
#include <spa/param/props.h>
#include <string.h>
#include <time.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon.h"
#include "pcm_names.h"
#include "pw_client.h"
#include "spsc_ring.h"

namespace qdb {
namespace {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

class PwPlayback : public Napi::ObjectWrap<PwPlayback> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PwPlayback",
                       {
                           InstanceMethod("write", &PwPlayback::Write),
                           InstanceMethod("stats", &PwPlayback::Stats),
                           InstanceMethod("setActive", &PwPlayback::SetActive),
                           InstanceMethod("setVolume", &PwPlayback::SetVolume),
                           InstanceMethod("setRate", &PwPlayback::SetRate),
                           InstanceMethod("drain", &PwPlayback::Drain),
                           InstanceMethod("close", &PwPlayback::Close),
                       });
  }

  // new PwPlayback({format, rate, channels, positions[], ringFrames, startFrames,
  //                 latencyFrames, props: {k: v}, remote?})
  explicit PwPlayback(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PwPlayback>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject())
      ThrowWithCode(env, "EINVAL", "PwPlayback: options object required");
    Napi::Object o = info[0].As<Napi::Object>();
    std::string fmt = OptionString(o, "format");
    const SampleFormatName* fe = SampleFormatByName(fmt);
    if (!fe) ThrowWithCode(env, "EINVAL", "PwPlayback: unknown sample format '" + fmt + "'");
    rate_ = OptionUint32(env, o, "rate", "PwPlayback");
    channels_ = OptionUint32(env, o, "channels", "PwPlayback");
    if (channels_ < 1 || channels_ > SPA_AUDIO_MAX_CHANNELS || rate_ < 1000 || rate_ > 384000)
      ThrowWithCode(env, "EINVAL", "PwPlayback: channels must be 1..64 and rate 1000..384000");
    stride_ = fe->bytes * channels_;
    silence_byte_ = fe->name[0] == 'U' ? 0x80 : 0;
    uint32_t ring_frames = OptionUint32(env, o, "ringFrames", "PwPlayback");
    start_bytes_.store(size_t(OptionUint32(env, o, "startFrames", "PwPlayback")) * stride_);
    uint32_t latency_frames = OptionUint32(env, o, "latencyFrames", "PwPlayback");
    ring_ = std::make_unique<SpscRing>(ring_frames, stride_);

    spa_audio_info_raw raw{};
    raw.format = fe->spa;
    raw.rate = rate_;
    raw.channels = channels_;
    Napi::Value posv = o.Get("positions");
    if (!posv.IsArray() || posv.As<Napi::Array>().Length() != channels_)
      ThrowWithCode(env, "EINVAL", "PwPlayback: positions must list one name per channel");
    Napi::Array pos = posv.As<Napi::Array>();
    for (uint32_t i = 0; i < channels_; i++) {
      std::string p = pos.Get(i).ToString().Utf8Value();
      const ChannelName* ch = ChannelByName(p);
      if (!ch) ThrowWithCode(env, "EINVAL", "PwPlayback: unknown channel position '" + p + "'");
      raw.position[i] = ch->spa;
    }

    pw_properties* props =
        pw_properties_new(PW_KEY_MEDIA_TYPE, "Audio", PW_KEY_MEDIA_CATEGORY, "Playback", nullptr);
    Napi::Value pv = o.Get("props");
    if (pv.IsObject()) {
      Napi::Object po = pv.As<Napi::Object>();
      Napi::Array keys = po.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); i++) {
        std::string k = keys.Get(i).ToString().Utf8Value();
        pw_properties_set(props, k.c_str(), po.Get(k).ToString().Utf8Value().c_str());
      }
    }
    pw_properties_setf(props, PW_KEY_NODE_LATENCY, "%u/%u", latency_frames, rate_);
    std::string stream_name = OptionString(o, "streamName", "playback");

    try {
      client_.Open(env, "qdb-play", OptionString(o, "remote"), &PwPlayback::OnCoreError, this);
    } catch (...) {
      pw_properties_free(props);
      throw;
    }
    static const pw_stream_events stream_events = [] {
      pw_stream_events e{};
      e.version = PW_VERSION_STREAM_EVENTS;
      e.process = [](void* d) { static_cast<PwPlayback*>(d)->Process(); };
      e.drained = [](void* d) {
        auto* self = static_cast<PwPlayback*>(d);
        self->drained_.store(true);
        pw_thread_loop_signal(self->client_.loop(), false);
      };
      e.state_changed = [](void* d, pw_stream_state old, pw_stream_state state, const char* error) {
        auto* self = static_cast<PwPlayback*>(d);
        self->state_.store(int(state));
        if (state == PW_STREAM_STATE_ERROR)
          self->SetError(std::string("PipeWire stream error: ") + (error ? error : ""));
        // Controls only stick once the adapter exists: re-apply the wanted volume/rate.
        if (state == PW_STREAM_STATE_PAUSED || state == PW_STREAM_STATE_STREAMING)
          self->ApplyControlsLocked();
      };
      return e;
    }();
    stream_ = pw_stream_new(client_.core(), stream_name.c_str(), props);  // takes props
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
  // ---- real-time data thread -------------------------------------------------------------
  void Process() {
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
      } else if (got < want && !flushed_) {
        flushed_ = true;
        Finish(b, d, got);
        pw_stream_flush(stream_, true);  // runs inline here: it invokes on the data loop
        return;
      }
    } else if (rearm_.exchange(false, std::memory_order_acq_rel)) {
      playing_ = false;  // uncorked: prebuffer again instead of counting an underrun
    }
    if (!draining && !playing_) {
      // Prebuffer: stay silent (not an underrun) until the ring holds the start threshold, so
      // QEMU's bursty 1024-frame Writes do not underrun right at the start.
      if (ring_->Fill() >= start_bytes_.load(std::memory_order_relaxed)) playing_ = true;
    }
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
      static_cast<PwPlayback*>(owner)->SetError(std::string("PipeWire core error: ") +
                                                (message ? message : "") + " (" + strerror(-res) +
                                                ")");
  }

  void SetError(const std::string& msg) {
    std::lock_guard<std::mutex> g(error_mutex_);
    if (error_.empty()) error_ = msg;
    has_error_.store(true);
  }

  void ApplyControlsLocked() {
    if (!stream_) return;
    std::vector<float> vols = volumes_;
    float mute = mute_ ? 1.0f : 0.0f;
    if (!vols.empty())
      pw_stream_set_control(stream_, SPA_PROP_channelVolumes, uint32_t(vols.size()), vols.data(),
                            SPA_PROP_mute, 1, &mute, 0);
    if (rate_ratio_ != 1.0f) pw_stream_set_control(stream_, SPA_PROP_rate, 1, &rate_ratio_, 0);
  }

  void Teardown() {
    client_.Close([this] {
      if (stream_) {
        spa_hook_remove(&stream_hook_);
        pw_stream_destroy(stream_);
        stream_ = nullptr;
      }
    });
  }

  void CheckOpen(Napi::Env env) {
    if (!stream_) ThrowWithCode(env, "ECLOSED", "PwPlayback: already closed");
  }

  // ---- JS thread -------------------------------------------------------------------------
  // write(data: Uint8Array): number of bytes accepted (all whole frames). Never blocks: when the
  // ring is full the OLDEST queued frames are dropped (counted in overflowFrames).
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 1 || !info[0].IsTypedArray())
      ThrowWithCode(env, "EINVAL", "PwPlayback.write: Uint8Array required");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = ta.ArrayBuffer();
    const uint8_t* p = static_cast<const uint8_t*>(ab.Data()) + ta.ByteOffset();
    size_t n = ta.ByteLength();
    n -= n % stride_;
    size_t dropped = ring_->WriteDropOldest(p, n);
    if (dropped) overflow_frames_.fetch_add(dropped / stride_, std::memory_order_relaxed);
    written_frames_ += n / stride_;
    return Napi::Number::New(env, double(n));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("fillFrames", double(ring_->Fill() / stride_));
    r.Set("capacityFrames", double(ring_->capacity_bytes() / stride_));
    r.Set("writtenFrames", double(written_frames_));
    r.Set("consumedFrames", double(consumed_frames_.load()));
    r.Set("underruns", double(underruns_.load()));
    r.Set("underrunFrames", double(underrun_frames_.load()));
    r.Set("overflowFrames", double(overflow_frames_.load()));
    r.Set("cycles", double(cycles_.load()));
    r.Set("drained", drained_.load());
    r.Set("nowNs", double(MonoNs()));
    static const char* kStates[] = {"error", "unconnected", "connecting", "paused", "streaming"};
    int st = state_.load();
    r.Set("state", (st >= -1 && st <= 3) ? kStates[st + 1] : "unknown");
    if (has_error_.load()) {
      std::lock_guard<std::mutex> g(error_mutex_);
      r.Set("error", error_);
    }
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
        double queued_ns = (double(t.queued / stride_) + double(t.buffered)) * 1e9 / rate_;
        r.Set("delayNs", graph_ns + queued_ns);
        r.Set("graphRate", double(t.rate.denom));
        r.Set("timeNs", double(t.now));
      }
    }
    return r;
  }

  // setActive(bool): cork/uncork (the guest started/stopped the voice).
  Napi::Value SetActive(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    bool active = info[0].ToBoolean();
    client_.Lock();
    if (active) rearm_.store(true);
    pw_stream_set_active(stream_, active);
    client_.Unlock();
    return info.Env().Undefined();
  }

  // setVolume(mute: boolean, volumes: number[] linear 0..1 per channel)
  Napi::Value SetVolume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (info.Length() < 2 || !info[1].IsArray())
      ThrowWithCode(env, "EINVAL", "PwPlayback.setVolume(mute, volumes[])");
    Napi::Array a = info[1].As<Napi::Array>();
    std::vector<float> v(channels_, 1.0f);
    for (uint32_t i = 0; i < channels_ && i < a.Length(); i++)
      v[i] = a.Get(i).ToNumber().FloatValue();
    client_.Lock();
    mute_ = info[0].ToBoolean();
    volumes_ = v;
    ApplyControlsLocked();
    client_.Unlock();
    return env.Undefined();
  }

  // setRate(ratio): adaptive resampling factor for drift control (1.0 = nominal).
  Napi::Value SetRate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    float r = info[0].ToNumber().FloatValue();
    if (!(r > 0.9f && r < 1.1f))
      ThrowWithCode(env, "EINVAL", "PwPlayback.setRate: ratio must be within 0.9..1.1");
    client_.Lock();
    rate_ratio_ = r;
    pw_stream_set_control(stream_, SPA_PROP_rate, 1, &rate_ratio_, 0);
    client_.Unlock();
    return env.Undefined();
  }

  // drain(): from now on the RT thread plays out the ring without padding, then flushes with
  // drain=true; stats().drained turns true once PipeWire has played everything. Never blocks.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    CheckOpen(info.Env());
    draining_.store(true, std::memory_order_release);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  uint32_t rate_ = 0, channels_ = 0, stride_ = 1;
  uint8_t silence_byte_ = 0;
  std::unique_ptr<SpscRing> ring_;
  PwClient client_;
  pw_stream* stream_ = nullptr;
  spa_hook stream_hook_{};

  // RT-thread-only state.
  bool playing_ = false;
  bool flushed_ = false;
  int drain_pad_cycles_ = 0;
  static constexpr int kDrainPadCycles = 3;

  std::atomic<size_t> start_bytes_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> rearm_{false};
  std::atomic<bool> drained_{false};
  std::atomic<int> state_{int(PW_STREAM_STATE_UNCONNECTED)};
  std::atomic<uint64_t> consumed_frames_{0}, underruns_{0}, underrun_frames_{0},
      overflow_frames_{0}, cycles_{0};
  uint64_t written_frames_ = 0;  // JS thread only

  // Loop-lock protected.
  std::vector<float> volumes_;
  bool mute_ = false;
  float rate_ratio_ = 1.0f;

  std::atomic<bool> has_error_{false};
  std::mutex error_mutex_;
  std::string error_;
};

}  // namespace

void InitPwAudio(Napi::Env env, Napi::Object exports) {
  exports.Set("PwPlayback", PwPlayback::Define(env));
}

}  // namespace qdb
