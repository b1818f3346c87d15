#!/usr/bin/env bash
# Fails when a C++ file in native/ differs from clang-format's output (.clang-format at the root).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format missing: sudo apt-get install clang-format" >&2; exit 1; }
bad=0
for f in native/*.cc native/*.h; do
  [ -e "$f" ] || continue
  if ! diff -q <(clang-format --style=file "$f") "$f" >/dev/null; then
    echo "not clang-formatted: $f (fix: clang-format -i $f)" >&2
    bad=1
  fi
done
exit $bad
