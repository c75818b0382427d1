#!/usr/bin/env bash
# start: make sure a Docker engine answers (install docker.io and start dockerd when we are root).
# stop:  stop the dockerd this script started, and nothing else.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PIDFILE="$CACHE/dockerd.pid"

case "${1:-start}" in
start)
  docker_up && exit 0
  is_root || die "no Docker engine answers and we are not root: start Docker (systemctl start docker) or rerun as root"
  if ! command -v dockerd >/dev/null; then
    say "installing docker.io"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null \
      || die "apt-get install docker.io failed: see the apt output above"
  fi
  say "starting dockerd (log: .cache/dockerd.log)"
  nohup dockerd >"$CACHE/dockerd.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 60); do docker_up && exit 0; sleep 0.5; done
  die "dockerd did not answer within 30 s: see .cache/dockerd.log"
  ;;
stop)
  [ -f "$PIDFILE" ] || exit 0
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping the dockerd we started (pid $pid)"
    kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$PIDFILE"
  ;;
*) die "usage: $0 start|stop" ;;
esac
