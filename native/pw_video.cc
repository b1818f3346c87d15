// PipeWire camera node: a Video/Source stream with media.role=Camera that DRIVES its own graph
// cycle with a timer at the camera rate, so a consumer gets a steady frame rate even when the
// guest is idle (the last frame is repeated). JavaScript converts a frame only when the picture
// changed and hands it over with push(); the loop thread copies the newest frame into each
// PipeWire buffer. The hand-over is a lock-free triple buffer preallocated at construction, so
// neither side ever waits for the other and nothing is allocated per frame.
// The consumer picks the pixel format (YUY2, I420 or NV12, in our order of preference); JS polls
// format() and state() (atomics) and skips converting while nobody watches (PAUSED).
#include <pipewire/pipewire.h>
#include <spa/buffer/meta.h>
#include <spa/param/buffers.h>
#include <spa/param/video/format-utils.h>
#include <string.h>
#include <time.h>

#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "js_args.h"
#include "pw_client.h"

namespace qdb {

namespace {

enum Fmt { kNone = -1, kYUY2 = 0, kI420 = 1, kNV12 = 2 };

const char* FmtName(int f) {
  return f == kYUY2 ? "YUY2" : f == kI420 ? "I420" : f == kNV12 ? "NV12" : "";
}

int FmtFromName(const std::string& s) {
  return s == "YUY2" ? kYUY2 : s == "I420" ? kI420 : s == "NV12" ? kNV12 : kNone;
}

uint32_t SpaFormat(int f) {
  return f == kYUY2   ? SPA_VIDEO_FORMAT_YUY2
         : f == kI420 ? SPA_VIDEO_FORMAT_I420
                      : SPA_VIDEO_FORMAT_NV12;
}

int FmtFromSpa(uint32_t s) {
  return s == SPA_VIDEO_FORMAT_YUY2   ? kYUY2
         : s == SPA_VIDEO_FORMAT_I420 ? kI420
         : s == SPA_VIDEO_FORMAT_NV12 ? kNV12
                                      : kNone;
}

struct Plane {
  size_t offset, size;
  uint32_t stride;
};

int Planes(int f, uint32_t w, uint32_t h, Plane* p) {
  size_t ys = static_cast<size_t>(w) * h;
  if (f == kYUY2) {
    p[0] = {0, ys * 2, w * 2};
    return 1;
  }
  if (f == kI420) {
    size_t cs = static_cast<size_t>(w / 2) * (h / 2);
    p[0] = {0, ys, w};
    p[1] = {ys, cs, w / 2};
    p[2] = {ys + cs, cs, w / 2};
    return 3;
  }
  p[0] = {0, ys, w};
  p[1] = {ys, ys / 2, w};
  return 2;
}

size_t FrameBytes(int f, uint32_t w, uint32_t h) {
  Plane p[3];
  int n = Planes(f, w, h, p);
  return p[n - 1].offset + p[n - 1].size;
}

class PwCamera : public Napi::ObjectWrap<PwCamera> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "PwCamera",
        {InstanceMethod("push", &PwCamera::Push), InstanceMethod("format", &PwCamera::Format),
         InstanceMethod("state", &PwCamera::State), InstanceMethod("nodeId", &PwCamera::NodeId),
         InstanceMethod("stats", &PwCamera::Stats), InstanceMethod("close", &PwCamera::Close)});
  }

  // new PwCamera({streamName, props: {k: v}, width, height, fps, formats: ['YUY2', ...], remote?})
  // The node's identity (node.name, description, media.class Video/Source, role Camera) comes
  // whole in `props` from TypeScript (src/stream-identity.ts cameraIdentity).
  explicit PwCamera(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PwCamera>(info) {
    Napi::Env env = info.Env();
    static const std::string who = "PwCamera";
    Napi::Object o = ArgObject(Arg(info, 0), who, "options");
    std::string stream_name = OptString(o, "streamName", who);
    std::vector<std::pair<std::string, std::string>> identity = OptStringMap(o, "props", who);
    // remote: socket name or absolute path (PIPEWIRE_REMOTE semantics); default from the env
    std::string remote = OptStringOr(o, "remote", who, "");
    width_ = OptUint32(o, "width", who, 2, 16384);
    height_ = OptUint32(o, "height", who, 2, 16384);
    fps_ = OptUint32(o, "fps", who, 1, 240);
    if (width_ % 2 || height_ % 2) ThrowInvalid(env, who, "width/height must be even");
    for (const std::string& name : OptStrings(o, "formats", who)) {
      int f = FmtFromName(name);
      if (f == kNone) ThrowInvalid(env, who, "formats: only YUY2, I420 and NV12 are offered");
      offered_.push_back(f);
    }
    if (offered_.empty()) ThrowInvalid(env, who, "formats must not be empty");
    max_bytes_ = static_cast<size_t>(width_) * height_ * 2;
    for (auto& s : slots_) s.assign(max_bytes_, 0);

    // We drive the graph with our own timer, so the loop thread stays a normal thread even with
    // client-rt.conf; the client setup is the same as audio's.
    client_.Open(env, "qdb-camera", remote, &PwCamera::OnCoreError, this);
    timer_ = pw_loop_add_timer(pw_thread_loop_get_loop(client_.loop()), OnTimer, this);
    char rate[32];
    snprintf(rate, sizeof rate, "%u/1", fps_);
    pw_properties* props = pw_properties_new(nullptr, nullptr);
    for (const auto& kv : identity) pw_properties_set(props, kv.first.c_str(), kv.second.c_str());
    stream_ = pw_stream_new(client_.core(), stream_name.c_str(), props);  // takes props
    if (!stream_) {
      client_.Unlock();
      Destroy();
      ThrowWithCode(env, "EPIPEWIRE", "pw_stream_new failed");
    }
    static const pw_stream_events events = [] {
      pw_stream_events e{};
      e.version = PW_VERSION_STREAM_EVENTS;
      e.state_changed = OnState;
      e.param_changed = OnParam;
      e.process = OnProcess;
      return e;
    }();
    pw_stream_add_listener(stream_, &listener_, &events, this);

    uint8_t tmp[1024];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(tmp, sizeof(tmp));
    spa_rectangle size = SPA_RECTANGLE(width_, height_);
    spa_fraction fr = SPA_FRACTION(fps_, 1);
    spa_pod_frame f;
    spa_pod_builder_push_object(&b, &f, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat);
    spa_pod_builder_add(&b, SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_video),
                        SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw), 0);
    spa_pod_builder_prop(&b, SPA_FORMAT_VIDEO_format, 0);
    spa_pod_frame cf;
    spa_pod_builder_push_choice(&b, &cf, SPA_CHOICE_Enum, 0);
    spa_pod_builder_id(&b, SpaFormat(offered_[0]));  // default
    for (int of : offered_) spa_pod_builder_id(&b, SpaFormat(of));
    spa_pod_builder_pop(&b, &cf);
    spa_pod_builder_add(&b, SPA_FORMAT_VIDEO_size, SPA_POD_Rectangle(&size),
                        SPA_FORMAT_VIDEO_framerate, SPA_POD_Fraction(&fr), 0);
    const spa_pod* params[1] = {static_cast<const spa_pod*>(spa_pod_builder_pop(&b, &f))};
    int r = pw_stream_connect(
        stream_, PW_DIRECTION_OUTPUT, PW_ID_ANY,
        static_cast<pw_stream_flags>(PW_STREAM_FLAG_DRIVER | PW_STREAM_FLAG_MAP_BUFFERS), params,
        1);
    client_.Unlock();
    if (r < 0) {
      Destroy();
      ThrowWithCode(env, "EPIPEWIRE", std::string("pw_stream_connect failed: ") + strerror(-r));
    }
  }

  ~PwCamera() override { Destroy(); }

 private:
  static constexpr int kFresh = 4;

  // push(frame: Uint8Array, format: 'YUY2'|'I420'|'NV12'): frame is tightly packed planes.
  Napi::Value Push(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!stream_) ThrowWithCode(env, "ECLOSED", "PwCamera is closed");
    auto a = ArgBytes(Arg(info, 0), "PwCamera.push", "frame");
    int f = FmtFromName(ArgString(Arg(info, 1), "PwCamera.push", "format"));
    if (f == kNone) ThrowInvalid(env, "PwCamera.push", "format must be YUY2, I420 or NV12");
    size_t need = FrameBytes(f, width_, height_);
    if (a.ByteLength() != need)
      ThrowWithCode(env, "ERANGE",
                    std::string("frame must be ") + std::to_string(need) + " bytes for " +
                        FmtName(f) + " " + std::to_string(width_) + "x" + std::to_string(height_) +
                        ", got " + std::to_string(a.ByteLength()));
    memcpy(slots_[back_].data(), a.Data(), need);
    slot_fmt_[back_] = f;
    back_ = middle_.exchange(back_ | kFresh) & 3;
    pushed_.fetch_add(1, std::memory_order_relaxed);
    return env.Undefined();
  }

  Napi::Value Format(const Napi::CallbackInfo& info) {
    int f = fmt_.load();
    if (f == kNone) return info.Env().Null();
    return Napi::String::New(info.Env(), FmtName(f));
  }

  Napi::Value State(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> g(err_mu_);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("state", core_lost_.load()
                       ? "error"
                       : pw_stream_state_as_string(static_cast<pw_stream_state>(state_.load())));
    if (!error_.empty()) o.Set("error", error_);
    return o;
  }

  Napi::Value NodeId(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), node_id_.load());
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("pushed", static_cast<double>(pushed_.load()));
    o.Set("sent", static_cast<double>(sent_.load()));
    o.Set("repeated", static_cast<double>(repeated_.load()));
    o.Set("noBuffer", static_cast<double>(no_buffer_.load()));
    o.Set("waiting", static_cast<double>(waiting_.load()));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Destroy();
    return info.Env().Undefined();
  }

  void Destroy() {
    client_.Close([this] {
      if (timer_) pw_loop_destroy_source(pw_thread_loop_get_loop(client_.loop()), timer_);
      timer_ = nullptr;
      if (stream_) {
        // A driver's every trigger has the data thread post trigger_done back to the loop
        // thread with the stream's address; one still queued when pw_stream_destroy freed the
        // stream made the loop thread walk freed memory (a close while a consumer watched:
        // test/integration/pw-close-while-running.test.ts). Disconnected, no data thread runs the
        // stream; settled, nothing it posted is left; then it goes.
        pw_stream_disconnect(stream_);
        client_.SettleLocked();
        pw_stream_destroy(stream_);
      }
      stream_ = nullptr;
    });
    fmt_.store(kNone);
  }

  // ---- loop thread ----
  // The daemon going away (restart, crash) shows up here, not always as a stream state.
  static void OnCoreError(void* owner, uint32_t id, int res, const char* message) {
    auto* self = static_cast<PwCamera*>(owner);
    if (id != PW_ID_CORE) return;
    std::lock_guard<std::mutex> g(self->err_mu_);
    self->error_ = std::string("PipeWire connection lost: ") + (message ? message : "") + " (" +
                   strerror(-res) + ")";
    self->core_lost_.store(true);
  }

  static void OnTimer(void* data, uint64_t) {
    auto* self = static_cast<PwCamera*>(data);
    if (self->stream_) pw_stream_trigger_process(self->stream_);
  }

  static void OnState(void* data, pw_stream_state, pw_stream_state state, const char* error) {
    auto* self = static_cast<PwCamera*>(data);
    self->state_.store(state);
    self->node_id_.store(pw_stream_get_node_id(self->stream_));
    if (error) {
      std::lock_guard<std::mutex> g(self->err_mu_);
      self->error_ = error;
    }
    if (!self->timer_) return;  // being destroyed
    pw_loop* l = pw_thread_loop_get_loop(self->client_.loop());
    if (state == PW_STREAM_STATE_STREAMING) {
      timespec first{0, 1}, iv{0, static_cast<long>(1000000000L / self->fps_)};
      pw_loop_update_timer(l, self->timer_, &first, &iv, false);
    } else {
      pw_loop_update_timer(l, self->timer_, nullptr, nullptr, false);
    }
  }

  static void OnParam(void* data, uint32_t id, const spa_pod* param) {
    auto* self = static_cast<PwCamera*>(data);
    if (id != SPA_PARAM_Format) return;
    if (!param) {
      self->fmt_.store(kNone);
      return;
    }
    spa_video_info_raw raw{};
    if (spa_format_video_raw_parse(param, &raw) < 0) return;
    int f = FmtFromSpa(raw.format);
    self->fmt_.store(f);
    if (f == kNone) return;
    Plane p[3];
    int n = Planes(f, self->width_, self->height_, p);
    // One data block per plane, each with its own stride, so consumers never guess plane
    // offsets from padding rules (GStreamer rounds chroma strides up to 4 bytes).
    uint8_t tmp[1024];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(tmp, sizeof(tmp));
    const spa_pod* params[2];
    params[0] = static_cast<const spa_pod*>(spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers, SPA_PARAM_BUFFERS_buffers,
        SPA_POD_CHOICE_RANGE_Int(4, 2, 16), SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(n),
        SPA_PARAM_BUFFERS_size, SPA_POD_Int(static_cast<int>(p[0].size)), SPA_PARAM_BUFFERS_stride,
        SPA_POD_Int(static_cast<int>(p[0].stride)), SPA_PARAM_BUFFERS_dataType,
        SPA_POD_CHOICE_FLAGS_Int((1 << SPA_DATA_MemFd) | (1 << SPA_DATA_MemPtr))));
    params[1] = static_cast<const spa_pod*>(spa_pod_builder_add_object(
        &b, SPA_TYPE_OBJECT_ParamMeta, SPA_PARAM_Meta, SPA_PARAM_META_type,
        SPA_POD_Id(SPA_META_Header), SPA_PARAM_META_size, SPA_POD_Int(sizeof(spa_meta_header))));
    pw_stream_update_params(self->stream_, params, 2);
  }

  static void OnProcess(void* data) {
    auto* self = static_cast<PwCamera*>(data);
    if (self->middle_.load() & kFresh) {
      self->front_ = self->middle_.exchange(self->front_) & 3;
      self->have_frame_ = true;
      self->sent_.fetch_add(1, std::memory_order_relaxed);
    } else {
      self->repeated_.fetch_add(1, std::memory_order_relaxed);
    }
    int f = self->fmt_.load();
    // Until JS has pushed a frame in the negotiated format (it converts only while somebody
    // watches, so right after a consumer links there is none), produce nothing: the consumer
    // waits a tick instead of receiving a black frame that never was on the guest's screen.
    if (f == kNone || !self->have_frame_ || self->slot_fmt_[self->front_] != f) {
      self->waiting_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pw_buffer* pb = pw_stream_dequeue_buffer(self->stream_);
    if (!pb) {
      self->no_buffer_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    spa_buffer* buf = pb->buffer;
    Plane p[3];
    int n = Planes(f, self->width_, self->height_, p);
    const uint8_t* src = self->slots_[self->front_].data();
    for (int i = 0; i < n && i < static_cast<int>(buf->n_datas); i++) {
      spa_data* d = &buf->datas[i];
      if (!d->data || d->maxsize < p[i].size) continue;
      memcpy(d->data, src + p[i].offset, p[i].size);
      d->chunk->offset = 0;
      d->chunk->size = static_cast<uint32_t>(p[i].size);
      d->chunk->stride = static_cast<int32_t>(p[i].stride);
    }
    auto* h = static_cast<spa_meta_header*>(
        spa_buffer_find_meta_data(buf, SPA_META_Header, sizeof(spa_meta_header)));
    if (h) {
      timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      h->pts = SPA_TIMESPEC_TO_NSEC(&ts);
      h->flags = 0;
      h->seq = self->seq_++;
      h->dts_offset = 0;
    }
    pw_stream_queue_buffer(self->stream_, pb);
  }

  uint32_t width_ = 0, height_ = 0, fps_ = 30;
  std::vector<int> offered_;
  size_t max_bytes_ = 0;
  std::vector<uint8_t> slots_[3];
  int slot_fmt_[3] = {kNone, kNone, kNone};
  int back_ = 0;                // JS thread only
  std::atomic<int> middle_{1};  // shared: index | kFresh
  int front_ = 2;               // loop thread only
  bool have_frame_ = false;     // loop thread only
  uint64_t seq_ = 0;            // loop thread only
  std::atomic<int> fmt_{kNone};
  std::atomic<int> state_{PW_STREAM_STATE_UNCONNECTED};
  std::atomic<uint32_t> node_id_{SPA_ID_INVALID};
  std::atomic<uint64_t> pushed_{0}, sent_{0}, repeated_{0}, no_buffer_{0}, waiting_{0};
  std::mutex err_mu_;
  std::string error_;
  PwClient client_;
  pw_stream* stream_ = nullptr;
  spa_source* timer_ = nullptr;
  spa_hook listener_{};
  std::atomic<bool> core_lost_{false};
};

}  // namespace

void InitPwVideo(Napi::Env env, Napi::Object exports) {
  exports.Set("PwCamera", PwCamera::Define(env));
}

}  // namespace qdb
