/*
 * drm-cursor: define a hardware cursor on the first CRTC of /dev/dri/card0 and keep it shown, for
 * the guest's `cursor` scenario (QEMU turns a virtio-gpu cursor into the D-Bus CursorDefine and
 * MouseSet). Static, no libdrm: the few uAPI structs and ioctl numbers are declared here (the
 * Debian host lacks the drm uAPI headers in /usr/include).
 *
 * Usage: drm-cursor X Y  ->  prints "ok crtc=N w=64 h=64 hot_x=HX hot_y=HY x=X y=Y", then sleeps
 * forever: closing the device would drop the cursor's buffer and hide it.
 * The image: 64x64 ARGB, opaque magenta square of 32x32 at the top left, rest transparent;
 * hot spot (4, 6).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct mode_card_res { /* struct drm_mode_card_res */
  uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
  uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
  uint32_t min_width, max_width, min_height, max_height;
};
struct mode_create_dumb { /* struct drm_mode_create_dumb */
  uint32_t height, width, bpp, flags, handle, pitch;
  uint64_t size;
};
struct mode_map_dumb { /* struct drm_mode_map_dumb */
  uint32_t handle, pad;
  uint64_t offset;
};
struct mode_cursor2 { /* struct drm_mode_cursor2 */
  uint32_t flags, crtc_id;
  int32_t x, y;
  uint32_t width, height, handle;
  int32_t hot_x, hot_y;
};
#define DRM_IOWR_(nr, T) _IOWR('d', nr, T)
#define IOCTL_GETRESOURCES DRM_IOWR_(0xA0, struct mode_card_res)
#define IOCTL_CREATE_DUMB DRM_IOWR_(0xB2, struct mode_create_dumb)
#define IOCTL_MAP_DUMB DRM_IOWR_(0xB3, struct mode_map_dumb)
#define IOCTL_CURSOR2 DRM_IOWR_(0xBB, struct mode_cursor2)
#define CURSOR_BO 0x01
#define CURSOR_MOVE 0x02

static int fail(const char* what) {
  printf("error %s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  const int side = 64, hx = 4, hy = 6;
  int x = argc > 2 ? atoi(argv[1]) : 0, y = argc > 2 ? atoi(argv[2]) : 0;
  int fd = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail("open");
  struct mode_card_res res;
  memset(&res, 0, sizeof res);
  if (ioctl(fd, IOCTL_GETRESOURCES, &res) || res.count_crtcs == 0) return fail("resources");
  uint32_t crtcs[16];
  uint32_t n = res.count_crtcs > 16 ? 16 : res.count_crtcs;
  memset(&res, 0, sizeof res);
  res.count_crtcs = n;
  res.crtc_id_ptr = (uint64_t)(uintptr_t)crtcs;
  if (ioctl(fd, IOCTL_GETRESOURCES, &res)) return fail("resources2");
  struct mode_create_dumb cd = {.height = side, .width = side, .bpp = 32};
  if (ioctl(fd, IOCTL_CREATE_DUMB, &cd)) return fail("create-dumb");
  struct mode_map_dumb md = {.handle = cd.handle};
  if (ioctl(fd, IOCTL_MAP_DUMB, &md)) return fail("map-dumb");
  uint8_t* px = mmap(0, cd.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)md.offset);
  if (px == MAP_FAILED) return fail("mmap");
  for (int r = 0; r < side; r++) {
    uint32_t* row = (uint32_t*)(px + (size_t)r * cd.pitch);
    for (int c = 0; c < side; c++) row[c] = (r < 32 && c < 32) ? 0xffff00ffu : 0;
  }
  struct mode_cursor2 cur = {.flags = CURSOR_BO | CURSOR_MOVE,
                             .crtc_id = crtcs[0],
                             .x = x,
                             .y = y,
                             .width = side,
                             .height = side,
                             .handle = cd.handle,
                             .hot_x = hx,
                             .hot_y = hy};
  if (ioctl(fd, IOCTL_CURSOR2, &cur)) return fail("cursor");
  printf("ok crtc=%u w=%d h=%d hot_x=%d hot_y=%d x=%d y=%d\n", crtcs[0], side, side, hx, hy, x, y);
  fflush(stdout);
  for (;;) pause();
}
