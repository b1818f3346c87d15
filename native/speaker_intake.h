// The speaker's intake: a native thread that reads QEMU's AudioOutListener connection and puts
// the Writes into the playback ring itself, so Node's main thread no longer wakes 100 times a
// second per VM (issue 17: ten audio-only bridges' CPU was mostly ten Node processes woken by
// each Write, ~100 us a wakeup here).
//
// JS does the p2p handshake (src/qemu/peer/wire.ts), then stops reading the socket and hands us a
// dup of its descriptor plus the bytes it had already read past the handshake. From there this
// thread poll()s the socket (and an eventfd for stop), frames each message, and:
//   - a METHOD_CALL Write with exactly the path, interface, member and signature (tay) the
//     dispatcher accepts, NO_REPLY_EXPECTED, little-endian, well-formed header fields and body:
//     processed here through SpeakerCore::Process (speaker_core.h), JS not involved (unless the
//     voice is corked or writes to a JS sink: then it goes to JS like anything else);
//   - any other message (Init, Fini, SetEnabled, SetVolume, Introspect, a Write that wants a
//     reply, anything odd): its bytes go to JS (kIntakeMessage) and this thread stops reading until
//     JS has handled it (resume()): JS parses them with PeerWire's own parser and dispatches them
//     as before, so order is kept (an Init registers its voice before a later Write is taken here)
//     and every reply and error is what it was;
//   - a fixed header that does not frame (byte order, version, sizes): everything buffered from it
//     on goes to JS (kIntakeFraming), whose parser fails on it with its own error; the thread ends.
//   - EOF (kIntakeEnd) or a read error (kIntakeError, errno name): told once, the thread ends.
// What it checks to frame is PeerWire's own test (wire.ts frameLength); anything it does not
// recognise exactly is JS's to judge, so the native path can only be narrower than JS's, never
// different.
//
// Guest-untrusted: a message is buffered only up to the protocol's limit (128 MiB, as PeerWire);
// a Write larger than kMaxWriteBytes is cut there (speaker_core.h); while a message waits for JS
// nothing more is read (QEMU's own queue holds the rest, as when Node's reader is busy).
//
// Threads: the intake thread reads, frames and processes; the JS thread creates, resumes, stops
// and joins it. JS receives events through one ThreadSafeFunction (Unref'd: the connection keeps
// Node alive, not this). Teardown (stop(), the finalizer, the env cleanup hook): stop flag +
// eventfd + condition variable, join, close the dup and the eventfd, release the function.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_SPEAKER_INTAKE_H_
#define QEMU_DBUS_BRIDGE_NATIVE_SPEAKER_INTAKE_H_

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "addon.h"
#include "js_args.h"
#include "speaker_core.h"

