#!/usr/bin/env bash
# Builds the native addons (build/Release/qemu_dbus_bridge*.node, one per binding.gyp target). Serialised with flock so that
# several builds started at once (parallel test runs, developers' helpers) never interleave in
# the shared build/ directory. `--rebuild` forces a configure + full rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>"${TMPDIR:-/tmp}/qemu-dbus-bridge-native-build.lock"
flock 9
gyp=node_modules/.bin/node-gyp
if [ "${1:-}" = --rebuild ] || [ ! -f build/Makefile ]; then
  "$gyp" rebuild --nodedir=/usr >&2 || { echo "native addon build failed (see above)" >&2; exit 1; }
else
  "$gyp" build --nodedir=/usr >&2 || { echo "native addon build failed (see above)" >&2; exit 1; }
fi
