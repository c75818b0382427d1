#!/usr/bin/env bash
# Local "EC2" targets: containers of the target test image (tests/test-images.yml) reached over SSH as `admin`.
#   target.sh create NAME   start (or reuse) a target, install the SSH key, print its address
#   target.sh destroy NAME  remove the container and its Docker volume
#   target.sh address NAME  print its address
#   target.sh load NAME IMAGE...  copy images from this engine into the target's engine (missing ones only)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
IMAGE=$(sed -n 's/^llmops_test_target_image: *\([^ #]*\).*/\1/p' "$ROOT/tests/test-images.yml")
KEY="$CACHE/ssh/id_ed25519"
docker_up || die "no Docker engine answers: run 'make setup' first"

ensure_key() {
  [ -f "$KEY" ] && return 0
  mkdir -p "$(dirname "$KEY")" && chmod 0700 "$(dirname "$KEY")"
  ssh-keygen -q -t ed25519 -N '' -C llmops-test -f "$KEY"
}
address() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }

create() {
  local name=$1
  ensure_key
  if ! docker inspect "$name" >/dev/null 2>&1; then
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE missing: run scripts/build-images.sh target"
    # Not --privileged (fails on this kind of VM); these flags let systemd and an inner dockerd run.
    docker run -d --name "$name" --hostname "$name" --label org.llmops.target=1 \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      -v "$name-docker:/var/lib/docker" --tmpfs /run --tmpfs /run/lock \
      "$IMAGE" >/dev/null
  fi
  [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || docker start "$name" >/dev/null
  docker exec -i "$name" sh -c 'umask 077; cat > /home/admin/.ssh/authorized_keys; chown admin:admin /home/admin/.ssh/authorized_keys' <"$KEY.pub"
  local ip; ip=$(address "$name")
  for _ in $(seq 60); do
    if ssh -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o ConnectTimeout=2 -o LogLevel=ERROR "admin@$ip" true 2>/dev/null; then
      echo "$ip"; return 0
    fi
    sleep 1
  done
  die "target $name ($ip) does not answer SSH after 60 s: see 'docker logs $name'"
}

load() {
  local name=$1; shift
  local missing=() i
  for i in "$@"; do
    docker exec "$name" docker image inspect "$i" >/dev/null 2>&1 || missing+=("$i")
  done
  [ ${#missing[@]} -eq 0 ] && { echo "unchanged"; return 0; }
  say "loading ${missing[*]} into $name"
  docker save "${missing[@]}" | docker exec -i "$name" docker load >/dev/null
  echo "loaded ${missing[*]}"
}

case "${1:-}" in
create) create "$2" ;;
destroy) docker rm -f "$2" >/dev/null 2>&1 || true; docker volume rm "$2-docker" >/dev/null 2>&1 || true ;;
address) address "$2" ;;
load) shift; load "$@" ;;
*) die "usage: $0 create|destroy|address NAME | load NAME IMAGE..." ;;
esac
