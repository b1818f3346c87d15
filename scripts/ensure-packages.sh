# Sourced by scripts/setup.sh and scripts/kernel-vm/setup-host.sh.
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
