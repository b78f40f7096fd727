#!/usr/bin/env bash
# Local stand-ins for the third-party images the Dockerfile and docker-compose.yml name
# (no image registry is reachable on the test machines). Each is built once and kept by
# tag; a run that finds the tag skips it, so only the first run pays (debootstrap ~2 min).
#   artstore-standin/bookworm:base        debootstrap --variant=minbase bookworm, imported
#   artstore-standin/python:3.11-slim-bookworm   Debian's python3 (3.11) + venv
#   artstore-standin/postgres:16          Debian's postgresql (15) with an entrypoint doing
#                                         what the official image's does (initdb, user, db)
#   artstore-standin/redis:7              Debian's redis-server
#   artstore-standin/minio:latest         SeaweedFS's S3 gateway (`weed`) behind a `minio
#                                         server` / `mc ready local` shim
#   artstore-standin/debian:bookworm-slim the gateway's base
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA=/etc/ssl/certs/ca-certificates.crt
export DOCKER_BUILDKIT=0

have() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have artstore-standin/bookworm:base; then
  root="$(mktemp -d /var/tmp/artstore-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
  mkdir -p "$root/etc/ssl/certs" && cp "$CA" "$root/etc/ssl/certs/"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - artstore-standin/bookworm:base >/dev/null
  rm -rf "$root"; trap - EXIT
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$CA" "$ctx/ca.crt"
build() {  # build <tag> <dir under standins>: the dir's files plus the CA bundle as context
  local tag="$1" dir="$2"
  have "$tag" && return 0
  rm -rf "$ctx/ctx" && mkdir "$ctx/ctx" && cp -r "$HERE/$dir/." "$ctx/ctx/" && cp "$CA" "$ctx/ctx/ca.crt"
  if [ "$dir" = minio ]; then cp "${WEED:?set WEED to the weed binary}" "$ctx/ctx/weed"; fi
  docker build -q --network host -t "$tag" "$ctx/ctx" >/dev/null
}
build artstore-standin/debian:bookworm-slim debian
build artstore-standin/python:3.11-slim-bookworm python
build artstore-standin/postgres:16 postgres
build artstore-standin/redis:7 redis
build artstore-standin/minio:latest minio
