// Module init of the libvirt addon (build/Release/qemu_dbus_bridge_libvirt.node): libvirt.cc
// alone, so that only a bridge of a libvirt domain loads libvirt (see addon.cc).
#include "addon.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  qdb::InitLibvirt(env, exports);
  return exports;
}

NODE_API_MODULE(qemu_dbus_bridge_libvirt, Init)
