-- Test-harness override: WirePlumber 0.4 exits at start when there is no session bus.
-- The device-reservation (org.freedesktop.ReserveDevice1) and flatpak-portal permission store
-- are the parts that need one; tests run with no D-Bus session at all, so turn them off.
alsa_monitor.properties["alsa.reserve"] = false
default_access.properties["enable-flatpak-portal"] = false
