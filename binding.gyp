{
  "variables": {
    "qdb_asan%": "<!(node -p \"process.env.QDB_ASAN === '1' ? 1 : 0\")"
  },
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"],
    "ldflags": ["-Wl,-z,relro", "-Wl,-z,now", "-Wl,--as-needed"],
    "conditions": [
      ["qdb_asan==1", {
        "cflags_cc": ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"],
        "ldflags": ["-fsanitize=address"]
      }]
    ]
  },
  "targets": [
    {
      "target_name": "qemu_dbus_bridge",
      "defines": ["QDB_ADDON_CORE"],
      "sources": ["native/addon.cc", "native/throw.cc", "native/socketpair.cc", "native/fd_flags.cc", "native/notify.cc", "native/pcm.cc"]
    },
    {
      "target_name": "qemu_dbus_bridge_pipewire",
      "defines": ["QDB_ADDON_PIPEWIRE"],
      "sources": ["native/addon.cc", "native/throw.cc", "native/pw_client.cc", "native/pw_audio.cc", "native/pw_capture.cc", "native/pw_video.cc"],
      "cflags_cc": ["<!@(node native/pkgconfig.js --cflags --only libpipewire-0.3)", "<!@(node native/pkgconfig.js --cflags --only libpulse)"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --only libpipewire-0.3)"]
    },
    {
      "target_name": "qemu_dbus_bridge_pulse",
      "defines": ["QDB_ADDON_PULSE"],
      "sources": ["native/addon.cc", "native/throw.cc", "native/pulse_client.cc", "native/pulse_audio.cc", "native/pulse_capture.cc"],
      "cflags_cc": ["<!@(node native/pkgconfig.js --cflags --only libpulse)", "<!@(node native/pkgconfig.js --cflags --only libpipewire-0.3)"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --only libpulse)"]
    },
    {
      "target_name": "qemu_dbus_bridge_video",
      "defines": ["QDB_ADDON_VIDEO"],
      "sources": ["native/addon.cc", "native/throw.cc", "native/yuv.cc", "native/v4l2.cc"],
      "cflags_cc": ["<!@(node native/pkgconfig.js --cflags --only libyuv)"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --only libyuv)"]
    },
    {
      "target_name": "qemu_dbus_bridge_evdev",
      "defines": ["QDB_ADDON_EVDEV"],
      "sources": ["native/addon.cc", "native/throw.cc", "native/evdev.cc"],
      "cflags_cc": ["<!@(node native/pkgconfig.js --cflags --only libevdev)"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --only libevdev)"]
    },
    {
      "target_name": "qemu_dbus_bridge_libvirt",
      "defines": ["QDB_ADDON_LIBVIRT"],
      "sources": ["native/addon.cc", "native/throw.cc", "native/libvirt.cc"],
      "cflags_cc": ["<!@(node native/pkgconfig.js --cflags --only libvirt)"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --only libvirt)"]
    }
  ]
}
