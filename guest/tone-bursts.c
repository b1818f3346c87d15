// tone-bursts: the `bursts` scenario's player (guest/README.md). Keeps one playback stream on
// hw:0,0 running and writes, after a lead-in of silence, N bursts of a 1000 Hz sine (amplitude
// 0.5, S16_LE stereo) with silence between them. Right before it starts writing each burst it
// writes "burst <i> xruns=<n>" on its marker tty (the host timestamps that line when it arrives,
// see test/harness/onset.ts), so the host can time each burst from the guest starting it to its
// onset at the sink.
//
// Why a program and not aplay: the stream must stay open between bursts (a running stream, as a
// guest's own sound server keeps it), and the marker must be written at the moment the burst's
// first frame goes to the device, which a shell pipe into aplay cannot do (the pipe holds up to
// 64 KiB, ~370 ms, ahead of aplay). Raw ALSA ioctls, built static: no alsa-lib or its
// configuration parsing in the guest.
//
// The device buffer is 4 periods of 256 frames (23 ms at 44.1 kHz): the guest queues at most that
// ahead of the burst, the same for every host path. An underrun (EPIPE) is counted and the stream
// prepared again; the count is printed at the end (`done bursts=N xruns=X`), so a glitch the guest
// caused is not blamed on the host.
//
// Usage: tone-bursts <marker tty> <bursts> <burst ms> <gap ms> <rate>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sound/asound.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TONE_HZ 1000
#define PERIOD_FRAMES 256
#define PERIODS 4
#define LEAD_IN_MS 1000

static int pcm = -1;
static unsigned xruns;

static void fail(const char* what) {
  printf("error %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct snd_mask* mask_of(struct snd_pcm_hw_params* p, int param) {
  return &p->masks[param - SNDRV_PCM_HW_PARAM_FIRST_MASK];
}
static struct snd_interval* interval_of(struct snd_pcm_hw_params* p, int param) {
  return &p->intervals[param - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL];
}
static void set_mask(struct snd_pcm_hw_params* p, int param, unsigned v) {
  struct snd_mask* m = mask_of(p, param);
  memset(m, 0, sizeof(*m));
  m->bits[v >> 5] |= 1u << (v & 31);
}
static void set_interval(struct snd_pcm_hw_params* p, int param, unsigned v) {
  struct snd_interval* i = interval_of(p, param);
  i->min = i->max = v;
  i->integer = 1;
}

static void open_pcm(unsigned rate) {
  pcm = open("/dev/snd/pcmC0D0p", O_RDWR);
  if (pcm < 0) fail("open /dev/snd/pcmC0D0p");
  struct snd_pcm_hw_params p;
  memset(&p, 0, sizeof(p));
  // Everything allowed, then the few things we want; the kernel chooses the rest.
  for (int n = SNDRV_PCM_HW_PARAM_FIRST_MASK; n <= SNDRV_PCM_HW_PARAM_LAST_MASK; n++)
    memset(mask_of(&p, n), 0xff, sizeof(struct snd_mask));
  for (int n = SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; n <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL; n++)
    interval_of(&p, n)->max = ~0u;
  p.rmask = ~0u;
  p.info = ~0u;
  set_mask(&p, SNDRV_PCM_HW_PARAM_ACCESS, SNDRV_PCM_ACCESS_RW_INTERLEAVED);
  set_mask(&p, SNDRV_PCM_HW_PARAM_FORMAT, SNDRV_PCM_FORMAT_S16_LE);
  set_mask(&p, SNDRV_PCM_HW_PARAM_SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
  set_interval(&p, SNDRV_PCM_HW_PARAM_CHANNELS, 2);
  set_interval(&p, SNDRV_PCM_HW_PARAM_RATE, rate);
  set_interval(&p, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, PERIOD_FRAMES);
  set_interval(&p, SNDRV_PCM_HW_PARAM_PERIODS, PERIODS);
  if (ioctl(pcm, SNDRV_PCM_IOCTL_HW_PARAMS, &p) < 0) fail("hw_params");
  if (ioctl(pcm, SNDRV_PCM_IOCTL_PREPARE) < 0) fail("prepare");
}

// Writes all `frames` (blocking); an underrun is counted and the stream prepared again.
static void write_frames(const int16_t* buf, unsigned frames) {
  while (frames > 0) {
    struct snd_xferi x = {.result = 0, .buf = (void*)buf, .frames = frames};
    if (ioctl(pcm, SNDRV_PCM_IOCTL_WRITEI_FRAMES, &x) < 0) {
      if (errno == EPIPE) {
        xruns++;
        if (ioctl(pcm, SNDRV_PCM_IOCTL_PREPARE) < 0) fail("prepare after underrun");
        continue;
      }
      if (errno == EINTR || errno == EAGAIN) continue;
      fail("writei");
    }
    buf += 2 * x.result;
    frames -= (unsigned)x.result;
  }
}

static void silence(int16_t* zeros, unsigned frames) {
  while (frames > 0) {
    unsigned n = frames < PERIOD_FRAMES ? frames : PERIOD_FRAMES;
    write_frames(zeros, n);
    frames -= n;
  }
}

int main(int argc, char** argv) {
  if (argc != 6) {
    printf("error usage: tone-bursts <marker tty> <bursts> <burst ms> <gap ms> <rate>\n");
    return 2;
  }
  int bursts = atoi(argv[2]), burst_ms = atoi(argv[3]), gap_ms = atoi(argv[4]);
  unsigned rate = (unsigned)atoi(argv[5]);
  if (bursts < 1 || burst_ms < 1 || gap_ms < 0 || rate < 8000 || rate > 192000) {
    printf("error bad-args bursts=%d burst_ms=%d gap_ms=%d rate=%u\n", bursts, burst_ms, gap_ms,
           rate);
    return 2;
  }
  int marker = open(argv[1], O_WRONLY | O_NOCTTY);
  if (marker < 0) fail("open marker tty");
  unsigned tone_frames = rate * (unsigned)burst_ms / 1000;
  int16_t* tone = malloc(tone_frames * 4);
  int16_t* zeros = calloc(PERIOD_FRAMES, 4);
  if (!tone || !zeros) fail("malloc");
  for (unsigned i = 0; i < tone_frames; i++) {
    // Starts at phase 0, rising: the onset is the first frame above the host's threshold.
    int16_t v = (int16_t)lrint(16384.0 * sin(2.0 * M_PI * TONE_HZ * i / rate));
    tone[2 * i] = tone[2 * i + 1] = v;
  }
  open_pcm(rate);
  silence(zeros, rate * LEAD_IN_MS / 1000);
  for (int b = 0; b < bursts; b++) {
    char line[48];
    // The guest underruns so far: the host tells a burst the guest itself broke by the count
    // changing between this marker and the next.
    int len = snprintf(line, sizeof(line), "burst %d xruns=%u\n", b, xruns);
    if (write(marker, line, (size_t)len) != len) fail("write marker");
    write_frames(tone, tone_frames);
    silence(zeros, rate * (unsigned)gap_ms / 1000);
  }
  if (ioctl(pcm, SNDRV_PCM_IOCTL_DRAIN) < 0) fail("drain");
  printf("done bursts=%d xruns=%u\n", bursts, xruns);
  return 0;
}
