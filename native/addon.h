// Shared declarations for the qemu-dbus-bridge addon. Each concern lives in its own .cc file
// and registers its functions/classes on `exports` through one Init* function.
//
// Exception policy: NAPI_CPP_EXCEPTIONS. Native code throws only Napi::Error with a `code`
// property (ThrowWithCode, ThrowErrno, js_args.h), never a bare TypeError/RangeError: the
// TypeScript side tells causes apart by code (src/native-errors.ts), never by message or class.
// Real-time threads (PipeWire/PulseAudio callbacks) never throw and never touch N-API.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_ADDON_H_
#define QEMU_DBUS_BRIDGE_NATIVE_ADDON_H_

#include <napi.h>

#include <string>

namespace qdb {

// Throws a JavaScript Error whose `code` property is `code` (e.g. "ENOENT", "EPIPEWIRE").
[[noreturn]] void ThrowWithCode(Napi::Env env, const std::string& code, const std::string& message);

// Throws an Error built from errno: code = "E…" name, message = what + strerror.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& what);

// Arguments and option objects from TypeScript are read through js_args.h (one reader, every
// rejection coded EINVAL).

void InitSocketpair(Napi::Env env, Napi::Object exports);
void InitFdFlags(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
void InitPcm(Napi::Env env, Napi::Object exports);
void InitPwAudio(Napi::Env env, Napi::Object exports);
void InitPulseAudio(Napi::Env env, Napi::Object exports);
void InitPwCapture(Napi::Env env, Napi::Object exports);
void InitPulseCapture(Napi::Env env, Napi::Object exports);
void InitPwVideo(Napi::Env env, Napi::Object exports);
void InitYuv(Napi::Env env, Napi::Object exports);
void InitV4l2(Napi::Env env, Napi::Object exports);
void InitEvdev(Napi::Env env, Napi::Object exports);
void InitLibvirt(Napi::Env env, Napi::Object exports);

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_ADDON_H_
