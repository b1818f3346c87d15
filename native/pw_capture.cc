// PipeWire microphone capture: one pw_stream (INPUT) per open microphone, on the audio
// connection it shares with the speaker (kAudioLoop: one pw_thread_loop, context and data thread
// for both, pw_client.h). A capture exists only while the guest records (the TypeScript handler
// opens it on SetEnabled(true) and closes it on SetEnabled(false)/Fini); a microphone without a
// speaker stream opens the connection itself and closes it with the last user.
//
// The stream is opened in the guest's sample format, rate and channel count: PipeWire's
// adapter converts from the source, so the ring holds exactly the bytes the guest reads.
// The context uses client-rt.conf (loads module-rt): without it the data thread stays
// SCHED_OTHER and glitches under load (seen with PipeWire 0.3.65 on 2 shared cores).
//
// JavaScript API (see src/native-api/capture.ts):
//   new PwCapture(options, onState(state, message)) ; read(into, offset?, length?) ;
//   discard(bytes) ; available() ; stats() ; close()
#include <pipewire/pipewire.h>
#include <spa/param/audio/format-utils.h>
#include <spa/utils/result.h>

#include <cstring>
#include <string>

#include "addon.h"
#include "capture_common.h"
#include "pw_client.h"

namespace qdb {

class PwCapture : public CaptureBase<PwCapture> {
 public:
  static constexpr char kClassName[] = "PwCapture";

  explicit PwCapture(const Napi::CallbackInfo& info) : CaptureBase<PwCapture>(info) {
    Napi::Env env = info.Env();
    spa_audio_format fmt = SampleFormatByName(opts_.format)->spa;  // checked by ParseCaptureOptions
    if (fmt == SPA_AUDIO_FORMAT_UNKNOWN) {
      ThrowInvalid(env, kClassName, "unsupported sample format " + opts_.format);
    }
    Start(info, "qdb-pw-capture");
    try {
      client_.Open(env, kAudioLoop, opts_.remote, &PwCapture::OnCoreError, this);
    } catch (...) {
      Teardown();  // releases the ThreadSafeFunction and the cleanup hook
      throw;
    }

    std::string latency = std::to_string(opts_.latency_frames) + "/" + std::to_string(opts_.rate);
    // Identity and target (node.name, media.role, target.object, node.dont-reconnect...) come
    // from TypeScript (src/stream-identity.ts micIdentity); the period is ours.
    pw_properties* props = pw_properties_new(PW_KEY_NODE_LATENCY, latency.c_str(), nullptr);
    for (const auto& kv : opts_.props)
      pw_properties_set(props, kv.first.c_str(), kv.second.c_str());
    stream_ = pw_stream_new(client_.core(), opts_.stream_name.c_str(), props);
    if (!stream_) {
      int err = errno;
      client_.Unlock();
      Teardown();
      ThrowErrno(env, err, "pw_stream_new");
    }
    static const pw_stream_events stream_events = [] {
      pw_stream_events e{};
      e.version = PW_VERSION_STREAM_EVENTS;
      e.state_changed = &PwCapture::OnStateChanged;
      e.process = &PwCapture::OnProcess;
      return e;
    }();
    pw_stream_add_listener(stream_, &stream_listener_, &stream_events, this);

    uint8_t pod_buf[1024];
    spa_pod_builder b = SPA_POD_BUILDER_INIT(pod_buf, sizeof(pod_buf));
    spa_audio_info_raw raw{};
    raw.format = fmt;
    raw.rate = opts_.rate;
    raw.channels = opts_.channels;
    if (!opts_.positions.empty()) {
      for (uint32_t c = 0; c < opts_.channels; c++)
        raw.position[c] = ChannelByName(opts_.positions[c])->spa;
    } else {
      raw.flags = SPA_AUDIO_FLAG_UNPOSITIONED;
    }
    const spa_pod* params[1] = {spa_format_audio_raw_build(&b, SPA_PARAM_EnumFormat, &raw)};
    int res = pw_stream_connect(
        stream_, PW_DIRECTION_INPUT, PW_ID_ANY,
        static_cast<pw_stream_flags>(PW_STREAM_FLAG_AUTOCONNECT | PW_STREAM_FLAG_MAP_BUFFERS |
                                     PW_STREAM_FLAG_RT_PROCESS),
        params, 1);
    client_.Unlock();
    if (res < 0) {
      Teardown();
      ThrowErrno(env, -res, "pw_stream_connect(capture)");
    }
  }

