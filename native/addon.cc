// Module init of the main addon (build/Release/qemu_dbus_bridge.node). libvirt is not in it: it
// is its own addon (libvirt_addon.cc, qemu_dbus_bridge_libvirt.node), loaded only for --libvirt,
// because libvirt.so and the libraries it pulls in (GnuTLS, GLib, libxml2, Kerberos, ...) cost
// every bridge about 11 MB of resident memory at load whether it uses libvirt or not.
#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  qdb::InitSocketpair(env, exports);
  qdb::InitFdFlags(env, exports);
  qdb::InitNotify(env, exports);
  qdb::InitPwAudio(env, exports);
  qdb::InitPulseAudio(env, exports);
  qdb::InitPwCapture(env, exports);
  qdb::InitPulseCapture(env, exports);
  qdb::InitPwVideo(env, exports);
  qdb::InitYuv(env, exports);
  qdb::InitV4l2(env, exports);
  qdb::InitEvdev(env, exports);
  return exports;
}

NODE_API_MODULE(qemu_dbus_bridge, Init)
