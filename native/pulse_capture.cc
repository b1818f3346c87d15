// PulseAudio microphone capture: one record stream per open microphone, on its own
// pa_threaded_mainloop. Like pw_capture.cc, it exists only while the guest records.
//
// The record stream is opened in the guest's sample format (PulseAudio has U8, S16, S32 and
// FLOAT32 in both byte orders; src/audio/in/ captures S8/U16/U32 guests as their sign-flipped
// twin and converts), so the server resamples/remixes and the ring holds guest bytes.
// fragsize is small and PA_STREAM_ADJUST_LATENCY is set: with the default attributes the
// server delivers audio in 2 s lumps (PulseAudio 16).
//
// Everything PulseAudio does happens on the mainloop thread: connecting, the state callbacks
// and the read callback, which copies into the ring and returns. Nothing there waits for JS.
//
// JavaScript API (see src/native-api/capture.ts):
//   new PulseCapture(options, onState(state, message)) ; read(into, offset?, length?) ;
//   discard(bytes) ; available() ; stats() ; close()
#include <pulse/pulseaudio.h>

#include <cstring>
#include <string>

#include "addon.h"
#include "capture_common.h"
#include "pulse_client.h"

namespace qdb {

class PulseCapture : public CaptureBase<PulseCapture> {
 public:
  static constexpr char kClassName[] = "PulseCapture";

  explicit PulseCapture(const Napi::CallbackInfo& info) : CaptureBase<PulseCapture>(info) {
    Napi::Env env = info.Env();
    spec_.format = SampleFormatByName(opts_.format)->pulse;  // S8/U16/U32: PA_SAMPLE_INVALID
    spec_.rate = opts_.rate;
    spec_.channels = static_cast<uint8_t>(opts_.channels);
    if (spec_.format == PA_SAMPLE_INVALID || !pa_sample_spec_valid(&spec_)) {
      ThrowInvalid(env, kClassName,
                   "PulseAudio cannot record " + opts_.format + " " + std::to_string(opts_.rate) +
                       " Hz " + std::to_string(opts_.channels) + " ch");
    }
    Start(info, "qdb-pulse-capture");
    const std::string app = PropOr(opts_.props, PA_PROP_APPLICATION_NAME, "qemu-dbus-bridge");
    pa_proplist* pl = pa_proplist_new();
    pa_proplist_sets(pl, PA_PROP_APPLICATION_NAME, app.c_str());
    try {
      client_.Open(env, nullptr, app, pl, opts_.remote, &PulseCapture::OnContextState, this);
    } catch (...) {
      pa_proplist_free(pl);
      Teardown();  // releases the ThreadSafeFunction and the cleanup hook
      throw;
    }
    pa_proplist_free(pl);
    client_.Unlock();
  }

  ~PulseCapture() override { Teardown(); }

 private:
  friend class CaptureBase<PulseCapture>;

  // Mainloop thread.
  static void OnContextState(pa_context* c, void* data) {
    auto* self = static_cast<PulseCapture*>(data);
    switch (pa_context_get_state(c)) {
      case PA_CONTEXT_READY:
        self->OpenStream();
        break;
      case PA_CONTEXT_FAILED:
        self->events_.Post("error", std::string("PulseAudio connection failed: ") +
                                        pa_strerror(pa_context_errno(c)) +
                                        " (is the server running? PULSE_SERVER / XDG_RUNTIME_DIR)");
        break;
      case PA_CONTEXT_TERMINATED:
        self->events_.Post("closed", "");
        break;
      default:
        break;
    }
  }

