#!/usr/bin/env bash
# The container test: builds the image and runs it exactly as the README's
# "Container" section says, then the compose file with PostgreSQL, posting to
# a fake Mastodon server inside the compose network. Prints its figures (image
# size, start to ready and to healthy, stop time) and writes them to
# .cache/container/report.json. Exit 0: passed; 77: skipped (no engine can run
# here, reason on stderr); anything else: failed.
#
# No registry but Debian's, PyPI and npm is needed: the base is made from
# Debian packages (base-image.sh) and tagged with the Dockerfile's default
# base name, python:3.11-slim-bookworm, in this engine unless a real image of
# that name is there already. The README's commands run with their own names
# (newsbot -> newsbot-ctest-<pid>) and port, so that they never touch an
# operator's container or volumes, nor those of another run of this test on
# the same engine. The images are kept as newsbot-ctest:last(-sample), so that
# the next run builds from the engine's cache.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[container] %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
# Whether the container's log has a line matching $1 (the rest: docker logs'
# arguments). Read whole first: `docker logs | grep -q` fails under pipefail
# when grep stops reading before the log ends.
logged() {
  local pattern=$1 text
  shift
  text=$(docker logs "$@" 2>&1)
  grep -q -- "$pattern" <<<"$text"
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

code=0
tests/container/start-docker.sh || code=$?
[ "$code" -eq 0 ] || exit "$code"

name=newsbot-ctest-$$
port=$(free_port)
report=.cache/container/report.json
mkdir -p .cache/container
compose=(docker-compose)
docker compose version >/dev/null 2>&1 && compose=(docker compose)
export COMPOSE_PROJECT_NAME=$name

cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  if docker image inspect "$name" >/dev/null 2>&1; then
    docker tag "$name" newsbot-ctest:last && docker rmi "$name" >/dev/null 2>&1 || true
  fi
  if docker image inspect "$name:sample" >/dev/null 2>&1; then
    docker tag "$name:sample" newsbot-ctest:last-sample && docker rmi "$name:sample" >/dev/null 2>&1 || true
  fi
  docker volume rm "$name-data" "$name-public" >/dev/null 2>&1 || true
  if [ -n "${NEWSBOT_TEST_STORE:-}" ]; then
    "${compose[@]}" down --volumes --timeout 5 >/dev/null 2>&1 || true
    rm -rf "$NEWSBOT_TEST_STORE"
  fi
}
trap cleanup EXIT
cleanup

# -- the base image -------------------------------------------------------------
base=$(tests/container/base-image.sh)
default_base=python:3.11-slim-bookworm
if ! docker image inspect "$default_base" >/dev/null 2>&1 \
  || [ "$(docker image inspect -f '{{index .Config.Labels "org.newsbot.test-base"}}' "$default_base")" = yes ]; then
  docker tag "$base" "$default_base"
  say "base: $base (Debian 12 packages), tagged $default_base"
else
  say "base: $default_base as found in this engine"
fi

# -- the README's commands --------------------------------------------------------
# Each command of the section's first block (continuation lines joined), with
# the test's names and port.
mapfile -t commands < <(python3 - "$name" "$port" <<'PY'
import re, sys
name, port = sys.argv[1], sys.argv[2]
text = open("README.md", encoding="utf-8").read()
section = text.split("### Container\n", 1)[1]
block = section.split("```sh\n", 1)[1].split("```", 1)[0]
for command in block.replace("\\\n", " ").splitlines():
    command = re.sub(r"\bnewsbot\b", name, command)
    print(command.replace("127.0.0.1:8080:8080", f"127.0.0.1:{port}:8080"))
PY
)
[ "${#commands[@]}" -eq 5 ] || fail "the README's container block has ${#commands[@]} commands, expected 5"
expect() { [[ "${commands[$1]}" == "$2"* ]] || fail "README command $1 is not '$2...': ${commands[$1]}"; }
expect 0 "docker build "
expect 1 "docker run -d "
expect 2 "docker inspect "
expect 3 "docker stop "
expect 4 "docker start "
run() { say "\$ ${commands[$1]}"; bash -c "${commands[$1]}"; }

started=$(now)
run 0 > .cache/container/build.log 2>&1 || { tail -n 20 .cache/container/build.log >&2; fail "docker build failed"; }
build_seconds=$(since "$started")
context=$(tr '\r' '\n' < .cache/container/build.log | sed -n 's/^Sending build context to Docker daemon *//p' | tail -n 1 | tr -d '[:space:]')
say "build context: ${context:-size not reported by this builder}"
size=$(docker image inspect -f '{{.Size}}' "$name")
size_mb=$((size / 1000000))
say "image built in ${build_seconds} s: ${size_mb} MB"
[ -z "$(docker run --rm --entrypoint ls "$name" -A /srv/content)" ] || fail "the runtime image carries articles"
docker build -q --target sample -t "$name:sample" . >/dev/null
docker run --rm --entrypoint sh "$name:sample" -c 'ls /srv/content/*/*.md >/dev/null' \
  || fail "the sample target has no sample store"