namespace qdb {

// std::allocator whose value-initialisation of trivial elements (vector::resize) does nothing:
// for a read buffer that is grown only to be written by read().
template <typename T>
struct UninitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <typename U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// What the intake tells JS (src/native-api/audio.ts IntakeEvent).
enum IntakeEventKind {
  kIntakeMessage = 0,  // bytes of one whole message; reading waits for resume()
  kIntakeFraming = 1,  // bytes from a header that does not frame on; the thread has ended
  kIntakeEnd = 2,      // the peer closed; the thread has ended
  kIntakeError = 3,    // a read failed (errno name); the thread has ended
};

// D-Bus framing limits, as dbus-native's (lib/constants.js) that PeerWire applies.
constexpr uint64_t kDbusMaxMessage = 128u << 20;
constexpr uint32_t kDbusMaxArray = 64u << 20;

inline uint32_t Le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint32_t Be32(const uint8_t* p) {
  return uint32_t(p[3]) | uint32_t(p[2]) << 8 | uint32_t(p[1]) << 16 | uint32_t(p[0]) << 24;
}
inline uint64_t Le64(const uint8_t* p) { return uint64_t(Le32(p)) | uint64_t(Le32(p + 4)) << 32; }
inline uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

// The whole length of the message whose 16-byte fixed header this is, or 0 when it does not
// frame: PeerWire's checks (wire.ts frameLength), which then reports the error itself.
inline uint64_t DbusFrameLength(const uint8_t* h) {
  if (h[0] != 'l' && h[0] != 'B') return 0;
  if (h[3] != 1) return 0;
  const bool le = h[0] == 'l';
  const uint64_t body = le ? Le32(h + 4) : Be32(h + 4);
  const uint64_t fields = le ? Le32(h + 12) : Be32(h + 12);
  if (body > kDbusMaxMessage || fields > kDbusMaxMessage) return 0;
  const uint64_t total = 16 + Align8(fields) + body;
  return total > kDbusMaxMessage ? 0 : total;
}

// The one call taken without JS: what the AudioOutListener's dispatcher would run as
// handler.write(id, data) without a reply. Exactly: little-endian METHOD_CALL with
// NO_REPLY_EXPECTED; header fields PATH, INTERFACE, MEMBER, SIGNATURE each once and nothing else,
// parsed to exactly their declared length; body `tay` ending where the message ends. Anything else
// is false (JS's to judge).
struct WriteCall {
  uint64_t id = 0;
  const uint8_t* data = nullptr;
  size_t len = 0;
};

inline bool ParseAudioWrite(const uint8_t* m, uint64_t total, WriteCall* out) {
  static const char kPath[] = "/org/qemu/Display1/AudioOutListener";
  static const char kIface[] = "org.qemu.Display1.AudioOutListener";
  if (m[0] != 'l' || m[1] != 1 || !(m[2] & 1)) return false;
  const uint64_t body_len = Le32(m + 4);
  const uint64_t end = 16 + uint64_t(Le32(m + 12));
  uint64_t pos = 16;
  unsigned seen = 0;
  while (pos < end) {
    pos = Align8(pos);
    if (pos + 4 > end) return false;
    const uint8_t code = m[pos];
    // The variant's signature: one type character.
    if (m[pos + 1] != 1 || m[pos + 3] != 0) return false;
    const char type = char(m[pos + 2]);
    pos += 4;
    const char* want = nullptr;
    uint64_t len;
    if (code == 1 || code == 2 || code == 3) {
      if (type != (code == 1 ? 'o' : 's') || pos + 4 > end) return false;
      len = Le32(m + pos);  // 4-aligned: the field began 8-aligned, 4 bytes before
      pos += 4;
      want = code == 1 ? kPath : code == 2 ? kIface : "Write";
    } else if (code == 8) {
      if (type != 'g' || pos + 1 > end) return false;
      len = m[pos];
      pos += 1;
      want = "tay";
    } else {
      return false;
    }
    if ((seen >> code) & 1) return false;
    seen |= 1u << code;
    if (pos + len + 1 > end || m[pos + len] != 0) return false;
    if (len != strlen(want) || memcmp(m + pos, want, len) != 0) return false;
    pos += len + 1;
  }
  if (pos != end || seen != ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 8))) return false;
  const uint64_t at = Align8(end);
  if (body_len < 12 || at + body_len != total) return false;
  const uint64_t n = Le32(m + at + 8);
  if (n + 12 != body_len || n > kDbusMaxArray) return false;
  out->id = Le64(m + at);
  out->data = m + at + 12;
  out->len = size_t(n);
  return true;
}

template <typename Playback>
class SpeakerIntake : public Napi::ObjectWrap<SpeakerIntake<Playback>> {
 public:
  using Wrap = Napi::ObjectWrap<SpeakerIntake<Playback>>;
  using Core = SpeakerCore<Playback>;

  static Napi::Function Define(Napi::Env env) {
    return Wrap::DefineClass(env, Playback::kIntakeClassName,
                             {
                                 Wrap::InstanceMethod("resume", &SpeakerIntake::Resume),
                                 Wrap::InstanceMethod("stop", &SpeakerIntake::Stop),
                                 Wrap::InstanceMethod("stats", &SpeakerIntake::Stats),
                             });
  }

