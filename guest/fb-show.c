/*
 * fb-show: make the display show a DRM fbdev framebuffer, for the guest's `heads` scenario. The
 * kernel's fbdev emulation sets a mode only for the framebuffer fbcon sits on (fb0); a second
 * head's fb1 is memory nobody scans out until a program sets its mode. FBIOPUT_VSCREENINFO with
 * the current settings and FB_ACTIVATE_FORCE makes the fbdev helper commit that mode (set_par),
 * so the device behind fb1 shows it and QEMU sends its console's picture.
 *
 * Usage: fb-show /dev/fbN  ->  prints "ok WxH" (exit 0) or "error <step>" (exit 1).
 */
#include <fcntl.h>
#include <linux/fb.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fb-show /dev/fbN\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) {
    printf("error open\n");
    return 1;
  }
  struct fb_var_screeninfo var;
  if (ioctl(fd, FBIOGET_VSCREENINFO, &var) != 0) {
    printf("error get\n");
    return 1;
  }
  var.activate = FB_ACTIVATE_NOW | FB_ACTIVATE_FORCE;
  if (ioctl(fd, FBIOPUT_VSCREENINFO, &var) != 0) {
    printf("error put\n");
    return 1;
  }
  printf("ok %ux%u\n", var.xres, var.yres);
  close(fd);
  return 0;
}
