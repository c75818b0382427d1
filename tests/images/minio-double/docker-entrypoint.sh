#!/bin/sh
# Like the official image: `docker run minio/minio server /data` runs `minio server /data`.
set -eu
if [ "${1:-}" != minio ] && [ -n "${1:-}" ]; then set -- minio "$@"; fi
exec "$@"
