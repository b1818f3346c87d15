# Sourced by scripts/setup.sh, scripts/kernel-vm/setup-host.sh, scripts/fetch-qemu10.sh and
# scripts/package-root.sh: the project's few apt helpers, defined once.
# ensure_packages PKG...: installs the Debian packages that are not installed yet, with apt-get when
# root; otherwise prints the exact sudo line and returns 1. Quiet when everything is there.
ensure_packages() {
  local missing=() p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [ "${status:0:2}" = ii ] || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ]; then
    [ "${QDB_SETUP_QUIET:-0}" = 1 ] || echo "setup: installing Debian packages: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
  else
    echo "setup: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
    return 1
  fi
}

# debian_archive_uri [SUITE]: the archive address this machine's own apt sources use for SUITE
# (default bookworm), so that no script names a mirror of its own. Empty when there is none.
debian_archive_uri() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk -v suite="${1:-bookworm}" '$2 == suite { print $1; exit }'
}
