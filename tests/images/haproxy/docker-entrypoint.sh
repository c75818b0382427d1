#!/bin/sh
# Does what the official haproxy image's entrypoint does (tests/contracts/haproxy.yml,
# facts.entrypoint): options alone (first argument starting with "-") are given to haproxy, and a
# `haproxy` command gets -W (master-worker: SIGHUP/SIGUSR2 reload) and -db (stay in the foreground)
# in front of its own arguments. Anything else runs unchanged.
set -e
case "${1-}" in
  -*) set -- haproxy "$@" ;;
esac
if [ "${1-}" = haproxy ]; then
  shift
  set -- haproxy -W -db "$@"
fi
exec "$@"
