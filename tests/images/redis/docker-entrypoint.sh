#!/bin/sh
# Like the official redis image's entrypoint: `docker run redis --requirepass x` runs
# redis-server with those arguments, as the redis user, in /data.
set -eu
case "${1:-}" in
  -* | *.conf) set -- redis-server "$@" ;;
esac
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data 2>/dev/null || true
  exec gosu redis "$@"
fi
exec "$@"
