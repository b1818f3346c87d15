// Loaded by vitest into every test worker before any test file (vitest.config.ts setupFiles).
// A test never talks to the session bus of the user who runs it: bridges publish their status
// there and refuse a second bridge of the same VM name, so two test files bridging a VM called
// "guest" on a desktop would refuse each other (and a developer's real bridges would see the
// tests'). Tests that need a session bus start their own dbus-daemon and pass its address.
delete process.env.DBUS_SESSION_BUS_ADDRESS;
