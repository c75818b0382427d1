#!/bin/sh
# Like the real image: started as root it fixes the data/log ownership and drops to uid 101;
# started as `user: "101:101"` (the upstream compose file) it runs as is.
set -eu
if [ "$(id -u)" = 0 ]; then
  chown -R 101:101 /var/lib/clickhouse /var/log/clickhouse-server
  exec gosu 101:101 python3 /usr/local/lib/clickhouse_double.py "$@"
fi
exec python3 /usr/local/lib/clickhouse_double.py "$@"
