#!/usr/bin/env bash
# scripts/build-deb.sh — builds the Debian package dist/pkg/qemu-dbus-bridge_<version>_<arch>.deb
# (npm run package:deb). Prints the .deb's path.
#
#   1. builds what is stale in the checkout (the addon, the TypeScript; both incremental), unless
#      --prebuilt;
#   2. stages the runtime files — package.json, bin/, dist/src/*.js, the addon, the unit, the man
#      page generated from --help, the production node_modules minus build-only modules — into
#      .cache/deb-build/qemu-dbus-bridge-<version>/stage/ next to packaging/debian/;
#   3. runs dpkg-buildpackage -b there (debhelper: placement, strip, dh_shlibdeps, man, docs).
#
# Why debhelper and not a bare dpkg-deb: dh_shlibdeps derives the library Depends
# (libpipewire-0.3-0, libpulse0, libyuv0, libevdev2, libstdc++6, libc6 with their minimum
# versions) from the ELF files we actually ship instead of a list that can drift, and dh_strip,
# dh_compress, dh_fixperms, dh_installman/docs and dh_md5sums give the policy details lintian
# checks for free. The build itself stays the project's own (setup.sh), so packaging is seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { [ "${QDB_SETUP_QUIET:-0}" = 1 ] || echo "build-deb: $*" >&2; }

for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null || {
    echo "build-deb: $tool is missing; install it: sudo apt-get install --no-install-recommends debhelper dpkg-dev (or run: npm run setup)" >&2
    exit 1
  }
done

# --prebuilt: the caller has just built (the package tests run after scripts/setup.sh, and a
# second tsc beside `npm pack`'s would race it on dist/).
# The addons: one per binding.gyp target (native/addon.cc), each loaded only when used.
mapfile -t addons < <(node -p "JSON.parse(require('fs').readFileSync('binding.gyp', 'utf8')).targets.map((t) => 'build/Release/' + t.target_name + '.node').join('\n')")
if [ "${1:-}" = --prebuilt ]; then
  for f in "${addons[@]}" dist/src/cli/main.js; do
    [ -f "$f" ] || {
      echo "build-deb: $f is missing; run: npm run setup" >&2
      exit 1
    }
  done
else
  bash scripts/build-native.sh
  node_modules/.bin/tsc -p tsconfig.build.json
fi

version=$(node -p "require('./package.json').version")
work=.cache/deb-build
src=$work/qemu-dbus-bridge-$version
rm -rf "$work"
mkdir -p "$src/stage/lib"
cp -a packaging/debian "$src/debian"

# The date of the last commit, so the same commit builds the same package.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
cat >"$src/debian/changelog" <<EOF
qemu-dbus-bridge ($version) unstable; urgency=medium

  * Packaged from the qemu-dbus-bridge $version sources (scripts/build-deb.sh).

 -- qemu-dbus-bridge developers <qemu-dbus-bridge@users.noreply.github.com>  $(date -R -u -d "@$SOURCE_DATE_EPOCH")
EOF

lib=$src/stage/lib
cp package.json "$lib/"
mkdir -p "$lib/bin" "$lib/build/Release" "$lib/systemd"
cp bin/qemu-dbus-bridge "$lib/bin/"
cp "${addons[@]}" "$lib/build/Release/"
cp systemd/qemu-dbus-bridge@.service "$lib/systemd/"
(cd dist && find src -name '*.js' -print0 | cpio -0 -pdm --quiet "../$lib/dist")

# Production node_modules, without what only builds addons (node-gyp, nan, node-addon-api):
# resolved the way Node resolves them, from our dependencies down.
node - "$lib" <<'EOF'
const fs = require('fs');
const path = require('path');
const dest = process.argv[2];
const BUILD_ONLY = new Set(['node-gyp', 'nan', 'node-addon-api']);
const seen = new Set();
function resolveDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === path.dirname(dir)) throw new Error(`cannot resolve ${name} from ${fromDir}`);
  }
}
function walk(pkgDir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    if (BUILD_ONLY.has(name)) continue;
    let dir;
    try {
      dir = resolveDir(name, pkgDir);
    } catch (err) {
      if (pkg.optionalDependencies && name in pkg.optionalDependencies) continue;
      throw err;
    }
    if (seen.has(dir)) continue;
    seen.add(dir);
    walk(dir);
  }
}
const root = process.cwd();
walk(root);
for (const dir of [...seen].sort()) {
  const rel = path.relative(root, dir);
  fs.cpSync(dir, path.join(dest, rel), {
    recursive: true,
    // Nested node_modules are copied on their own (only the ones that are used).
    filter: (p) => !path.relative(dir, p).split(path.sep).includes('node_modules'),
  });
}
EOF
# What is not code: npm's own files, documentation (lintian: outside /usr/share/doc), and
# dbus-native's command-line tool. License texts stay (see the lintian overrides).
find "$lib/node_modules" \( -name .npmignore -o -iname 'readme*' -o -iname 'changelog*' -o -iname 'history.md' \) -type f -delete
rm -rf "$lib/node_modules/dbus-native/bin"
# usocket's build directory: only the addon itself, not the object files and Makefiles.
if [ -d "$lib/node_modules/usocket/build" ]; then
  find "$lib/node_modules/usocket/build" -mindepth 1 -not -path '*/Release' -not -name uwrap.node -prune -exec rm -rf {} +
  [ -f "$lib/node_modules/usocket/build/Release/uwrap.node" ] || {
    echo "build-deb: usocket's addon is missing (npm run setup builds it)" >&2
    exit 1
  }
fi

# The unit for /usr/bin/qemu-dbus-bridge, the man page, the docs.
node -e '
const fs = require("fs");
const { renderUnit } = require("./dist/src/cli/unit.js");
fs.writeFileSync(process.argv[1], renderUnit(fs.readFileSync("systemd/qemu-dbus-bridge@.service", "utf8"), "/usr/bin/qemu-dbus-bridge"));
' "$src/stage/qemu-dbus-bridge@.service"
node scripts/gen-man.js "$src/stage/qemu-dbus-bridge.1"
cp docs/config-example.toml README.md "$src/stage/"

say "dpkg-buildpackage in $src"
(cd "$src" && dpkg-buildpackage -b -uc -us --no-sign) >"$work/dpkg-buildpackage.log" 2>&1 || {
  tail -30 "$work/dpkg-buildpackage.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log: $work/dpkg-buildpackage.log)" >&2
  exit 1
}
arch=$(dpkg --print-architecture)
deb=qemu-dbus-bridge_${version}_$arch.deb
mkdir -p dist/pkg
cp "$work/$deb" dist/pkg/
echo "$PWD/dist/pkg/$deb"