  // new <kIntakeClassName>(core, fd, pending: Uint8Array, onEvent(kind, data))
  explicit SpeakerIntake(const Napi::CallbackInfo& info) : Wrap(info) {
    Napi::Env env = info.Env();
    static const std::string who = Playback::kIntakeClassName;
    Napi::Object core = ArgObject(Arg(info, 0), who, "core");
    if (!core.CheckTypeTag(&Playback::kCoreTypeTag))
      ThrowInvalid(env, who, "core must be a " + std::string(Playback::kCoreClassName));
    core_ = Core::Unwrap(core);
    core_ref_ = Napi::Persistent(core);  // the core outlives this thread
    int fd = ArgInt32(Arg(info, 1), who, "fd", 0);
    Napi::Uint8Array pending = ArgBytes(Arg(info, 2), who, "pending");
    Napi::Function on_event = ArgFunction(Arg(info, 3), who, "onEvent");
    buf_.assign(pending.Data(), pending.Data() + pending.ByteLength());
    fd_ = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd_ < 0) ThrowErrno(env, errno, who + ": dup");
    efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) {
      int err = errno;
      close(fd_);
      fd_ = -1;
      ThrowErrno(env, err, who + ": eventfd");
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, on_event, "qdb-speaker-intake", 0, 1);
    tsfn_.Unref(env);
    env_ = env;
    napi_add_env_cleanup_hook(env, &SpeakerIntake::OnEnvCleanup, this);
    cleanup_registered_ = true;
    thread_ = std::thread([this] { Run(); });
  }

  ~SpeakerIntake() override { Teardown(); }

 private:
  // ---- intake thread -----------------------------------------------------------------------
  void Run() {
    pthread_setname_np(pthread_self(), "qdb-intake");  // for top -H, perf, /proc/PID/task
    size_t off = 0;                                    // framed up to here
    for (;;) {
      for (;;) {
        const size_t held = buf_.size() - off;
        if (held < 16) break;
        const uint8_t* m = buf_.data() + off;
        const uint64_t total = DbusFrameLength(m);
        if (total == 0) return Post(kIntakeFraming, m, held);
        if (held < total) break;
        WriteCall w;
        const int64_t now = MonoNs();
        if (ParseAudioWrite(m, total, &w) &&
            core_->Process(w.id, w.data, w.len, now, nullptr) != kWriteNeedsJs) {
          // Relaxed: counters read by stats() on the JS thread, each on its own (a stats() between
          // two of these stores may see the count before the bytes: off by one Write, never more).
          taken_.fetch_add(1, std::memory_order_relaxed);
          taken_bytes_.fetch_add(w.len, std::memory_order_relaxed);
          last_taken_ns_.store(now, std::memory_order_relaxed);
          off += total;
          continue;
        }
        handed_.fetch_add(1, std::memory_order_relaxed);
        Post(kIntakeMessage, m, size_t(total));
        off += total;
        if (!WaitForJs()) return;
      }
      // Keep only what is not framed yet (at most one partial message).
      if (off > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + off);
        off = 0;
      }
      // One huge message (up to the protocol's 128 MiB) must not keep its memory for good.
      if (buf_.capacity() > (8u << 20) && buf_.size() < (1u << 20)) buf_.shrink_to_fit();
      pollfd p[2] = {{fd_, POLLIN, 0}, {efd_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return PostErrno(errno);
      }
      if (p[1].revents || stop_.load(std::memory_order_acquire)) return;
      if (!p[0].revents) continue;
      const size_t have = buf_.size();
      // A message still being framed may be large: read what its header says is missing, in one
      // go, up to 1 MiB at a time; otherwise 64 KiB.
      size_t want = 64 * 1024;
      if (have >= 16) {
        uint64_t total = DbusFrameLength(buf_.data());
        if (total > have) want = size_t(std::min<uint64_t>(total - have, 1u << 20));
        if (want < 64 * 1024) want = 64 * 1024;
      }
      buf_.resize(have + want);
      ssize_t got = read(fd_, buf_.data() + have, want);
      buf_.resize(have + (got > 0 ? size_t(got) : 0));
      if (got == 0) return Post(kIntakeEnd, nullptr, 0);
      if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return PostErrno(errno);
    }
  }

  // Waits until JS has handled the message it was handed (resume()) or stop; false on stop.
  bool WaitForJs() {
    std::unique_lock<std::mutex> lk(wait_mu_);
    wait_cv_.wait(lk, [this] { return resumed_ || stop_.load(std::memory_order_acquire); });
    resumed_ = false;
    return !stop_.load(std::memory_order_acquire);
  }

  struct Event {
    int kind;
    std::vector<uint8_t> bytes;
    std::string code;  // kIntakeError
  };

  void Post(int kind, const uint8_t* p, size_t n) {
    auto* ev = new Event{kind, std::vector<uint8_t>(p, p + n), std::string()};
    Send(ev);
  }

  void PostErrno(int err) {
    const char* name = ErrnoName(err);
    auto* ev = new Event{kIntakeError, {}, name ? name : "EIO"};
    Send(ev);
  }

  static const char* ErrnoName(int err) {
    switch (err) {
      case ECONNRESET:
        return "ECONNRESET";
      case EPIPE:
        return "EPIPE";
      case EBADF:
        return "EBADF";
      case ENOMEM:
        return "ENOMEM";
      case ETIMEDOUT:
        return "ETIMEDOUT";
      default:
        return "EIO";
    }
  }

  void Send(Event* ev) {
    napi_status s = tsfn_.NonBlockingCall(ev, [](Napi::Env env, Napi::Function cb, Event* e) {
      std::unique_ptr<Event> owned(e);
      if (env == nullptr || cb == nullptr) return;  // queue drained at teardown
      try {
        Napi::Value data;
        if (owned->kind == kIntakeError) {
          data = Napi::String::New(env, owned->code);
        } else {
          // The message's own buffer: nothing reuses it (a handler may keep views of it, as of
          // the socket reader's messages).
          auto* bytes = new std::vector<uint8_t>(std::move(owned->bytes));
          data = Napi::Buffer<uint8_t>::New(
              env, bytes->data(), bytes->size(),
              [](Napi::Env, uint8_t*, std::vector<uint8_t>* b) { delete b; }, bytes);
        }
        cb.Call({Napi::Number::New(env, owned->kind), data});
      } catch (const Napi::Error&) {
        // JS can no longer run (environment shutting down), or the listener threw: it must not
        // escape into libuv (the TypeScript side catches its own).
      }
    });
    if (s != napi_ok) delete ev;  // queue closing: the intake is being stopped anyway
  }

  // ---- JS thread ---------------------------------------------------------------------------
  // resume(): JS has handled the message it was handed; reading goes on.
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    {
      std::lock_guard<std::mutex> g(wait_mu_);
      resumed_ = true;
    }
    wait_cv_.notify_one();
    return info.Env().Undefined();
  }

  // stop(): idempotent; once it returns the thread has ended and nothing more is processed.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Teardown();
    return info.Env().Undefined();
  }

  // stats(): {taken: Writes processed here, takenBytes: their PCM bytes (what the dispatcher counts
  // as a call's bytes), sinceTakenMs: ms since the last one (Infinity: none yet), handed: messages
  // handed to JS}. An age, not a time: JS's clock (performance.now) has another origin.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    const int64_t last = last_taken_ns_.load(std::memory_order_relaxed);
    r.Set("taken", double(taken_.load(std::memory_order_relaxed)));
    r.Set("takenBytes", double(taken_bytes_.load(std::memory_order_relaxed)));
    r.Set("sinceTakenMs", last < 0 ? std::numeric_limits<double>::infinity()
                                   : double(std::max<int64_t>(0, MonoNs() - last)) / 1e6);
    r.Set("handed", double(handed_.load(std::memory_order_relaxed)));
    return r;
  }

  void Teardown() {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> g(wait_mu_);
        // Release: the thread's acquire loads see it after the eventfd or the condition wakes it.
        stop_.store(true, std::memory_order_release);
      }
      wait_cv_.notify_one();
      uint64_t one = 1;
      ssize_t w = write(efd_, &one, sizeof(one));
      (void)w;  // a full counter (never here) would still wake poll()
      thread_.join();
    }
    if (fd_ >= 0) close(fd_);
    if (efd_ >= 0) close(efd_);
    fd_ = efd_ = -1;
    if (tsfn_) {
      tsfn_.Release();
      tsfn_ = Napi::ThreadSafeFunction();
    }
    if (cleanup_registered_) {
      cleanup_registered_ = false;
      napi_remove_env_cleanup_hook(env_, &SpeakerIntake::OnEnvCleanup, this);
    }
    if (!core_ref_.IsEmpty()) core_ref_.Reset();
  }

  static void OnEnvCleanup(void* data) {
    auto* self = static_cast<SpeakerIntake*>(data);
    self->cleanup_registered_ = false;  // Node is running it: removing it now is not allowed
    self->Teardown();
  }

  Core* core_ = nullptr;
  Napi::ObjectReference core_ref_;
  int fd_ = -1;
  int efd_ = -1;
  // The thread's own until it ends (read buffer: at most one partial message beyond what it
  // framed).
  // Default-initialised growth: resize() before each read() must not zero the 64 KiB read window
  // once per Write (it is overwritten by read() or cut back right after).
  std::vector<uint8_t, UninitAllocator<uint8_t>> buf_;
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
  napi_env env_ = nullptr;
  bool cleanup_registered_ = false;
  // The stop flag: set by the JS thread (under wait_mu_ so a thread about to wait sees it), read
  // by the intake thread after every wakeup.
  std::atomic<bool> stop_{false};
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  bool resumed_ = false;  // guarded by wait_mu_
  std::atomic<uint64_t> taken_{0}, taken_bytes_{0}, handed_{0};
  std::atomic<int64_t> last_taken_ns_{-1};  // MonoNs() of the last Write taken; -1: none
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_SPEAKER_INTAKE_H_
