// Types of the addon's always-present core functions (native/socketpair.cc, native/notify.cc).

export interface CoreNativeApi {
  /** AF_UNIX SOCK_STREAM socketpair with CLOEXEC: [ours, theirs]. Throws Error with errno `code`. */
  socketpair(): [number, number];
  /** One sd_notify(3) datagram to $NOTIFY_SOCKET; false (no-op) when the variable is unset. */
  sdNotify(text: string): boolean;
}