wait_healthy() {  # $1: seconds at most; prints the seconds it took
  local t0 status
  t0=$(now)
  while :; do
    status=$(bash -c "${commands[2]}" | sed 's/ *#.*//')
    [ "$status" = healthy ] && break
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || fail "the container stopped: $(docker logs --tail 5 "$name" 2>&1)"
    python3 -c "import sys, time; sys.exit(time.time() - float(sys.argv[1]) > float(sys.argv[2]))" "$t0" "$1" \
      || fail "not healthy after $1 s (status: $status)"
    sleep 0.2
  done
  since "$t0"
}

started=$(now)
run 1 >/dev/null
ready=""
for _ in $(seq 300); do
  if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then ready=$(since "$started"); break; fi
  sleep 0.1
done
[ -n "$ready" ] || fail "/readyz never answered 200: $(docker logs --tail 5 "$name" 2>&1)"
wait_healthy 60 >/dev/null
healthy_total=$(since "$started")
say "ready (/readyz 200) ${ready} s after docker run; Docker says healthy after ${healthy_total} s"

# What the README promises about the running container.
[ "$(docker exec "$name" id -u)" = 10001 ] || fail "not running as uid 10001"
docker exec "$name" sh -c 'touch /opt/x' 2>/dev/null && fail "the root filesystem is writable"
docker exec "$name" sh -c 'touch /srv/content/x' 2>/dev/null && fail "the store is writable"
docker exec "$name" sh -c 'touch /srv/data/x /srv/public/x && rm /srv/data/x /srv/public/x' \
  || fail "the data and output volumes are not writable"
for feed in rss.xml atom.xml feed.json index.html; do
  curl -sf "http://127.0.0.1:$port/$feed" -o ".cache/container/$feed" || fail "/$feed not served"
done
grep -q '<rss' .cache/container/rss.xml || fail "rss.xml is not RSS"
grep -q '<feed' .cache/container/atom.xml || fail "atom.xml is not Atom"
grep -q 'https://news.example.org/articles/' .cache/container/feed.json \
  || fail "feed.json does not link under site.base_url"
# The build is logged just after it is recorded as done (which /readyz reports).
for _ in $(seq 50); do
  logged '"message": "feeds rebuilt", "read": [1-9]' "$name" && break
  sleep 0.2
done
logged '"message": "feeds rebuilt", "read": [1-9]' "$name" \
  || fail "the first start read no article: $(docker logs --tail 5 "$name" 2>&1)"
# The status page: seen from inside the container (loopback), not through the
# published port (the engine's gateway is the client there).
docker exec "$name" python3 -c 'import json, urllib.request as u; json.load(u.urlopen("http://127.0.0.1:8080/status.json"))' \
  || fail "/status.json not served on loopback inside the container"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/status")" = 404 ] \
  || fail "/status answered a client that is not on loopback"
logged '"logger": "newsbot.access", "message": "GET /status.json 200"' "$name" \
  || fail "no access-log line for /status.json"

started=$(now)
run 3 >/dev/null
stop_seconds=$(since "$started")
[ "$(docker inspect -f '{{.State.ExitCode}}' "$name")" = 0 ] || fail "exit code $(docker inspect -f '{{.State.ExitCode}}' "$name") after SIGTERM"
logged '"message": "received SIGTERM"' "$name" || fail "SIGTERM was not seen"
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= 20)" "$stop_seconds" || fail "stop took ${stop_seconds} s"
say "SIGTERM: stopped in ${stop_seconds} s with exit code 0"

restarted_at=$(date -u +%Y-%m-%dT%H:%M:%S)
run 4 >/dev/null
wait_healthy 60 >/dev/null
curl -sf "http://127.0.0.1:$port/rss.xml" >/dev/null || fail "no feed after the restart"
sleep 1
if logged '"message": "feeds rebuilt"' --since "$restarted_at" "$name"; then
  fail "the restart read the store again: the state was not kept"
fi
docker exec "$name" test -s /srv/data/newsbot.db || fail "no state database in the data volume"
say "restart: same state (nothing read again), feeds served"
docker rm -f "$name" >/dev/null

# -- compose with PostgreSQL and a fake Mastodon server -----------------------------
postgres_image=newsbot-test/postgres:15
docker build -q --build-arg BASE_IMAGE="$base" -t "$postgres_image" tests/container/postgres >/dev/null
NEWSBOT_TEST_STORE=$(mktemp -d /tmp/newsbot-ctest-store.XXXXXX)
export NEWSBOT_TEST_STORE
cp -r content/. "$NEWSBOT_TEST_STORE/"
article_id=ctest-$(date -u +%Y%m%d%H%M%S)
cat > "$NEWSBOT_TEST_STORE/$article_id.md" <<MD
---
title: Container test article of $(date -u +%Y-%m-%d)
date: $(date -u '+%Y-%m-%d %H:%M')
tags: [Test]
---
An article written by the container test, so that there is something new to post.
MD
chmod -R a+rX "$NEWSBOT_TEST_STORE"

