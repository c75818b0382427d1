#!/usr/bin/env bash
# Controller set-up: tool venv, Ansible collections, a running Docker engine.
# Idempotent: a rerun checks each piece and changes nothing that is already in place.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ANSIBLE_WHEEL_VERSION=12.3.0   # the `ansible` release that bundles the versions in requirements.yml

command -v python3 >/dev/null || die "python3 not found: install Python 3.11+ (Debian: apt-get install python3 python3-venv)"
# Targets, like real boxes, are reached over SSH.
command -v ssh >/dev/null || die "ssh client not found: install it (Debian: apt-get install openssh-client)"

# 1. Tool venv, rebuilt only when requirements-dev.txt changes.
want=$(sha256sum "$ROOT/requirements-dev.txt" | cut -c1-16)
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$want" ]; then
  say "creating tool venv in .venv"
  python3 -m venv "$VENV" || die "python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt"
  echo "$want" >"$VENV/.requirements"
fi
use_venv

# 2. Collections: Galaxy when it answers, else the same versions out of the `ansible` wheel on PyPI.
COLL="$ROOT/.collections/ansible_collections"
have_collections() {
  python3 - "$COLL" "$ROOT/requirements.yml" <<'PY'
import json, sys, yaml
root, req = sys.argv[1], sys.argv[2]
for c in yaml.safe_load(open(req))["collections"]:
    ns, name = c["name"].split(".")
    try:
        v = json.load(open(f"{root}/{ns}/{name}/MANIFEST.json"))["collection_info"]["version"]
    except OSError:
        sys.exit(1)
    if v != c["version"]:
        sys.exit(1)
PY
}
if ! have_collections; then
  say "installing collections"
  if ! timeout 40 ansible-galaxy collection install -r "$ROOT/requirements.yml" -p "$ROOT/.collections" >"$CACHE/galaxy.log" 2>&1; then
    say "Galaxy not reachable; taking the collections from the ansible $ANSIBLE_WHEEL_VERSION wheel on PyPI"
    whl="$CACHE/ansible-$ANSIBLE_WHEEL_VERSION-py3-none-any.whl"
    [ -f "$whl" ] || pip download -q --no-deps --disable-pip-version-check -d "$CACHE" "ansible==$ANSIBLE_WHEEL_VERSION"
    tmp=$(mktemp -d)
    python3 - "$whl" "$tmp" "$ROOT/requirements.yml" <<'PY'
import sys, yaml, zipfile
whl, dest, req = sys.argv[1:]
wanted = [f"ansible_collections/{c['name'].replace('.', '/')}/" for c in yaml.safe_load(open(req))["collections"]]
with zipfile.ZipFile(whl) as z:
    z.extractall(dest, [n for n in z.namelist() if n.startswith(tuple(wanted))])
PY
    mkdir -p "$COLL"
    for d in "$tmp"/ansible_collections/*/*; do
      ns=$(basename "$(dirname "$d")"); mkdir -p "$COLL/$ns"; rm -rf "${COLL:?}/$ns/$(basename "$d")"; mv "$d" "$COLL/$ns/"
    done
    rm -rf "$tmp"
    have_collections || die "collections from the ansible $ANSIBLE_WHEEL_VERSION wheel do not match requirements.yml"
  fi
fi
# This checkout is the llmops.devbox collection.
mkdir -p "$COLL/llmops"
[ "$(readlink "$COLL/llmops/devbox" 2>/dev/null)" = "$ROOT" ] || ln -sfn "$ROOT" "$COLL/llmops/devbox"

# ansible-test --requirements downloads a pip bootstrap script from a host not reachable here;
# seed its cache with our offline stand-in (a real cached script is left alone).
pipver=$(sed -n "s/^ *pip='\([0-9.]*\)',.*/\1/p" "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1)
getpip="$HOME/.ansible/test/cache/get_pip_${pipver//./_}.py"
if [ -n "$pipver" ] && [ ! -f "$getpip" ]; then
  mkdir -p "$(dirname "$getpip")" && cp "$ROOT/scripts/offline_get_pip.py" "$getpip"
fi

# 3. Docker engine (and debootstrap for the test images).
"$ROOT/scripts/dockerd.sh" start
if ! command -v debootstrap >/dev/null; then
  is_root || die "debootstrap is missing and we are not root: run 'sudo apt-get install debootstrap'"
  say "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
ansible_version=$(ansible --version)
say "set-up complete (${ansible_version%%$'\n'*}, $(docker version --format 'docker {{.Server.Version}}'))"
