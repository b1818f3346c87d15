// Sample-format and channel-position names shared by playback and capture. TypeScript
// (src/audio/format.ts) decides formats and channel layouts and passes them by these names; this
// header is the one place that maps a name to PipeWire's or PulseAudio's enum.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_PCM_NAMES_H_
#define QEMU_DBUS_BRIDGE_NATIVE_PCM_NAMES_H_

#include <pulse/channelmap.h>
#include <pulse/sample.h>
#include <spa/param/audio/raw.h>

#include <cstdint>
#include <string>

namespace qdb {

struct SampleFormatName {
  const char* name;
  spa_audio_format spa;      // PipeWire converts every one of these in the graph
  pa_sample_format_t pulse;  // PA_SAMPLE_INVALID: PulseAudio has no such format (TS converts)
  uint32_t bytes;
};

// QEMU's AudioFormat set in either endianness.
inline const SampleFormatName* SampleFormatByName(const std::string& name) {
  static const SampleFormatName kFormats[] = {
      {"U8", SPA_AUDIO_FORMAT_U8, PA_SAMPLE_U8, 1},
      {"S8", SPA_AUDIO_FORMAT_S8, PA_SAMPLE_INVALID, 1},
      {"S16LE", SPA_AUDIO_FORMAT_S16_LE, PA_SAMPLE_S16LE, 2},
      {"S16BE", SPA_AUDIO_FORMAT_S16_BE, PA_SAMPLE_S16BE, 2},
      {"U16LE", SPA_AUDIO_FORMAT_U16_LE, PA_SAMPLE_INVALID, 2},
      {"U16BE", SPA_AUDIO_FORMAT_U16_BE, PA_SAMPLE_INVALID, 2},
      {"S32LE", SPA_AUDIO_FORMAT_S32_LE, PA_SAMPLE_S32LE, 4},
      {"S32BE", SPA_AUDIO_FORMAT_S32_BE, PA_SAMPLE_S32BE, 4},
      {"U32LE", SPA_AUDIO_FORMAT_U32_LE, PA_SAMPLE_INVALID, 4},
      {"U32BE", SPA_AUDIO_FORMAT_U32_BE, PA_SAMPLE_INVALID, 4},
      {"F32LE", SPA_AUDIO_FORMAT_F32_LE, PA_SAMPLE_FLOAT32LE, 4},
      {"F32BE", SPA_AUDIO_FORMAT_F32_BE, PA_SAMPLE_FLOAT32BE, 4},
  };
  for (const auto& f : kFormats)
    if (name == f.name) return &f;
  return nullptr;
}

struct ChannelName {
  const char* name;
  spa_audio_channel spa;
  pa_channel_position_t pulse;
};

// The positions src/audio/format.ts CHANNEL_LAYOUTS uses (WAVE order names).
inline const ChannelName* ChannelByName(const std::string& name) {
  static const ChannelName kChannels[] = {
      {"MONO", SPA_AUDIO_CHANNEL_MONO, PA_CHANNEL_POSITION_MONO},
      {"FL", SPA_AUDIO_CHANNEL_FL, PA_CHANNEL_POSITION_FRONT_LEFT},
      {"FR", SPA_AUDIO_CHANNEL_FR, PA_CHANNEL_POSITION_FRONT_RIGHT},
      {"FC", SPA_AUDIO_CHANNEL_FC, PA_CHANNEL_POSITION_FRONT_CENTER},
      {"LFE", SPA_AUDIO_CHANNEL_LFE, PA_CHANNEL_POSITION_LFE},
      {"RL", SPA_AUDIO_CHANNEL_RL, PA_CHANNEL_POSITION_REAR_LEFT},
      {"RR", SPA_AUDIO_CHANNEL_RR, PA_CHANNEL_POSITION_REAR_RIGHT},
      {"RC", SPA_AUDIO_CHANNEL_RC, PA_CHANNEL_POSITION_REAR_CENTER},
      {"SL", SPA_AUDIO_CHANNEL_SL, PA_CHANNEL_POSITION_SIDE_LEFT},
      {"SR", SPA_AUDIO_CHANNEL_SR, PA_CHANNEL_POSITION_SIDE_RIGHT},
      {"FLC", SPA_AUDIO_CHANNEL_FLC, PA_CHANNEL_POSITION_FRONT_LEFT_OF_CENTER},
      {"FRC", SPA_AUDIO_CHANNEL_FRC, PA_CHANNEL_POSITION_FRONT_RIGHT_OF_CENTER},
  };
  for (const auto& c : kChannels)
    if (name == c.name) return &c;
  return nullptr;
}

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_PCM_NAMES_H_