# The README's compose block, as written, with the test's images and names in
# compose's own variables.
mapfile -t compose_commands < <(python3 - <<'PY'
text = open("README.md", encoding="utf-8").read()
section = text.split("### Container\n", 1)[1]
block = section.split("```sh\n", 2)[2].split("```", 1)[0]
for line in block.splitlines():
    print(line.split("#", 1)[0].strip())
PY
)
[ "${compose_commands[0]}" = "./dev secrets" ] || fail "README compose block: ${compose_commands[0]}"
[ "${compose_commands[1]}" = "docker compose up -d" ] || fail "README compose block: ${compose_commands[1]}"
say "\$ ./dev secrets"
./dev secrets >/dev/null
export POSTGRES_IMAGE=$postgres_image NEWSBOT_IMAGE=$name NEWSBOT_PORT=$port
export MASTODON_SERVER=http://mastodon:3000/
export NEWSBOT_TEST_TOKEN NEWSBOT_TEST_FAKE_PORT
NEWSBOT_TEST_TOKEN=$(cat secrets/mastodon_token.txt)
NEWSBOT_TEST_FAKE_PORT=$(free_port)
export COMPOSE_FILE=compose.yaml:tests/container/compose.test.yaml
say "\$ ${compose[*]} up -d   (COMPOSE_FILE=$COMPOSE_FILE)"
started=$(now)
"${compose[@]}" up -d >/dev/null 2>&1 || { "${compose[@]}" logs --tail 20 >&2; fail "compose up failed"; }
newsbot_id=$("${compose[@]}" ps -q newsbot)
wait_compose_healthy() {
  for _ in $(seq 300); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$newsbot_id")" = healthy ] && return 0
    sleep 0.2
  done
  "${compose[@]}" logs --tail 20 >&2
  fail "the compose service never turned healthy"
}
wait_compose_healthy
compose_healthy=$(since "$started")
say "compose: PostgreSQL and newsbot healthy ${compose_healthy} s after up"
fake="http://127.0.0.1:$NEWSBOT_TEST_FAKE_PORT/__fake__/statuses"
posted=""
for _ in $(seq 150); do
  if grep -q "articles/$article_id/" <<<"$(curl -sf "$fake")"; then posted=yes; break; fi
  sleep 0.2
done
[ -n "$posted" ] || { "${compose[@]}" logs --tail 20 newsbot >&2; fail "the new article was not posted"; }
count=$(curl -sf "$fake?summary=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])')
say "compose: the new article posted to the fake server ($count status)"
password=$(cat secrets/db_password.txt)
for id in $("${compose[@]}" ps -q); do
  grep -qF "$password" <<<"$(docker inspect "$id")" && fail "the database password shows in docker inspect"
done
state=$("${compose[@]}" exec -T newsbot newsbot state 2>&1) || true
grep -q "1 posted" <<<"$state" || fail "newsbot state does not show the post: $state"

# newsbot and PostgreSQL anew on their volumes; the fake server keeps what it got.
"${compose[@]}" stop --timeout 30 newsbot db >/dev/null 2>&1
"${compose[@]}" rm -f newsbot db >/dev/null 2>&1
"${compose[@]}" up -d >/dev/null 2>&1 || fail "second compose up failed"
newsbot_id=$("${compose[@]}" ps -q newsbot)
wait_compose_healthy
state=$("${compose[@]}" exec -T newsbot newsbot state 2>&1) || true
grep -q "1 posted" <<<"$state" || fail "the state was lost with the containers: $state"
sleep 2
again=$(curl -sf "$fake?summary=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])')
[ "$again" = "$count" ] || fail "posted again after a restart ($count -> $again)"
say "compose: new containers on the same volumes: the post is remembered and not sent again"

python3 - "$report" "$size" "$build_seconds" "$context" "$ready" "$healthy_total" \
  "$stop_seconds" "$compose_healthy" "$base" <<'PY'
import json, sys
path, size, build, context, ready, healthy, stop, compose, base = sys.argv[1:]
figures = {
    "image_bytes": int(size), "build_seconds": float(build), "context": context.strip(),
    "ready_seconds": float(ready), "healthy_seconds": float(healthy),
    "stop_seconds": float(stop), "compose_healthy_seconds": float(compose), "base": base,
}
with open(path, "w", encoding="utf-8") as file:
    json.dump(figures, file, indent=1)
PY
say "passed: image ${size_mb} MB (goal 150), ready ${ready} s, healthy ${healthy_total} s (goal 5), stop ${stop_seconds} s"
