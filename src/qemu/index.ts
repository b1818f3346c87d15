// Public API of the QEMU D-Bus layer (org.qemu.Display1.*). Import from 'src/qemu', not from
// the files behind it. These names are stable; other parts are wired to them.
//
//   const vm = await QemuVm.connect({ busAddress?, name?, uuid?, qmpPath? });
//       busAddress: 'unix:path=...' (default $DBUS_SESSION_BUS_ADDRESS); name/uuid pick one VM
//       when several QEMUs share the bus; qmpPath instead of busAddress = bus-less mode
//       (-display dbus,p2p=yes). Fails with QemuDbusError (code + fix), see errors.ts.
//   vm.info            { name, uuid, uniqueName, consoleIds, busAddress, p2p }
//   vm.capabilities    { audio, audioNSamples, multiTouch, unixMap, scanoutDmabuf2, consoleInterfaces,
//                        clipboard, chardevs, p2pAudioBroken, ... } from introspection, not versions
//   await vm.consoleInfos()  ConsoleInfo[] {id, type, label, head, width, height} of every console
//   await vm.chooseConsole(n?, flag)  QemuConsole n (ECONSOLE_UNKNOWN if absent), else the first graphic one
//   vm.console(id?)    QemuConsole: .size(), .onSizeChanged(cb), .keyboard (Keyboard: press/release
//                      qnum), .mouse (Mouse: press/release 0..6 only, wheel, setAbsPosition,
//                      relMotion, isAbsolute, onIsAbsoluteChanged), .multiTouch, .proxy (generated)
//   vm.audio()         QemuAudio (throws ENO_AUDIO without `audiodev=` on -display dbus)
//   await vm.addConsoleListener(handler: ConsoleListenerHandler, { console? })  -> ListenerHandle
//   await vm.addDeadMansSwitch({ console? })                                    -> ListenerHandle
//       A console's listener is shared (7.2: one per sender per console): the display handler and
//       any dead-man's switches use one connection; when it closes QEMU lifts that console's keys.
//   await vm.addAudioOutListener(handler: AudioOutHandler)                      -> ListenerHandle
//   await vm.addAudioInListener(handler: AudioInHandler)                        -> ListenerHandle
//       Handlers (handlers.ts) must not block. Audio calls run in the socket read; AudioInHandler.read's
//       return value IS the D-Bus reply. Display calls (fire-and-forget) run in 4 ms slices so they
//       never delay an audio Read, and a Scanout drops the queued Updates it covers. Listeners are re-registered on
//       every re-attach; handle.remove() stops that. handle.stats counts calls/bytes/rejects (a native intake's Writes included).
//   vm.on('attached' | 'reattached' | 'responsive', (info) => ...)
//   vm.on('vm-gone', (info, reason, kind: VmGoneKind) => ...)   kind 'bus-closed' = our bus is gone
//       (no re-attach possible on it); otherwise QemuVm looks for the VM again by UUID (or name).
//   vm.on('error', (err: QemuDbusError) => ...)   e.g. EQEMU_UNRESPONSIVE from the liveness read
//   await vm.close()
//
// Failed calls into QEMU reject with RemoteCallError, ours to QEMU are MethodErrors: both are
// CodedErrors whose `code` comes from the D-Bus error name through one table (dbus-errors.ts),
// e.g. EMOUSE_NOT_ABSOLUTE from Mouse.setAbsPosition, EUNSUPPORTED from SetUIInfo. Branch on it.
//
// Lower level (tests, tools): openBus, discoverVms/pickVm, detectCapabilities, serveListener
// (one p2p listener on a socketpair), consoleListenerInterfaces / audioOutInterfaces /
// audioInInterfaces, the generated proxies (generated/display1.ts) and connectP2pMain.
export * from './errors';
export { DBUS_ERR, dbusErrorCode, type DbusErrorCode } from './dbus-errors';
export type { AudioInHandler, AudioOutHandler, ConsoleListenerHandler, CursorImage, PcmFormat } from './handlers';
export { QemuVm, type ConnectOptions, type VmInfo, type QemuVmEvents, type ListenerHandle, type ListenerKind, type VmGoneKind } from './vm';
export { connectFailure } from './transport';
export { openBus, defaultBusAddress, unixPathOf, busFailure, foreignOwner, socketOwner, userName, type BusConnection, type SocketOwner } from './bus';
export { discoverVms, listQueuedOwners, pickVm, QEMU_BUS_NAME, type FoundVm, type Discovery, type VmSelector } from './discovery';
export { QemuArrivals, QemuArrivalWatch } from './arrivals';
export { detectCapabilities, type Capabilities } from './capabilities';
export { QemuConsole, chooseConsole, consoleInfoOf, consolePath, describeConsole, isGraphicConsole, type ConsoleInfo } from './console';
export { Keyboard, LED_CAPS_LOCK, LED_NUM_LOCK, LED_SCROLL_LOCK } from './keyboard';
export { Mouse, MouseButton, checkMouseButton, type MouseButtonValue } from './mouse';
export { MULTITOUCH_MAX_SLOTS, MultiTouch, TouchKind, type TouchKindValue } from './multitouch';
export { QemuAudio, AUDIO_PATH } from './audio';
export { Clipboard, CLIPBOARD_MIME, CLIPBOARD_PATH, ClipboardSelection } from './clipboard';
export { Chardev } from './chardev';
export { VM_PATH, VM_IFACE, readVmIdentity, type VmIdentity } from './vm-object';
export { RemoteObject, RemoteCallError, type QemuLink, type CallOptions } from './remote-object';
export { serveListener, servedInterface, PeerListener, MethodError, type ExportedInterface, type ExportedMethod, type PeerListenerOptions, type PeerListenerStats } from './peer-listener';
export { consoleListenerInterfaces, consoleListenerOptions, LISTENER_PATH, LISTENER_IFACE, LISTENER_UNIX_MAP_IFACE } from './console-listener';
export { audioInInterfaces, audioOutInterfaces, audioInOptions, audioOutOptions, AUDIO_IN_PATH, AUDIO_OUT_PATH } from './audio-listeners';
export { connectP2pMain, connectP2pOnFd, handOverViaQmp, type P2pMainConnection } from './p2p-main';
export * as display1 from './generated/display1';
