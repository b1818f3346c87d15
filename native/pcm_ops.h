// The PCM transforms of both directions, written once: the sign-bit flip between a format and its
// signed/unsigned twin, the guest's volume (SetVolume) applied to the samples, the format's
// silence and the test for it. src/audio/format.ts says why the guest's volume is applied to the
// PCM on our side (not by the sound server) and which formats need the flip; the speaker's Writes
// run these in speaker_core.h (on the JS thread or the intake thread), the microphone's blocks
// through pcmApply() (speaker_core.h) from src/audio/in/voice.ts.
//
// Pure functions over a byte range: no allocation, no lock, no syscall.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_PCM_OPS_H_
#define QEMU_DBUS_BRIDGE_NATIVE_PCM_OPS_H_

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <string>

namespace qdb {

// How the bytes of one sample format are laid out (format.ts SampleLayout).
struct PcmLayout {
  uint32_t bytes = 1;  // per sample: 1, 2 or 4
  bool big_endian = false;
  bool is_float = false;
  bool is_signed = true;
  uint32_t channels = 1;
  uint32_t frame() const { return bytes * channels; }
  // Index (within a sample) of the byte that holds the sign / most significant bit.
  uint32_t msb() const { return big_endian ? 0 : bytes - 1; }
};

// The layout of a native format name ("S16LE", "U8", "F32BE"...) with `channels` channels; false
// for a name that is none of them.
inline bool PcmLayoutOf(const std::string& name, uint32_t channels, PcmLayout* out) {
  if (name.empty() || channels == 0) return false;
  PcmLayout l;
  char kind = name[0];
  if (kind != 'S' && kind != 'U' && kind != 'F') return false;
  l.is_float = kind == 'F';
  l.is_signed = kind != 'U';
  std::string rest = name.substr(1);
  if (rest == "8") {
    if (l.is_float) return false;
    l.bytes = 1;
  } else if (rest == "16LE" || rest == "16BE" || rest == "32LE" || rest == "32BE") {
    l.bytes = rest[0] == '1' ? 2 : 4;
    if (l.is_float && l.bytes != 4) return false;
    l.big_endian = rest[2] == 'B';
  } else {
    return false;
  }
  l.channels = channels;
  *out = l;
  return true;
}

// Flips the top bit of every sample in buf[0, n): S8<->U8, S16<->U16, S32<->U32.
inline void FlipSignBits(const PcmLayout& l, uint8_t* buf, size_t n) {
  for (size_t i = l.msb(); i < n; i += l.bytes) buf[i] ^= 0x80;
}

// Fills buf[0, n) with the format's silence: 0 for signed and float, the mid value for unsigned.
inline void FillSilence(const PcmLayout& l, uint8_t* buf, size_t n) {
  memset(buf, 0, n);
  if (l.is_float || l.is_signed) return;
  for (size_t i = l.msb(); i < n; i += l.bytes) buf[i] = 0x80;
}

// Whether buf[0, n) is exactly the format's silence (what FillSilence writes).
inline bool IsSilence(const PcmLayout& l, const uint8_t* buf, size_t n) {
  if (l.is_float || l.is_signed) {
    for (size_t i = 0; i < n; i++)
      if (buf[i]) return false;
    return true;
  }
  const uint32_t msb = l.msb();
  for (size_t i = 0; i < n; i++)
    if (buf[i] != ((i % l.bytes) == msb ? 0x80 : 0)) return false;
  return true;
}

namespace pcm_detail {
inline uint32_t Load(const uint8_t* p, uint32_t bytes, bool be) {
  uint32_t v = 0;
  for (uint32_t k = 0; k < bytes; k++)
    v |= uint32_t(p[be ? k : bytes - 1 - k]) << (8 * (bytes - 1 - k));
  return v;
}
inline void Store(uint8_t* p, uint32_t v, uint32_t bytes, bool be) {
  for (uint32_t k = 0; k < bytes; k++)
    p[be ? k : bytes - 1 - k] = uint8_t(v >> (8 * (bytes - 1 - k)));
}
}  // namespace pcm_detail

// Scales the samples of buf[0, n) (whole frames) by gains[channel] (each 0..1). Unsigned samples
// are scaled around their mid value, so silence stays silence; integers are rounded half up (as
// JavaScript's Math.round did when this was TypeScript) and cannot overflow (gains <= 1).
inline void ApplyGains(const PcmLayout& l, uint8_t* buf, size_t n, const double* gains) {
  const uint32_t bps = l.bytes;
  const uint32_t ch = l.channels;
  uint32_t c = 0;
  for (size_t i = 0; i + bps <= n; i += bps) {
    const double g = gains[c];
    if (++c == ch) c = 0;
    if (g == 1) continue;
    uint8_t* p = buf + i;
    if (l.is_float) {
      uint32_t bits = pcm_detail::Load(p, 4, l.big_endian);
      float f;
      memcpy(&f, &bits, 4);
      f = float(double(f) * g);
      memcpy(&bits, &f, 4);
      pcm_detail::Store(p, bits, 4, l.big_endian);
      continue;
    }
    const uint32_t raw = pcm_detail::Load(p, bps, l.big_endian);
    const uint32_t shift = 32 - 8 * bps;
    // The sample as a signed value: sign-extended, or (unsigned) minus the mid value.
    int64_t v = l.is_signed ? int64_t(int32_t(raw << shift) >> shift)
                            : int64_t(raw) - (int64_t(1) << (8 * bps - 1));
    int64_t scaled = int64_t(floor(double(v) * g + 0.5));
    uint32_t out =
        l.is_signed ? uint32_t(scaled) : uint32_t(scaled + (int64_t(1) << (8 * bps - 1)));
    pcm_detail::Store(p, out, bps, l.big_endian);
  }
}

// The guest's volume on buf[0, n) (whole frames): silence when muted, else ApplyGains. `unity`:
// every gain is 1 (nothing to do).
inline void ApplyVolume(const PcmLayout& l, uint8_t* buf, size_t n, bool mute, const double* gains,
                        bool unity) {
  if (mute)
    FillSilence(l, buf, n);
  else if (!unity)
    ApplyGains(l, buf, n, gains);
}

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_PCM_OPS_H_
