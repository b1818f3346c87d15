// The PCM transforms for JavaScript (src/audio/format.ts: the microphone's blocks and their
// padding): native/pcm_ops.h, the one implementation the speaker's Writes also run through
// (speaker_core.h). In the core addon: pure arithmetic, no library, and every bridge loads it.
//
//   pcmFlipSign(buf, start, end, layout)       flips the top bit of every sample
//   pcmFillSilence(buf, start, end, layout)    the format's silence
//   pcmIsSilence(buf, start, end, layout)      whether it is exactly that silence
//   pcmApplyGains(buf, start, end, layout, gains[])  each sample by gains[channel] (0..1)
// layout: {bytesPerSample: 1|2|4, bigEndian, isFloat, isSigned, channels} (format.ts SampleLayout).
#include "addon.h"
#include "js_args.h"
#include "pcm_ops.h"

namespace qdb {
namespace {

struct Range {
  uint8_t* p;
  size_t n;
};

// buf[start, end), checked against the buffer (a bad range is the caller's bug: EINVAL).
Range ArgRange(const Napi::CallbackInfo& info, const char* who) {
  Napi::Uint8Array buf = ArgBytes(Arg(info, 0), who, "buf");
  const size_t len = buf.ByteLength();
  const size_t start = size_t(ArgInteger(Arg(info, 1), who, "start", 0, int64_t(len)));
  const size_t end = size_t(ArgInteger(Arg(info, 2), who, "end", 0, int64_t(len)));
  return {buf.Data() + start, end > start ? end - start : 0};
}

PcmLayout ArgLayout(const Napi::CallbackInfo& info, const char* who) {
  Napi::Object o = ArgObject(Arg(info, 3), who, "layout");
  PcmLayout l;
  l.bytes = OptUint32(o, "bytesPerSample", who, 1, 4);
  if (l.bytes == 3) ThrowInvalid(info.Env(), who, "bytesPerSample must be 1, 2 or 4");
  l.big_endian = ArgBool(o.Get("bigEndian"), who, OptName("bigEndian"));
  l.is_float = ArgBool(o.Get("isFloat"), who, OptName("isFloat"));
  l.is_signed = ArgBool(o.Get("isSigned"), who, OptName("isSigned"));
  l.channels = OptUint32(o, "channels", who, 1, 64);
  if (l.is_float && l.bytes != 4) ThrowInvalid(info.Env(), who, "float samples are 4 bytes");
  return l;
}

Napi::Value FlipSign(const Napi::CallbackInfo& info) {
  Range r = ArgRange(info, "pcmFlipSign");
  FlipSignBits(ArgLayout(info, "pcmFlipSign"), r.p, r.n);
  return info.Env().Undefined();
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  Range r = ArgRange(info, "pcmFillSilence");
  FillSilence(ArgLayout(info, "pcmFillSilence"), r.p, r.n);
  return info.Env().Undefined();
}

Napi::Value Silent(const Napi::CallbackInfo& info) {
  Range r = ArgRange(info, "pcmIsSilence");
  return Napi::Boolean::New(info.Env(), IsSilence(ArgLayout(info, "pcmIsSilence"), r.p, r.n));
}

Napi::Value Gains(const Napi::CallbackInfo& info) {
  static const char* who = "pcmApplyGains";
  Range r = ArgRange(info, who);
  PcmLayout l = ArgLayout(info, who);
  Napi::Array a = ArgArray(Arg(info, 4), who, "gains");
  double gains[64];
  // A channel without a gain is at full scale (format.ts: gains[c] ?? 1).
  for (uint32_t c = 0; c < l.channels; c++) {
    gains[c] = 1;
    if (c < a.Length()) {
      gains[c] = ArgDouble(a.Get(c), who, "gain");
      if (!(gains[c] >= 0 && gains[c] <= 1))
        ThrowInvalid(info.Env(), who, "gains must be within 0..1");
    }
  }
  ApplyGains(l, r.p, r.n, gains);
  return info.Env().Undefined();
}

}  // namespace

void InitPcm(Napi::Env env, Napi::Object exports) {
  exports.Set("pcmFlipSign", Napi::Function::New(env, FlipSign, "pcmFlipSign"));
  exports.Set("pcmFillSilence", Napi::Function::New(env, Fill, "pcmFillSilence"));
  exports.Set("pcmIsSilence", Napi::Function::New(env, Silent, "pcmIsSilence"));
  exports.Set("pcmApplyGains", Napi::Function::New(env, Gains, "pcmApplyGains"));
}

}  // namespace qdb
