#!/usr/bin/env bash
# Builds the test images without any registry: a Debian 13 base from debootstrap, then each image
# llmops-test/<recipe>:<tag> listed in tests/test-images.yml (in file order) from the Dockerfile in
# tests/images/<recipe>/. Symlinks in a recipe folder (shared programs, contracts) are followed.
# An image is rebuilt only when its recipe (its folder, and the base image) changed.
# Usage: build-images.sh [recipe ...]   (default: all)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
docker_up || die "no Docker engine answers: run 'make setup' first"

BASE=llmops-test/debian:trixie
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
LABEL=org.llmops.recipe
BASE_RECIPE="trixie minbase v1"
# "recipe image" pairs from the one list of test images, unique, in file order.
mapfile -t IMAGES < <(sed -n 's/^[a-z_]*: *\(llmops-test\/\([a-z0-9-]*\):[^ #]*\).*/\2 \1/p' "$ROOT/tests/test-images.yml" | awk '!seen[$0]++')
[ ${#IMAGES[@]} -gt 0 ] || die "no llmops-test/ image listed in tests/test-images.yml"

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

build_one() {  # build_one RECIPE IMAGE
  local name=$1 image=$2 dir="tests/images/$1"
  [ -f "$ROOT/$dir/Dockerfile" ] || die "test image $image: no recipe at $dir/Dockerfile"
  local tags=("$image") want; want=$(recipe_hash "$dir")-$(docker image inspect -f '{{.Id}}' "$BASE" | cut -c8-19)
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
  { tar -h -C "$ROOT/$dir" -c . ; } >"$CACHE/ctx-$name.tar"
  tar -rf "$CACHE/ctx-$name.tar" --transform 's|.*|extra-ca.crt|' -C / "${ca#/}" 2>/dev/null || true
  docker build -q --label "$LABEL=$want" --build-arg "BASE=$BASE" "${args[@]}" - <"$CACHE/ctx-$name.tar" >"$CACHE/build-$name.log" 2>&1 \
    || { tail -30 "$CACHE/build-$name.log" >&2; die "building test image $name failed: see .cache/build-$name.log"; }
  rm -f "$CACHE/ctx-$name.tar"
  say "built $name in $((SECONDS - start)) s"
}

build_base
found=0
for pair in "${IMAGES[@]}"; do
  recipe=${pair%% *}
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$recipe"; then continue; fi
  build_one "$recipe" "${pair#* }"; found=$((found + 1))
done
[ $# -eq 0 ] || [ "$found" -ge $# ] || die "unknown recipe in '$*': see tests/test-images.yml"
