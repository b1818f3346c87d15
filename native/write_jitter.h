// How late QEMU's Writes reach us, learned per VM so a NEW voice (the guest reopened its device,
// or the VM restarted while the bridge kept running) starts with a prebuffer that covers it.
//
// Why (the ~50 ms dropout after a re-attach on QEMU 10.0): a voice prebuffers latency + one block
// before it plays. On 7.2 a block is 1024 frames (23 ms), on 10.0 Audio.NSamples = 480 (11 ms), so
// the 10.0 prebuffer is 31 ms against 43 ms. Writes pass through QEMU's audio timer and our
// reader; on a loaded host both stall, worst when a sound starts (the guest and QEMU busy at once):
// 30-60 ms with the tone's first blocks then arriving in a burst were measured on 10.0 after a
// restart (test/integration/audio-out-reattach.test.ts). Stall minus prebuffer is the dropout,
// rounded up to the sink's cycle (21 ms at a 1024 quantum): ~20-70 ms heard.
//
// Lateness of a Write = its arrival minus when it was due if the run of Writes came at exactly
// the stream rate from the run's earliest-anchored start: the audio already received. A
// prebuffer of (block + the worst lateness) plays through the run without running dry. Runs end
// at a pause longer than `run_gap_ms` (the guest stopped its stream). The worst lateness decays
// with `half_life_ms` so a calm host gets its low latency back, and is capped at `max_ms`.
//
// Per Write it runs where the Write is taken (speaker_core.h: the JS thread or the intake
// thread, under the core's lock); TypeScript reads lateMs() at each poll (src/audio/out/voice.ts).
// Pure: the caller passes the clock (ms). Real-time contract: Note() is O(1), no allocation.
#ifndef QEMU_DBUS_BRIDGE_NATIVE_WRITE_JITTER_H_
#define QEMU_DBUS_BRIDGE_NATIVE_WRITE_JITTER_H_

#include <math.h>

namespace qdb {

class WriteJitter {
 public:
  WriteJitter(double run_gap_ms, double half_life_ms, double max_ms)
      : run_gap_ms_(run_gap_ms), half_life_ms_(half_life_ms), max_ms_(max_ms) {}

  // One Write carrying `audio_ms` of audio (frames / rate) arriving at `now_ms`.
  void Note(double audio_ms, double now_ms) {
    if (!have_last_ || now_ms - last_at_ > run_gap_ms_) {
      origin_ = now_ms;
      received_ms_ = 0;
    }
    have_last_ = true;
    last_at_ = now_ms;
    double late = now_ms - origin_ - received_ms_;
    // Early (QEMU's clock ran ahead, or the run began with a burst): re-anchor, nothing was late.
    if (late < 0) {
      origin_ += late;
    } else if (late > LateMs(now_ms)) {
      worst_ = late < max_ms_ ? late : max_ms_;
      worst_at_ = now_ms;
    }
    received_ms_ += audio_ms;
  }

  // Whether any Write was noted (else there is no schedule).
  bool HasSchedule() const { return have_last_; }

  // When the next Write is due on this run's schedule (the earliest-anchored one: a Write is never
  // early against it), in the clock of Note(). Meaningful once HasSchedule().
  double NextDueMs() const { return origin_ + received_ms_; }

  // The worst lateness to cover now, ms (decayed since it was seen).
  double LateMs(double now_ms) const {
    if (worst_ == 0) return 0;
    double age = now_ms - worst_at_;
    return worst_ * pow(0.5, (age > 0 ? age : 0) / half_life_ms_);
  }

 private:
  const double run_gap_ms_, half_life_ms_, max_ms_;
  double origin_ = 0;
  double received_ms_ = 0;  // audio received in this run, ms
  bool have_last_ = false;
  double last_at_ = 0;
  double worst_ = 0;
  double worst_at_ = 0;
};

}  // namespace qdb

#endif  // QEMU_DBUS_BRIDGE_NATIVE_WRITE_JITTER_H_
