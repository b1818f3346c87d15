{
  "targets": [
    {
      "target_name": "qemu_dbus_bridge",
      "sources": [
        "native/addon.cc",
        "native/throw.cc",
        "native/socketpair.cc",
        "native/fd_flags.cc",
        "native/notify.cc",
        "native/pw_audio.cc",
        "native/pw_client.cc",
        "native/pulse_audio.cc",
        "native/pulse_client.cc",
        "native/pw_capture.cc",
        "native/pulse_capture.cc",
        "native/pw_video.cc",
        "native/yuv.cc",
        "native/v4l2.cc",
        "native/evdev.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "<!@(node native/pkgconfig.js --cflags --without libvirt)"],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --without libvirt)"]
    },
    {
      "target_name": "qemu_dbus_bridge_libvirt",
      "sources": ["native/libvirt_addon.cc", "native/throw.cc", "native/libvirt.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter", "-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "<!@(node native/pkgconfig.js --cflags --only libvirt)"],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now"],
      "libraries": ["<!@(node native/pkgconfig.js --libs --only libvirt)"]
    }
  ]
}
