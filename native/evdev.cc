// libevdev devices: open, describe, grab, LED writes and event reads.
//
// Why native does the reads (and not TypeScript with fs.read on the fd, as we do elsewhere):
// SYN_DROPPED recovery needs libevdev's copy of the device state (it re-reads key/LED/abs state
// with EVIOCGKEY etc. and synthesises the missing deltas). That only works when libevdev itself
// reads the fd. Readiness comes from a uv_poll_t on Node's own loop, so there is no thread and the
// callback already runs on the JS thread: it drains the device into a Float64Array that JS handed
// over once (4 doubles per event: type, code, value, time in microseconds) and calls JS once per
// filled batch. Nothing is allocated per event. Policy (what to forward, grab decisions, errors
// shown to users) lives in src/input/.
//
// Plain files and FIFOs (replay) never come here: libevdev_new_from_fd fails with ENOTTY on them
// and src/input/device.ts reads them as a plain event stream instead.
#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <linux/input.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include "addon.h"
#include "js_args.h"

namespace qdb {

namespace {

constexpr int kDoublesPerEvent = 4;

class EvdevDevice : public Napi::ObjectWrap<EvdevDevice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "EvdevDevice",
                       {
                           InstanceAccessor<&EvdevDevice::Fd>("fd"),
                           InstanceAccessor<&EvdevDevice::Writable>("writable"),
                           InstanceMethod<&EvdevDevice::Info>("info"),
                           InstanceMethod<&EvdevDevice::Grab>("grab"),
                           InstanceMethod<&EvdevDevice::SetLeds>("setLeds"),
                           InstanceMethod<&EvdevDevice::Leds>("leds"),
                           InstanceMethod<&EvdevDevice::KeysDown>("keysDown"),
                           InstanceMethod<&EvdevDevice::Start>("start"),
                           InstanceMethod<&EvdevDevice::Close>("close"),
                       });
  }

  // new EvdevDevice(path, batch: Float64Array, onEvents: (count, errorCode?) => void)
  explicit EvdevDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EvdevDevice>(info) {
    Napi::Env env = info.Env();
    static const std::string who = "EvdevDevice";
    path_ = ArgString(Arg(info, 0), who, "path");
    Napi::Value bv = Arg(info, 1);
    if (!bv.IsTypedArray() || bv.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      ThrowInvalid(env, who, "batch must be a Float64Array");
    Napi::Float64Array batch = bv.As<Napi::Float64Array>();
    capacity_ = batch.ElementLength() / kDoublesPerEvent;
    if (capacity_ == 0) ThrowInvalid(env, who, "batch must hold at least one event");
    on_events_ = Napi::Persistent(ArgFunction(Arg(info, 2), who, "onEvents"));
    batch_ref_ = Napi::Persistent(batch);

    // Read-write so that LED writes work; a node we may only read still forwards input.
    fd_ = open(path_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    writable_ = fd_ >= 0;
    if (fd_ < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
      fd_ = open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    }
    if (fd_ < 0) ThrowErrno(env, errno, "open(" + path_ + ")");
    int rc = libevdev_new_from_fd(fd_, &dev_);
    if (rc < 0) {
      close(fd_);
      fd_ = -1;
      ThrowErrno(env, -rc, "libevdev_new_from_fd(" + path_ + ")");
    }
  }

  ~EvdevDevice() override { Release(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value Writable(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), writable_);
  }

  void RequireOpen(Napi::Env env) {
    if (!dev_) ThrowWithCode(env, "ECLOSED", "evdev device " + path_ + " is closed");
  }

  static Napi::Value Str(Napi::Env env, const char* s) {
    return s ? Napi::String::New(env, s) : env.Null();
  }

  // { name, phys, uniq, bustype, vendor, product, version, driverVersion,
  //   events: { [type]: code[] }, abs: { [code]: [min, max, resolution] }, props: INPUT_PROP_*[] }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    Napi::Object out = Napi::Object::New(env);
    out.Set("name", Str(env, libevdev_get_name(dev_)));
    out.Set("phys", Str(env, libevdev_get_phys(dev_)));
    out.Set("uniq", Str(env, libevdev_get_uniq(dev_)));
    out.Set("bustype", libevdev_get_id_bustype(dev_));
    out.Set("vendor", libevdev_get_id_vendor(dev_));
    out.Set("product", libevdev_get_id_product(dev_));
    out.Set("version", libevdev_get_id_version(dev_));
    out.Set("driverVersion", libevdev_get_driver_version(dev_));
    Napi::Object events = Napi::Object::New(env);
    Napi::Object abs = Napi::Object::New(env);
    for (unsigned type = 0; type <= EV_MAX; type++) {
      if (!libevdev_has_event_type(dev_, type)) continue;
      Napi::Array codes = Napi::Array::New(env);
      int max = libevdev_event_type_get_max(type);
      uint32_t n = 0;
      for (int code = 0; max >= 0 && code <= max; code++) {
        if (!libevdev_has_event_code(dev_, type, code)) continue;
        codes.Set(n++, Napi::Number::New(env, code));
        if (type == EV_ABS) {
          const struct input_absinfo* ai = libevdev_get_abs_info(dev_, code);
          if (ai) {
            Napi::Array range = Napi::Array::New(env, 3);
            range.Set(0u, ai->minimum);
            range.Set(1u, ai->maximum);
            range.Set(2u, ai->resolution);
            abs.Set(Napi::Number::New(env, code), range);
          }
        }
      }
      events.Set(Napi::Number::New(env, type), codes);
    }
    out.Set("events", events);
    out.Set("abs", abs);
    // INPUT_PROP_DIRECT tells a touchscreen from a touchpad (both have ABS_MT_*).
    Napi::Array props = Napi::Array::New(env);
    uint32_t nprops = 0;
    for (unsigned prop = 0; prop <= INPUT_PROP_MAX; prop++)
      if (libevdev_has_property(dev_, prop)) props.Set(nprops++, Napi::Number::New(env, prop));
    out.Set("props", props);
    return out;
  }

  void Grab(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    bool on = info[0].ToBoolean();
    int rc = libevdev_grab(dev_, on ? LIBEVDEV_GRAB : LIBEVDEV_UNGRAB);
    if (rc < 0) ThrowErrno(env, -rc, std::string(on ? "EVIOCGRAB on " : "EVIOCGRAB off ") + path_);
  }

  // setLeds(num, caps, scroll): booleans; LEDs the device lacks are skipped by libevdev.
  void SetLeds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    auto v = [&](size_t i) {
      return info[i].ToBoolean().Value() ? LIBEVDEV_LED_ON : LIBEVDEV_LED_OFF;
    };
    int rc = libevdev_kernel_set_led_values(dev_, LED_NUML, v(0), LED_CAPSL, v(1), LED_SCROLLL,
                                            v(2), -1);
    if (rc < 0) ThrowErrno(env, -rc, "writing EV_LED to " + path_);
  }

  // leds(): [num, caps, scroll] as libevdev currently knows them (null where the device has none).
  Napi::Value Leds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    Napi::Array out = Napi::Array::New(env, 3);
    const unsigned codes[3] = {LED_NUML, LED_CAPSL, LED_SCROLLL};
    for (uint32_t i = 0; i < 3; i++) {
      if (libevdev_has_event_code(dev_, EV_LED, codes[i])) {
        out.Set(i, Napi::Boolean::New(env, libevdev_get_event_value(dev_, EV_LED, codes[i]) != 0));
      } else {
        out.Set(i, env.Null());
      }
    }
    return out;
  }

  // keysDown(): EV_KEY codes libevdev holds as down: its copy of the kernel state (EVIOCGKEY at
  // open, resynced after SYN_DROPPED) moved on by every event read so far. The grab waits until
  // this is empty, as QEMU's input-linux does, so the host sees the release of a key held when
  // forwarding starts.
  Napi::Value KeysDown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    Napi::Array out = Napi::Array::New(env);
    uint32_t n = 0;
    for (unsigned code = 0; code <= KEY_MAX; code++) {
      if (libevdev_has_event_code(dev_, EV_KEY, code) &&
          libevdev_get_event_value(dev_, EV_KEY, code) != 0) {
        out.Set(n++, Napi::Number::New(env, code));
      }
    }
    return out;
  }

  // start(): begin polling; events arrive through onEvents on the JS thread.
  void Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    if (poll_) return;
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) {
      ThrowWithCode(env, "ENATIVE", "no libuv loop available for evdev polling");
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc != 0) {
      delete poll_;
      poll_ = nullptr;
      ThrowWithCode(env, uv_err_name(rc),
                    std::string("uv_poll_init on ") + path_ + ": " + uv_strerror(rc));
    }
    poll_->data = this;
    env_ = env;
    // The poll handle keeps a reference so that JS cannot collect us while it is active.
    Ref();
    uv_poll_start(poll_, UV_READABLE | UV_DISCONNECT, OnPoll);
  }

  void Close(const Napi::CallbackInfo& info) { Release(); }

  void StopPolling() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    Unref();
  }

  void Release() {
    StopPolling();
    if (dev_) {
      libevdev_free(dev_);
      dev_ = nullptr;
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  // libuv calls this straight from the event loop, outside any JS call, so there is no V8 handle
  // scope open: every napi value Drain creates (batch_ref_.Value() first of all) needs one, or V8
  // aborts the process with "HandleScope::CreateHandle(): Cannot create a handle without a
  // HandleScope" on the first event. The Env is named first on purpose: written inline as
  // `Napi::HandleScope scope(Napi::Env(env_));` C++ parses a function declaration, not a scope.
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    EvdevDevice* self = static_cast<EvdevDevice*>(handle->data);
    Napi::Env env(self->env_);
    Napi::HandleScope scope(env);
    self->Drain(status);
  }

  // Called from the uv_poll callback, i.e. on the JS thread but outside any JS call: an exception
  // thrown by the JS handler must be handed to Node as uncaught, never escape into libuv.
  void Deliver(size_t count, const char* error) {
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    try {
      Napi::Value err = error ? Napi::String::New(env, error) : env.Undefined();
      on_events_.MakeCallback(Value(), {Napi::Number::New(env, static_cast<double>(count)), err});
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  // Reads until EAGAIN. On SYN_DROPPED, libevdev hands back the synthesised state deltas in SYNC
  // mode (ending with a SYN_REPORT); the SYN_DROPPED event itself is not passed on, so JS sees a
  // consistent stream of frames.
  void Drain(int status) {
    if (status < 0) {
      StopPolling();
      Deliver(0, uv_err_name(status));
      return;
    }
    double* out = batch_ref_.Value().Data();
    size_t n = 0;
    unsigned flags = LIBEVDEV_READ_FLAG_NORMAL;
    const char* error = nullptr;
    for (;;) {
      struct input_event ev;
      int rc = libevdev_next_event(dev_, flags, &ev);
      if (rc == LIBEVDEV_READ_STATUS_SYNC) {
        if (flags == LIBEVDEV_READ_FLAG_NORMAL) {
          flags = LIBEVDEV_READ_FLAG_SYNC;  // rc == SYNC with ev == SYN_DROPPED: start resync
          continue;
        }
      } else if (rc == -EAGAIN) {
        if (flags == LIBEVDEV_READ_FLAG_SYNC) {
          flags = LIBEVDEV_READ_FLAG_NORMAL;  // resync done, back to the live stream
          continue;
        }
        break;
      } else if (rc < 0) {
        const char* name = strerrorname_np(-rc);
        error = name ? name : "EIO";
        break;
      }
      double* slot = out + n * kDoublesPerEvent;
      slot[0] = ev.type;
      slot[1] = ev.code;
      slot[2] = ev.value;
      slot[3] =
          static_cast<double>(ev.input_event_sec) * 1e6 + static_cast<double>(ev.input_event_usec);
      if (++n == capacity_) {
        Deliver(n, nullptr);
        if (!dev_) return;  // JS closed us from the callback
        n = 0;
      }
    }
    if (error) StopPolling();  // ENODEV: unplugged; JS decides what to do next
    if (n > 0 || error) Deliver(n, error);
  }

  std::string path_;
  int fd_ = -1;
  bool writable_ = false;
  struct libevdev* dev_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  napi_env env_ = nullptr;
  Napi::Reference<Napi::Float64Array> batch_ref_;
  size_t capacity_ = 0;
  Napi::FunctionReference on_events_;
};

// evdevGrabFd(fd, on): the bare EVIOCGRAB ioctl on any fd. Lets TS (and tests) learn whether an
// fd is an evdev node at all: FIFOs and plain files answer ENOTTY.
Napi::Value GrabFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt32(Arg(info, 0), "evdevGrabFd", "fd");
  int on = ArgBool(Arg(info, 1), "evdevGrabFd", "on") ? 1 : 0;
  if (ioctl(fd, EVIOCGRAB, on) != 0) ThrowErrno(env, errno, "EVIOCGRAB");
  return env.Undefined();
}

// evdevEventLayout(): sizeof and field offsets of the kernel's struct input_event, so the TS codec
// is checked against the real header rather than against itself.
Napi::Value EventLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", static_cast<double>(sizeof(struct input_event)));
  out.Set("sec", static_cast<double>(offsetof(struct input_event, input_event_sec)));
  out.Set("usec", static_cast<double>(offsetof(struct input_event, input_event_usec)));
  out.Set("type", static_cast<double>(offsetof(struct input_event, type)));
  out.Set("code", static_cast<double>(offsetof(struct input_event, code)));
  out.Set("value", static_cast<double>(offsetof(struct input_event, value)));
  return out;
}

// evdevPackEvent(type, code, value, sec, usec): one struct input_event as the kernel lays it out.
Napi::Value PackEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const std::string who = "evdevPackEvent";
  struct input_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = static_cast<__u16>(ArgUint32(Arg(info, 0), who, "type", 0, 0xffff));
  ev.code = static_cast<__u16>(ArgUint32(Arg(info, 1), who, "code", 0, 0xffff));
  ev.value = ArgInt32(Arg(info, 2), who, "value");
  ev.input_event_sec = ArgInteger(Arg(info, 3), who, "sec", 0, INT64_C(1) << 52);
  ev.input_event_usec = ArgInteger(Arg(info, 4), who, "usec", 0, 999999);
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&ev), sizeof ev);
}

}  // namespace

void InitEvdev(Napi::Env env, Napi::Object exports) {
  exports.Set("EvdevDevice", EvdevDevice::Define(env));
  exports.Set("evdevGrabFd", Napi::Function::New(env, GrabFd, "evdevGrabFd"));
  exports.Set("evdevEventLayout", Napi::Function::New(env, EventLayout, "evdevEventLayout"));
  exports.Set("evdevPackEvent", Napi::Function::New(env, PackEvent, "evdevPackEvent"));
}

}  // namespace qdb
