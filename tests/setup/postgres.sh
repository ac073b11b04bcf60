#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server on 127.0.0.1 for the state tests and
# prints its URL. Installs Debian's postgresql package when it is missing.
# The cluster lives in a temporary folder owned by the postgres user (the
# server refuses to run as root); it is reused while it runs.
set -euo pipefail

port=${NEWSBOT_TEST_PG_PORT:-54329}
data=/tmp/newsbot-test-pg
url="postgresql://newsbot:newsbot@127.0.0.1:${port}/newsbot"

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ]; then
  "${as_root[@]}" apt-get update -qq >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

as_pg() { "${as_root[@]}" runuser -u postgres -- "$@"; }
[ "$(id -un)" = postgres ] && as_pg() { "$@"; }

if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  if [ ! -f "$data/PG_VERSION" ]; then
    "${as_root[@]}" rm -rf "$data"
    "${as_root[@]}" install -d -o postgres -g postgres -m 700 "$data"
    as_pg "$bin/initdb" -D "$data" -A trust -U postgres >/dev/null
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-h 127.0.0.1 -p $port -k /tmp -c fsync=off" start >/dev/null
fi

psql_pg() { as_pg psql -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_pg -c "select 1 from pg_roles where rolname='newsbot'")" != 1 ]; then
  psql_pg -c "create role newsbot login superuser password 'newsbot'" >/dev/null
fi
if [ "$(psql_pg -c "select 1 from pg_database where datname='newsbot'")" != 1 ]; then
  psql_pg -c "create database newsbot owner newsbot" >/dev/null
fi
echo "$url"
