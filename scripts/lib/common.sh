# Shared helpers for the project's scripts. Source it: `. "$(dirname "$0")/lib/common.sh"`.
#
# Python tools live in venvs under $LATAMCTL_CACHE (default ~/.cache/latamctl), one per tool
# family, created on first use and reused afterwards. A lock keeps concurrent scripts from
# installing into the same venv at once.

LATAMCTL_CACHE="${LATAMCTL_CACHE:-$HOME/.cache/latamctl}"
mkdir -p "$LATAMCTL_CACHE"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

# ensure_venv NAME PACKAGE... : create (once) $LATAMCTL_CACHE/venv-NAME with the packages;
# prints the venv directory. Re-installs when the package list changes.
ensure_venv() {
  local name="$1"; shift
  local dir="$LATAMCTL_CACHE/venv-$name"
  local want="$*"
  (
    flock 9
    if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.latamctl-packages" 2>/dev/null)" != "$want" ]; then
      log "installing Python packages into $dir: $want"
      rm -rf "$dir"
      python3 -m venv "$dir" >&2
      "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 || exit 1
      printf '%s' "$want" > "$dir/.latamctl-packages"
    fi
  ) 9>"$LATAMCTL_CACHE/.venv-$name.lock" || die "could not install $want into $dir"
  printf '%s\n' "$dir"
}

# free_port : print a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Installs Debian packages (as root, or with sudo).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; } \
    || die "could not install $* with apt-get"
}
