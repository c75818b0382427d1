#!/usr/bin/env bash
# Builds the test images without any registry: a Debian 13 base from debootstrap, then every
# tests/images/<name>/ (a Dockerfile plus a TAGS file naming the tags it gets), in ORDER below.
# An image is rebuilt only when its recipe (its folder, and the base image) changed.
# Usage: build-images.sh [name ...]   (default: all)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
docker_up || die "no Docker engine answers: run 'make setup' first"

BASE=llmops-test/debian:trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
LABEL=org.llmops.recipe
BASE_RECIPE="trixie minbase v1"
# Images the stacks need (tagged with the names the roles deploy) and the EC2-like target.
ORDER=(target postgres redis clickhouse-double minio-double langfuse-double litellm)

label_of() { docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true; }

build_base() {
  # Bump BASE_RECIPE when the debootstrap step below changes; editing the rest of this script must
  # not rebuild every image.
  local want; want=$(printf '%s|%s' "$BASE_RECIPE" "$MIRROR" | sha256sum | cut -c1-16)
  [ "$(label_of "$BASE")" = "$want" ] && return 0
  is_root || die "building the base image needs root (debootstrap)"
  command -v debootstrap >/dev/null || die "debootstrap missing: run 'make setup'"
  say "debootstrap Debian 13 (trixie) -> $BASE"
  local rootfs; rootfs=$(mktemp -d)
  debootstrap --variant=minbase trixie "$rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see .cache/debootstrap.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c "LABEL $LABEL=$want" -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$rootfs"
}

build_one() {
  local name=$1 dir="tests/images/$1"
  [ -f "$ROOT/$dir/Dockerfile" ] || { say "skip $name (no $dir/Dockerfile)"; return 0; }
  local tags; mapfile -t tags < <(grep -v '^\s*\(#\|$\)' "$ROOT/$dir/TAGS")
  local want; want=$(recipe_hash "$dir")-$(docker image inspect -f '{{.Id}}' "$BASE" | cut -c8-19)
  local ok=1 t
  for t in "${tags[@]}"; do [ "$(label_of "$t")" = "$want" ] || ok=0; done
  [ $ok = 1 ] && return 0
  say "building $name -> ${tags[*]}"
  local args=() start=$SECONDS
  for t in "${tags[@]}"; do args+=(-t "$t"); done
  # The build context is the recipe folder plus this machine's CA bundle as extra-ca.crt, so that
  # pip/npm inside the build trust a TLS-inspecting proxy. It never reaches what the roles deploy.
  local ca=/etc/ssl/certs/ca-certificates.crt
  [ -f "$ca" ] || ca=/dev/null
  { tar -C "$ROOT/$dir" -c . ; } >"$CACHE/ctx-$name.tar"
  tar -rf "$CACHE/ctx-$name.tar" --transform 's|.*|extra-ca.crt|' -C / "${ca#/}" 2>/dev/null || true
  docker build -q --label "$LABEL=$want" --build-arg "BASE=$BASE" "${args[@]}" - <"$CACHE/ctx-$name.tar" >"$CACHE/build-$name.log" 2>&1 \
    || { tail -30 "$CACHE/build-$name.log" >&2; die "building test image $name failed: see .cache/build-$name.log"; }
  rm -f "$CACHE/ctx-$name.tar"
  say "built $name in $((SECONDS - start)) s"
}

build_base
if [ $# -gt 0 ]; then names=("$@"); else names=("${ORDER[@]}"); fi
for n in "${names[@]}"; do build_one "$n"; done
