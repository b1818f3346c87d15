// Module init of every addon. binding.gyp builds this file once per addon with one QDB_ADDON_*
// defined, and each addon links only its own concern's library, so a bridge maps only the
// libraries its configuration uses (src/native.ts loads each addon the first time one of its
// exports is read):
//
//   qemu_dbus_bridge           socketpair, setCloexec, sdNotify, the PCM transforms (libc only;
//                              every bridge)
//   qemu_dbus_bridge_pipewire  PipeWire speaker, microphone and camera node (libpipewire)
//   qemu_dbus_bridge_pulse     PulseAudio speaker and microphone (libpulse and its chain:
//                              libsndfile with its codecs, libX11/xcb, libsystemd, libgcrypt...)
//   qemu_dbus_bridge_video     libyuv conversion and the v4l2loopback ioctls (libyuv)
//   qemu_dbus_bridge_evdev     evdev devices (libevdev)
//   qemu_dbus_bridge_libvirt   one libvirt connection (libvirt.so: GnuTLS, GLib, libxml2, ...)
//
// One addon with everything cost an audio-only PipeWire bridge the pages of libpulse's chain,
// libyuv and libevdev (and libvirt's ~11 MB) whether it used them or not.
#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#if defined(QDB_ADDON_CORE)
  qdb::InitSocketpair(env, exports);
  qdb::InitFdFlags(env, exports);
  qdb::InitNotify(env, exports);
  qdb::InitPcm(env, exports);
#elif defined(QDB_ADDON_PIPEWIRE)
  qdb::InitPwAudio(env, exports);
  qdb::InitPwCapture(env, exports);
  qdb::InitPwVideo(env, exports);
#elif defined(QDB_ADDON_PULSE)
  qdb::InitPulseAudio(env, exports);
  qdb::InitPulseCapture(env, exports);
#elif defined(QDB_ADDON_VIDEO)
  qdb::InitYuv(env, exports);
  qdb::InitV4l2(env, exports);
#elif defined(QDB_ADDON_EVDEV)
  qdb::InitEvdev(env, exports);
#elif defined(QDB_ADDON_LIBVIRT)
  qdb::InitLibvirt(env, exports);
#else
#error "binding.gyp builds addon.cc with one QDB_ADDON_* defined"
#endif
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