  // Mainloop thread, context ready.
  void OpenStream() {
    // Identity from TypeScript (src/stream-identity.ts micIdentity): media.role, node.name...
    pa_proplist* pl = pa_proplist_new();
    for (const auto& kv : opts_.props) pa_proplist_sets(pl, kv.first.c_str(), kv.second.c_str());
    pa_channel_map map;
    if (!opts_.positions.empty()) {
      map.channels = spec_.channels;
      for (uint32_t c = 0; c < spec_.channels; c++)
        map.map[c] = ChannelByName(opts_.positions[c])->pulse;
    } else {
      pa_channel_map_init_extend(&map, spec_.channels, PA_CHANNEL_MAP_AUX);
    }
    stream_ =
        pa_stream_new_with_proplist(client_.context(), opts_.stream_name.c_str(), &spec_, &map, pl);
    pa_proplist_free(pl);
    if (!stream_) {
      events_.Post("error", std::string("pa_stream_new: ") +
                                pa_strerror(pa_context_errno(client_.context())));
      return;
    }
    pa_stream_set_state_callback(stream_, &PulseCapture::OnStreamState, this);
    pa_stream_set_read_callback(stream_, &PulseCapture::OnRead, this);
    pa_buffer_attr attr;
    attr.maxlength = static_cast<uint32_t>(-1);
    attr.tlength = static_cast<uint32_t>(-1);
    attr.prebuf = static_cast<uint32_t>(-1);
    attr.minreq = static_cast<uint32_t>(-1);
    attr.fragsize = opts_.latency_frames * ring_.frame_bytes();
    pa_stream_flags_t flags = static_cast<pa_stream_flags_t>(PA_STREAM_ADJUST_LATENCY);
    if (!opts_.device.empty()) flags = static_cast<pa_stream_flags_t>(flags | PA_STREAM_DONT_MOVE);
    if (pa_stream_connect_record(stream_, opts_.device.empty() ? nullptr : opts_.device.c_str(),
                                 &attr, flags) < 0) {
      events_.Post("error", std::string("pa_stream_connect_record: ") +
                                pa_strerror(pa_context_errno(client_.context())));
    }
  }

  static void OnStreamState(pa_stream* s, void* data) {
    auto* self = static_cast<PulseCapture*>(data);
    switch (pa_stream_get_state(s)) {
      case PA_STREAM_CREATING:
        self->events_.Post("connecting", "");
        break;
      case PA_STREAM_READY:
        self->events_.Post("streaming", "");
        break;
      case PA_STREAM_FAILED:
        self->events_.Post(
            "error",
            std::string("PulseAudio record stream failed: ") +
                pa_strerror(pa_context_errno(self->client_.context())) +
                (self->opts_.device.empty() ? "" : " (source '" + self->opts_.device + "')"));
        break;
      case PA_STREAM_TERMINATED:
        self->events_.Post("closed", "");
        break;
      default:
        break;
    }
  }

  // Mainloop thread: move everything the server has delivered into the ring.
  static void OnRead(pa_stream* s, size_t nbytes, void* data) {
    auto* self = static_cast<PulseCapture*>(data);
    for (;;) {
      const void* chunk = nullptr;
      size_t n = 0;
      if (pa_stream_peek(s, &chunk, &n) < 0 || n == 0) return;
      // chunk == NULL with n > 0 is a hole (no data for that span): nothing to copy.
      if (chunk) self->ring_.Produce(static_cast<const uint8_t*>(chunk), static_cast<uint32_t>(n));
      pa_stream_drop(s);
    }
  }

  // ---- main thread: CaptureBase hooks ----------------------------------------------------
  void AddServerStats(Napi::Object o) {
    const char* state = "closed";
    if (client_.is_open()) {
      client_.Lock();
      if (stream_) {
        switch (pa_stream_get_state(stream_)) {
          case PA_STREAM_READY:
            state = "streaming";
            break;
          case PA_STREAM_FAILED:
            state = "error";
            break;
          case PA_STREAM_TERMINATED:
            state = "closed";
            break;
          default:
            state = "connecting";
            break;
        }
        o.Set("streamIndex", static_cast<double>(pa_stream_get_index(stream_)));
      } else {
        state = "connecting";
      }
      client_.Unlock();
    }
    o.Set("state", state);
  }

  void CloseServer() {
    client_.Close([this] {
      if (stream_) {
        pa_stream_set_state_callback(stream_, nullptr, nullptr);
        pa_stream_set_read_callback(stream_, nullptr, nullptr);
        pa_stream_disconnect(stream_);
        pa_stream_unref(stream_);
        stream_ = nullptr;
      }
    });
  }

  pa_sample_spec spec_{};
  PulseClient client_;
  pa_stream* stream_ = nullptr;
};

void InitPulseCapture(Napi::Env env, Napi::Object exports) {
  exports.Set("PulseCapture", PulseCapture::Define(env));
}

}  // namespace qdb
