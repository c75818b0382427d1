# Shared helpers for the scripts in this folder. Source it; do not run it.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
VENV="$ROOT/.venv"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
mkdir -p "$CACHE"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Put the project's venv first on PATH (after setup.sh has made it).
use_venv() {
  [ -x "$VENV/bin/ansible-playbook" ] || die "no tool venv at $VENV: run 'make setup' first"
  export PATH="$VENV/bin:$PATH"
  export VIRTUAL_ENV="$VENV"
}

docker_up() { docker info >/dev/null 2>&1; }

# sha256 over a set of files/dirs (sorted, content and names), for rebuild-when-changed caching.
recipe_hash() {
  (cd "$ROOT" && find -L "$@" -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}