  ~PwCapture() override { Teardown(); }

 private:
  friend class CaptureBase<PwCapture>;

  // RT data thread: copy the chunk into the ring and give the buffer back. Nothing else.
  static void OnProcess(void* data) {
    auto* self = static_cast<PwCapture*>(data);
    pw_buffer* b = pw_stream_dequeue_buffer(self->stream_);
    if (!b) return;
    spa_data& d = b->buffer->datas[0];
    if (d.data && d.chunk) {
      uint32_t offset = SPA_MIN(d.chunk->offset, d.maxsize);
      uint32_t size = SPA_MIN(d.chunk->size, d.maxsize - offset);
      if (size) self->ring_.Produce(static_cast<const uint8_t*>(d.data) + offset, size);
    }
    pw_stream_queue_buffer(self->stream_, b);
  }

  // Thread-loop thread (not RT).
  static void OnStateChanged(void* data, pw_stream_state old, pw_stream_state state,
                             const char* error) {
    auto* self = static_cast<PwCapture*>(data);
    const char* name = "connecting";
    switch (state) {
      case PW_STREAM_STATE_ERROR:
        name = "error";
        break;
      case PW_STREAM_STATE_UNCONNECTED:
        name = "closed";
        break;
      case PW_STREAM_STATE_CONNECTING:
        name = "connecting";
        break;
      case PW_STREAM_STATE_PAUSED:
        name = "paused";
        break;
      case PW_STREAM_STATE_STREAMING:
        name = "streaming";
        break;
    }
    if (state == PW_STREAM_STATE_UNCONNECTED && old != PW_STREAM_STATE_UNCONNECTED) {
      // We never disconnect with the listener attached (Teardown removes it first), so this is
      // the session manager dropping the stream, e.g. WirePlumber when target.object does not
      // exist and node.dont-reconnect is set. Report it as the error it is.
      std::string msg = "PipeWire disconnected the capture stream";
      const std::string target = PropOr(self->opts_.props, PW_KEY_TARGET_OBJECT, "");
      if (!target.empty())
        msg += " (does the source '" + target + "' exist? see: qemu-dbus-bridge devices)";
      self->events_.Post("error", msg);
      return;
    }
    self->events_.Post(name, error ? error : "");
  }

  static void OnCoreError(void* data, uint32_t id, int res, const char* message) {
    auto* self = static_cast<PwCapture*>(data);
    // id 0 is the core itself: the connection to the daemon is gone (EPIPE) or refused. Another
    // id may be the speaker's object (the audio streams share one connection, pw_client.h); an
    // error on our own stream's object also ends it, and that comes through OnStateChanged.
    if (id != PW_ID_CORE) return;
    std::string msg = std::string("PipeWire error on object ") + std::to_string(id) + ": " +
                      (message ? message : "") + " (" + spa_strerror(res) + ")";
    self->events_.Post("error", msg);
  }

  // ---- main thread: CaptureBase hooks ----------------------------------------------------
  void AddServerStats(Napi::Object o) {
    if (stream_) {
      client_.Lock();
      o.Set("nodeId", static_cast<double>(pw_stream_get_node_id(stream_)));
      o.Set("state", pw_stream_state_as_string(pw_stream_get_state(stream_, nullptr)));
      client_.Unlock();
    } else {
      o.Set("state", "closed");
    }
  }

  void CloseServer() {
    client_.Close([this] {
      if (stream_) {
        spa_hook_remove(&stream_listener_);
        pw_stream_destroy(stream_);  // must hold the loop lock (lab gotcha)
        stream_ = nullptr;
      }
    });
  }

  PwClient client_;
  pw_stream* stream_ = nullptr;
  spa_hook stream_listener_{};
};

void InitPwCapture(Napi::Env env, Napi::Object exports) {
  exports.Set("PwCapture", PwCapture::Define(env));
}

}  // namespace qdb
