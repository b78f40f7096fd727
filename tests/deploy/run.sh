#!/usr/bin/env bash
# make test-deploy: the production compose stack really run (tests/deploy/test_compose_stack.py).
# Installs docker.io, debootstrap and docker-compose when missing (root, Debian), starts
# dockerd when none answers (and stops only that one at the end), builds the local stand-ins
# for the third-party images once (kept by tag: later runs reuse them), builds the ArtStore
# image from the real Dockerfile and the gateway's, then runs the test. The test removes
# the stack's containers and volumes; the images stay as the cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
start=$(date +%s)
BIN=.venv/bin

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "test-deploy: install ${need[*]} (as root)" >&2; exit 1
  fi
  apt-get install -y --no-install-recommends "${need[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; }
fi

started=""
if ! docker info >/dev/null 2>&1; then
  dockerd >/var/tmp/artstore-test-dockerd.log 2>&1 &
  started=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
fi
stop_daemon() {
  if [ -n "$started" ]; then kill "$started" 2>/dev/null || true; wait "$started" 2>/dev/null || true; fi
  echo "test-deploy: $(( $(date +%s) - start )) s"
}
trap stop_daemon EXIT

export DOCKER_BUILDKIT=0  # BuildKit would pull its Dockerfile frontend from a registry
WEED="$PWD/$BIN/weed" bash tests/deploy/standins/build.sh
echo "test-deploy: base images ready after $(( $(date +%s) - start )) s"
# The real Dockerfiles, unchanged: only their base image argument names the stand-in.
docker build -q --network host --build-arg PYTHON_IMAGE=artstore-standin/python:3.11-slim-bookworm \
  -t artstore:local . >/dev/null
docker build -q --network host --build-arg BASE_IMAGE=artstore-standin/debian:bookworm-slim \
  -t artstore-gateway:local deploy/gateway >/dev/null
echo "test-deploy: images built after $(( $(date +%s) - start )) s"
ARTSTORE_TEST_DEPLOY=1 timeout 1500 "$BIN/python" -m pytest -p no:cacheprovider -m deploy \
  tests/deploy/test_compose_stack.py "$@"
