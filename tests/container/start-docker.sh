#!/usr/bin/env bash
# Makes a container engine available for the container test, as the other
# test scripts do for PostgreSQL: installs Debian's Docker engine (docker.io),
# its compose (docker-compose), mmdebstrap and curl when missing, and starts
# dockerd itself when no engine answers (overlay2 storage, its log in
# /tmp/newsbot-dockerd.log). Idempotent. Exit 77 (with the reason on stderr)
# where no engine can run here: not root and no engine reachable, or dockerd
# does not come up.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "no container engine answers and starting one needs root" >&2
  exit 77
fi
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
if ! docker info >/dev/null 2>&1; then
  log=/tmp/newsbot-dockerd.log
  setsid dockerd --storage-driver=overlay2 >"$log" 2>&1 < /dev/null &
  for _ in $(seq 100); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.2
  done
  echo "dockerd did not start here; its log ($log) ends with:" >&2
  tail -n 5 "$log" >&2
  exit 77
fi
