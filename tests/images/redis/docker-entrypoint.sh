#!/bin/sh
# Like the official redis image's entrypoint: `docker run redis --requirepass x` runs
# redis-server with those arguments, as the redis user, in /data.
set -eu
case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ]; then
  shift
  # Debian's binary keeps protected mode on by default; the official image turns it off so that
  # other containers can connect (a password still applies when one is set).
  set -- redis-server --protected-mode no "$@"
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec gosu redis "$@"
  fi
fi
exec "$@"
