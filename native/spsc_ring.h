// Lock-free single-producer / single-consumer byte ring for PCM, shared by the playback
// (pw_audio.cc, pulse_audio.cc: JS thread produces, real-time thread consumes) and capture
// (JS consumes, real-time thread produces) streams.
//
// Why not spa_ringbuffer: we need "drop the OLDEST on overflow" from the producer side, so
// that after a sink stall (server restart, corked stream) the newest audio plays and latency
// does not stay inflated. In a plain SPSC ring only the consumer may move the read index;
// here both sides move it with compare-and-swap:
//   - the consumer copies [read, read+n) and then CASes read -> read+n; if the producer moved
//     `read` meanwhile (it dropped old bytes and may have overwritten what we copied), the CAS
//     fails and the consumer simply copies again from the new read index. The retry is bounded:
//     the producer moves `read` at most once per WriteDropOldest call.
//   - the producer, when the data does not fit, CASes read forward by the excess first, then
//     writes. The bytes a racing consumer copies in that window are discarded by its failed CAS
//     (a benign race on plain bytes, the classic seqlock pattern).
// Everything is in bytes but always in whole frames (frame_bytes), so a drop or a partial
// read never splits a sample. Indices are 64-bit monotonic counters: they never wrap.
// No allocation after construction, no locks, no syscalls: safe on real-time threads.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_SPSC_RING_H_
#define QEMU_DBUS_BRIDGE_NATIVE_SPSC_RING_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <atomic>
#include <memory>

// Test seam: runs between the consumer's two index loads in Read(), so a test can play the racing
// producer there deterministically (test/unit/audio-spsc-ring.test.ts). Empty in the addon.
#ifndef QDB_SPSC_BETWEEN_LOADS
#define QDB_SPSC_BETWEEN_LOADS()
#endif

namespace qdb {

class SpscRing {
 public:
  // capacity_frames * frame_bytes bytes of storage, allocated once here (never on an RT thread).
  SpscRing(size_t capacity_frames, size_t frame_bytes)
      : frame_(frame_bytes ? frame_bytes : 1),
        cap_(capacity_frames * frame_),
        buf_(new uint8_t[cap_ ? cap_ : 1]) {}

  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  size_t capacity_bytes() const { return cap_; }
  size_t frame_bytes() const { return frame_; }

  // Bytes readable now (either side may call; it is a snapshot).
  size_t Fill() const {
    uint64_t w = write_.load(std::memory_order_acquire);
    uint64_t r = read_.load(std::memory_order_acquire);
    return Avail(r, w);
  }
  size_t Space() const { return cap_ - Fill(); }

  // Producer: copies as many whole frames of src as fit; returns bytes accepted (never blocks).
  size_t Write(const uint8_t* src, size_t n) {
    size_t take = n < Space() ? n : Space();
    take -= take % frame_;
    CopyIn(write_.load(std::memory_order_relaxed), src, take);
    write_.fetch_add(take, std::memory_order_release);
    return take;
  }

  // Producer: writes all whole frames of src, dropping the oldest queued bytes to make room.
  // If n exceeds the whole capacity only the newest capacity bytes of src are kept.
  // Returns the number of bytes dropped (old queued bytes plus skipped head of src).
  size_t WriteDropOldest(const uint8_t* src, size_t n) {
    n -= n % frame_;
    size_t dropped = 0;
    if (n > cap_) {
      dropped += n - cap_;
      src += n - cap_;
      n = cap_;
    }
    uint64_t w = write_.load(std::memory_order_relaxed);
    uint64_t r = read_.load(std::memory_order_acquire);
    // Make room: move read to at least w + n - cap. The consumer may advance it concurrently;
    // whoever moved it further wins, and we count only what WE dropped.
    while (w + n > r + cap_) {
      uint64_t want = w + n - cap_;
      if (read_.compare_exchange_weak(r, want, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        dropped += size_t(want - r);
        break;
      }
    }
    CopyIn(w, src, n);
    write_.store(w + n, std::memory_order_release);
    return dropped;
  }

  // Consumer: copies up to n bytes (whole frames) into dst; returns bytes read.
  size_t Read(uint8_t* dst, size_t n) {
    n -= n % frame_;
    for (;;) {
      uint64_t r = read_.load(std::memory_order_acquire);
      QDB_SPSC_BETWEEN_LOADS();
      uint64_t w = write_.load(std::memory_order_acquire);
      size_t take = n < Avail(r, w) ? n : Avail(r, w);
      CopyOut(r, dst, take);
      uint64_t expected = r;
      if (read_.compare_exchange_strong(expected, r + take, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
        return take;
      // The producer dropped old data under us: what we copied may be torn. Copy again.
    }
  }

  // Consumer: discards up to n bytes (whole frames); returns bytes discarded.
  size_t Discard(size_t n) {
    n -= n % frame_;
    for (;;) {
      uint64_t r = read_.load(std::memory_order_acquire);
      uint64_t w = write_.load(std::memory_order_acquire);
      size_t take = n < Avail(r, w) ? n : Avail(r, w);
      if (read_.compare_exchange_strong(r, r + take, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
        return take;
    }
  }

  // Total bytes ever written / consumed-or-dropped: lets the owner map ring positions to time.
  uint64_t total_written() const { return write_.load(std::memory_order_acquire); }
  uint64_t total_read() const { return read_.load(std::memory_order_acquire); }

 private:
  // w - r from two separate loads, clamped to [0, cap_]. The loads are not one snapshot: between
  // the consumer's load of read_ and its load of write_, a producer that overflows
  // (WriteDropOldest) may move read_ forward and write_ past r + cap_, so the raw difference can
  // exceed the capacity. Copying that much would read past buf_; the clamp keeps the copy in
  // bounds, and the consumer's CAS on read_ then fails (read_ moved) and it copies again.
  size_t Avail(uint64_t r, uint64_t w) const {
    if (w <= r) return 0;
    uint64_t d = w - r;
    return d > cap_ ? cap_ : size_t(d);
  }

  void CopyIn(uint64_t at, const uint8_t* src, size_t n) {
    if (!n) return;
    size_t pos = size_t(at % cap_);
    size_t first = n < cap_ - pos ? n : cap_ - pos;
    memcpy(buf_.get() + pos, src, first);
    if (n > first) memcpy(buf_.get(), src + first, n - first);
  }
  void CopyOut(uint64_t at, uint8_t* dst, size_t n) const {
    if (!n) return;
    size_t pos = size_t(at % cap_);
    size_t first = n < cap_ - pos ? n : cap_ - pos;
    memcpy(dst, buf_.get() + pos, first);
    if (n > first) memcpy(dst + first, buf_.get(), n - first);
  }

  const size_t frame_;
  const size_t cap_;
  std::unique_ptr<uint8_t[]> buf_;
  // Separate cache lines: the two threads hammer different indices.
  alignas(64) std::atomic<uint64_t> write_{0};
  alignas(64) std::atomic<uint64_t> read_{0};
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_SPSC_RING_H_
