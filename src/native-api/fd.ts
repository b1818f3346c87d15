// Descriptor flags the QEMU D-Bus layer needs (native/fd_flags.cc).

export interface FdNativeApi {
  /** Set FD_CLOEXEC on `fd` (usocket's sockets and received fds lack it). Throws Error with errno `code`. */
  setCloexec(fd: number): void;
}
