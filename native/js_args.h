// The ONE reader of JavaScript arguments and option objects for every function and class of the
// addon (audio, capture, camera, YUV, V4L2, evdev, libvirt, notify). TypeScript validates and
// decides policy; these checks only keep garbage from crashing the process or wrapping around
// (a negative width read as 4 294 967 295).
//
// Every rejection throws through ThrowWithCode with code EINVAL ("the caller passed something
// this function cannot take"): one code for one cause, so TypeScript never needs the message
// or the JS error class to tell it apart from a server error (EPIPEWIRE, EPULSE, errno names).
// `who` prefixes the message with the function or class, e.g. "PwCapture: option rate ...".
// Header-only so that binding.gyp (a shared file) needs no new source entry.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_JS_ARGS_H_
#define QEMU_DBUS_BRIDGE_NATIVE_JS_ARGS_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"

namespace qdb {

[[noreturn]] inline void ThrowInvalid(Napi::Env env, const std::string& who,
                                      const std::string& what) {
  ThrowWithCode(env, "EINVAL", who + ": " + what);
}

// A number that is an integer in [min, max] (doubles are checked before any cast: a cast of an
// out-of-range double is undefined behaviour).
inline int64_t ArgInteger(const Napi::Value& v, const std::string& who, const std::string& what,
                          int64_t min, int64_t max) {
  if (!v.IsNumber()) ThrowInvalid(v.Env(), who, what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) ||
      d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowInvalid(
        v.Env(), who,
        what + " must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int64_t>(d);
}

inline uint32_t ArgUint32(const Napi::Value& v, const std::string& who, const std::string& what,
                          uint32_t min = 0, uint32_t max = UINT32_MAX) {
  return static_cast<uint32_t>(ArgInteger(v, who, what, min, max));
}

inline int32_t ArgInt32(const Napi::Value& v, const std::string& who, const std::string& what,
                        int32_t min = INT32_MIN, int32_t max = INT32_MAX) {
  return static_cast<int32_t>(ArgInteger(v, who, what, min, max));
}

// Any finite number (ratios, gains).
inline double ArgDouble(const Napi::Value& v, const std::string& who, const std::string& what) {
  if (!v.IsNumber()) ThrowInvalid(v.Env(), who, what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) ThrowInvalid(v.Env(), who, what + " must be finite");
  return d;
}

inline std::string ArgString(const Napi::Value& v, const std::string& who,
                             const std::string& what) {
  if (!v.IsString()) ThrowInvalid(v.Env(), who, what + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline bool ArgBool(const Napi::Value& v, const std::string& who, const std::string& what) {
  if (!v.IsBoolean()) ThrowInvalid(v.Env(), who, what + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline Napi::Uint8Array ArgBytes(const Napi::Value& v, const std::string& who,
                                 const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowInvalid(v.Env(), who, what + " must be a Uint8Array/Buffer");
  return v.As<Napi::Uint8Array>();
}

inline Napi::Object ArgObject(const Napi::Value& v, const std::string& who,
                              const std::string& what) {
  if (!v.IsObject() || v.IsArray()) ThrowInvalid(v.Env(), who, what + " must be an object");
  return v.As<Napi::Object>();
}

inline Napi::Function ArgFunction(const Napi::Value& v, const std::string& who,
                                  const std::string& what) {
  if (!v.IsFunction()) ThrowInvalid(v.Env(), who, what + " must be a function");
  return v.As<Napi::Function>();
}

// Arrays of `length` elements (length < 0: any length).
inline Napi::Array ArgArray(const Napi::Value& v, const std::string& who, const std::string& what,
                            int64_t length = -1) {
  if (!v.IsArray()) ThrowInvalid(v.Env(), who, what + " must be an array");
  Napi::Array a = v.As<Napi::Array>();
  if (length >= 0 && a.Length() != static_cast<uint32_t>(length))
    ThrowInvalid(v.Env(), who, what + " must have " + std::to_string(length) + " elements");
  return a;
}

// The `info[i]` of a call, undefined when the caller passed fewer arguments.
inline Napi::Value Arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() ? info[i] : info.Env().Undefined();
}

// ---- option objects: `o.key`, named "option key" in errors --------------------------------

inline std::string OptName(const char* key) { return std::string("option ") + key; }

// Required string.
inline std::string OptString(const Napi::Object& o, const char* key, const std::string& who) {
  return ArgString(o.Get(key), who, OptName(key));
}

// Optional string: `fallback` when the key is absent (undefined), an error when it is not a string.
inline std::string OptStringOr(const Napi::Object& o, const char* key, const std::string& who,
                               const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  return ArgString(v, who, OptName(key));
}

inline uint32_t OptUint32(const Napi::Object& o, const char* key, const std::string& who,
                          uint32_t min = 0, uint32_t max = UINT32_MAX) {
  return ArgUint32(o.Get(key), who, OptName(key), min, max);
}

// A {key: string} map, in JavaScript property order (stream properties built by TypeScript).
inline std::vector<std::pair<std::string, std::string>> OptStringMap(const Napi::Object& o,
                                                                     const char* key,
                                                                     const std::string& who) {
  Napi::Object m = ArgObject(o.Get(key), who, OptName(key));
  std::vector<std::pair<std::string, std::string>> out;
  Napi::Array keys = m.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).ToString().Utf8Value();
    out.emplace_back(k, ArgString(m.Get(k), who, OptName(key) + "." + k));
  }
  return out;
}

// One string per element (channel positions, offered formats).
inline std::vector<std::string> OptStrings(const Napi::Object& o, const char* key,
                                           const std::string& who, int64_t length = -1) {
  Napi::Array a = ArgArray(o.Get(key), who, OptName(key), length);
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++)
    out.push_back(ArgString(a.Get(i), who, OptName(key) + "[" + std::to_string(i) + "]"));
  return out;
}

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_JS_ARGS_H_
