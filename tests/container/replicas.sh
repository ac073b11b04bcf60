#!/usr/bin/env bash
# Two copies of newsbot in containers on one PostgreSQL, posting to one fake
# Mastodon server: the rehearsal of "never twice, never lost, across restarts,
# crashes and several running copies". Each copy has an output volume of its
# own and the same read-only store. New articles arrive, one is edited, one
# withdrawn, and the copy holding the publish lease is killed with SIGKILL
# while a post is on its way to the server, then started again (it takes its
# own leases over at once, within 45 s of the kill, seeing the killed process
# gone by its owner file in the data volume); later killed
# so again and left dead for a while: the other copy must carry on alone once
# the lease runs out (within 90 s: a minute's lease, a pass). Checked at the
# end: each article posted exactly once, the edit made once, the withdrawn
# post deleted once, both output folders byte-identical (but for their
# `.newsbot-build` mark), no error and no warning repeated in the logs,
# `/readyz` 200 on both. Then a thousand old articles at once and one more. Prints its figures and writes them to
# .cache/container/replicas.json. Exit 0: passed; 77: skipped (no engine can
# run here); anything else: failed.
#
#   tests/container/replicas.sh                  # ~3.5 min with the images cached
#   REPLICAS_KEEP=1 tests/container/replicas.sh  # leaves everything for a look
#
# Its own names (newsbot-replicas-<pid>-*) for containers, volumes and the
# network, so that it never touches another run's or an operator's.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '[replicas] %s\n' "$*" >&2; }
fail() {
  say "FAILED: $*"
  for copy in a b; do
    say "--- last lines of copy $copy"
    docker logs --tail 15 "$name-$copy" 2>&1 | cut -c1-300 >&2 || true
  done
  exit 1
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits until the shell condition $2 holds, at most $1 seconds; fails saying $3.
wait_for() {
  local limit=$1 condition=$2 what=$3 t0
  t0=$(now)
  until eval "$condition"; do
    python3 -c "import sys, time; sys.exit(time.time() - float(sys.argv[1]) > float(sys.argv[2]))" "$t0" "$limit" \
      || fail "$what: not within $limit s"
    sleep 0.5
  done
}

code=0
tests/container/start-docker.sh || code=$?
[ "$code" -eq 0 ] || exit "$code"

name=newsbot-replicas-$$
image=newsbot-replicas:last
postgres_image=newsbot-test/postgres:15
work=$(mktemp -d /tmp/newsbot-replicas.XXXXXX)
store=$work/store
secrets=$work/secrets
report=.cache/container/replicas.json
mkdir -p .cache/container "$store" "$secrets"

cleanup() {
  if [ -n "${REPLICAS_KEEP:-}" ]; then
    say "kept (REPLICAS_KEEP): containers, volumes and network $name*, files in $work"
    return
  fi
  docker rm -f "$name-a" "$name-b" "$name-db" "$name-mastodon" "$name-spare" >/dev/null 2>&1 || true
  docker volume rm "$name-public-a" "$name-public-b" "$name-data-a" "$name-data-b" \
    "$name-db" >/dev/null 2>&1 || true
  docker network rm "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# -- images: newsbot from this tree, PostgreSQL from Debian's packages ------------
base=$(tests/container/base-image.sh)
docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 || docker tag "$base" python:3.11-slim-bookworm
started=$(now)
docker build -q -t "$image" . >"$work/build.log" 2>&1 || { tail -n 20 "$work/build.log" >&2; fail "docker build"; }
docker build -q --build-arg BASE_IMAGE="$base" -t "$postgres_image" tests/container/postgres >/dev/null
say "images ready in $(since "$started") s"

# -- the store, the secrets, the network --------------------------------------------
cp -r content/. "$store/"
token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$secrets/newsbot_state__database_password"
printf '%s\n' "$token" >"$secrets/mastodon_token"
cp "$secrets/newsbot_state__database_password" "$work/db_password"
chmod -R a+rX "$store" "$secrets" "$work/db_password"
chmod a+rx "$work"

# An article of now, written as an editor's tool does: a new file renamed into place.
article() {  # id title [front matter lines...]
  local id=$1 title=$2
  shift 2
  {
    printf -- '---\nid: %s\ntitle: %s\ndate: %s\ntags: [Rehearsal]\n' "$id" "$title" "$(date -u '+%Y-%m-%d %H:%M:%S+00:00')"
    for line in "$@"; do printf '%s\n' "$line"; done
    printf -- '---\nA line about %s, written by the rehearsal of two copies.\n' "$title"
  } >"$store/.$id.tmp"
  chmod a+r "$store/.$id.tmp"
  mv "$store/.$id.tmp" "$store/$id.md"
}

docker network create "$name" >/dev/null
docker run -d --name "$name-db" --network "$name" --network-alias db \
  -e POSTGRES_USER=newsbot -e POSTGRES_DB=newsbot -e POSTGRES_PASSWORD_FILE=/run/db_password \
  -v "$work/db_password:/run/db_password:ro" -v "$name-db:/var/lib/postgresql/data" \
  "$postgres_image" >/dev/null
fake_port=$(free_port)
docker run -d --name "$name-mastodon" --network "$name" --network-alias mastodon \
  -p "127.0.0.1:$fake_port:3000" -v "$PWD/tests/support/fakemastodon.py:/fake/fakemastodon.py:ro" \
  --entrypoint python3 "$image" /fake/fakemastodon.py --host 0.0.0.0 --port 3000 --token "$token" >/dev/null
fake=http://127.0.0.1:$fake_port/__fake__
wait_for 60 "docker exec $name-db pg_isready -q -h 127.0.0.1 -U newsbot -d newsbot" "PostgreSQL ready"
wait_for 30 "curl -sf $fake/statuses?summary=1 >/dev/null" "the fake Mastodon server answers"
# Each post answered after 2 s: the pass is still sending when the copy is killed.
curl -sf -X POST -H 'Content-Type: application/json' -d '{"latency": 2.0}' "$fake/config" >/dev/null

declare -A port
start_copy() {  # a or b
  docker run -d --name "$name-$1" --network "$name" --read-only --tmpfs /tmp \
    -p "127.0.0.1:${port[$1]}:8080" \
    -v "$store:/srv/content:ro" -v "$name-data-$1:/srv/data" -v "$name-public-$1:/srv/public" \
    -v "$secrets:/run/secrets:ro" \
    -e NEWSBOT_SITE__BASE_URL=https://news.example.org/ \
    -e NEWSBOT_STATE__DATABASE_URL=postgresql://newsbot@db/newsbot \
    -e NEWSBOT_TARGETS__MAIN__SERVER=http://mastodon:3000/ \
    -e NEWSBOT_TARGETS__MAIN__TOKEN_FILE=/run/secrets/mastodon_token \
    -e NEWSBOT_TARGETS__MAIN__PACING=false \
    -e NEWSBOT_SERVICE__PUBLISH_EVERY_SECONDS=5 \
    -e NEWSBOT_SERVICE__JITTER_SECONDS=1 \
    "$image" >/dev/null
}
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port[$1]}/readyz")" = 200 ]; }
port[a]=$(free_port)
port[b]=$(free_port)
started=$(now)
start_copy a
start_copy b
wait_for 120 "ready a && ready b" "both copies ready"
say "two copies ready $(since "$started") s after docker run (one upgrades the schema, both build)"

# Statuses of the fake server per article: its own link is the first article link of a
# post that replies to nothing (related links follow it).
tally() {
  curl -sf "$fake/statuses" | python3 -c '
import json, re, sys
counts = {}
for status in json.load(sys.stdin)["statuses"]:
    if status.get("in_reply_to_id"):
        continue
    found = re.search(r"/articles/([^/\s]+)/", status["text"])
    key = found.group(1) if found else "?"
    posts, edits, deleted = counts.get(key, (0, 0, 0))
    counts[key] = (posts + 1, edits + status["edits"], deleted + status["deleted"])
print(json.dumps(counts, sort_keys=True))'
}
# Whether every article named is posted at least once ("posts" of `tally`).
posted() {
  local counts
  counts=$(tally) || return 1
  python3 -c 'import json, sys; c = json.loads(sys.argv[1]); sys.exit(not all(k in c for k in sys.argv[2:]))' "$counts" "$@"
}
statuses() { curl -sf "$fake/statuses?summary=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["total"])'; }
lease_holder() {  # which copy holds the publish lease of target main ("" if none)
  local owner
  owner=$(docker exec "$name-db" psql -qtA -U newsbot -d newsbot \
    -c "select owner from leases where name = 'publish:main'" 2>/dev/null) || true
  for copy in a b; do
    [ -n "$owner" ] && [[ "$owner" == "$(docker inspect -f '{{.Config.Hostname}}' "$name-$copy")/"* ]] && echo "$copy"
  done
  return 0
}

# -- new articles, and the copy sending them killed mid-pass ----------------------------
[ "$(statuses)" = 0 ] || fail "the sample store (articles of 2015-2020) was posted: $(tally)"
started=$(now)
article one "First rehearsal article on river levels"
article two "Second rehearsal article on a library opening"
article three "Third rehearsal article on a cycling race"
wait_for 60 '[ "$(statuses)" -ge 1 ]' "the first new article posted"
first_post=$(since "$started")
victim=$(lease_holder)
[ -n "$victim" ] || fail "no copy holds the publish lease while posting"
pid_namespace() { docker exec "$name-$1" readlink /proc/self/ns/pid; }
namespace_before=$(pid_namespace "$victim")
docker kill --signal KILL "$name-$victim" >/dev/null
killed_at=$(now)
say "first post $first_post s after the files arrived; copy $victim (holding the publish lease) killed with SIGKILL at $(statuses) statuses"
# Another container started meanwhile, as on a busy host, takes the namespace numbers that
# the killed one freed: the copy started again runs in a pid namespace of another number
# (on an idle host it would get the old number, and see its predecessor's pid is gone).
docker run -d --name "$name-spare" --network none --entrypoint sleep "$image" 600 >/dev/null
sleep 1
docker start "$name-$victim" >/dev/null
wait_for 60 "ready $victim" "copy $victim ready again"
say "copy $victim ready again $(since "$killed_at") s after the kill, pid namespace $namespace_before -> $(pid_namespace "$victim")"
docker rm -f "$name-spare" >/dev/null
wait_for 900 "posted one two three" "the three articles posted after the kill"
all_posted=$(since "$killed_at")
say "all three posted $all_posted s after the kill: $(tally)"
# The copy started again shares its data volume with the killed process: it sees, by the
# owner file that process no longer holds locked, that its leases are free, and takes them
# over without waiting a minute for them to run out.
python3 -c "import sys; sys.exit(float(sys.argv[1]) > 45)" "$all_posted" \
  || fail "the three articles waited $all_posted s: the restarted copy waited for its own lease"

# -- an edit, a withdrawal and one more article --------------------------------------------
curl -sf -X POST -H 'Content-Type: application/json' -d '{"latency": 0.2}' "$fake/config" >/dev/null
started=$(now)
article one "First rehearsal article on river levels, revised"
article two "Second rehearsal article on a library opening" "withdrawn: true"
article four "Fourth rehearsal article on a harbour crane"
changed() {
  tally | python3 -c 'import json, sys; c = json.load(sys.stdin)
sys.exit(not (c.get("one", (0, 0, 0))[1] >= 1 and c.get("two", (0, 0, 0))[2] >= 1 and "four" in c))'
}
wait_for 120 changed "the edit, the deletion and the fourth post"
say "edit, deletion and new post done $(since "$started") s after the files changed"

# -- the lease holder killed for good: the other copy carries on alone ------------------------------
# In a container of its own (a data volume of its own, so its owner file is out of
# sight), the killed copy cannot be seen to be gone: the survivor
# waits for its lease to run out, then looks for the post whose answer was lost.
curl -sf -X POST -H 'Content-Type: application/json' -d '{"latency": 3.0}' "$fake/config" >/dev/null
before=$(statuses)
article five "Fifth rehearsal article on a bakery strike"
wait_for 60 '[ "$(statuses)" -gt "$before" ]' "the fifth article sent"
victim=$(lease_holder)
[ -n "$victim" ] || fail "no copy holds the publish lease while posting the fifth article"
survivor=b
[ "$victim" = b ] && survivor=a
docker kill --signal KILL "$name-$victim" >/dev/null
killed_at=$(now)
curl -sf -X POST -H 'Content-Type: application/json' -d '{"latency": 0.2}' "$fake/config" >/dev/null
article six "Sixth rehearsal article on a ferry timetable"
wait_for 300 "posted five six" "the sixth article posted by copy $survivor alone"
alone=$(since "$killed_at")
say "copy $victim killed for good while sending the fifth article; copy $survivor posted the sixth $alone s later"
python3 -c "import sys; sys.exit(float(sys.argv[1]) > 90)" "$alone" || fail "copy $survivor waited $alone s for the lease of a dead copy"
ready "$survivor" || fail "/readyz of copy $survivor while alone: $(curl -s "http://127.0.0.1:${port[$survivor]}/readyz")"
docker start "$name-$victim" >/dev/null
wait_for 60 "ready $victim" "copy $victim ready again"

# -- a thousand articles at once, then one more ---------------------------------------------------
# Old news (not posted: older than the backlog horizon), but a build and an outbox sync of
# a thousand articles on both copies at once; then one article, which each copy's folder
# gets with the pages that article changes, not the whole site again.
mkdir "$work/bulk"
python3 - "$work/bulk" <<'PY'
import sys
for n in range(1000):
    with open(f"{sys.argv[1]}/bulk-{n:04d}.md", "w", encoding="utf-8") as file:
        file.write(f"---\ntitle: Archive item {n} on the tram network\ndate: 2024-05-{1 + n % 28:02d}\n"
                   f"tags: [Archive{n % 7}]\n---\n" + "A paragraph of the archive. " * 40 + "\n")
PY
chmod -R a+rX "$work/bulk"
started=$(now)
mv "$work/bulk" "$store/bulk"
bulk_built() { docker exec "$name-$1" test -f /srv/public/articles/bulk/bulk-0999/index.html; }
wait_for 240 "bulk_built a && bulk_built b" "the thousand articles in both folders"
say "a thousand articles in both folders $(since "$started") s after they arrived"
build_seconds() {  # the copy's last build: when, and how long it took
  curl -sf "http://127.0.0.1:${port[$1]}/readyz" | python3 -c 'import json, sys; b = json.load(sys.stdin)["build"]; print(b["at"], round(b["seconds"], 2))'
}
sleep 5
article seven "Seventh rehearsal article on a night bus"
wait_for 120 "posted seven" "the seventh article posted"
sleep 5
say "one article after the thousand: last builds (at, seconds): a $(build_seconds a); b $(build_seconds b)"

# -- both folders: the same files, the same bytes ------------------------------------------------
same_output() {
  rm -rf "$work/out-a" "$work/out-b"
  docker cp "$name-a:/srv/public" "$work/out-a" 2>/dev/null && docker cp "$name-b:/srv/public" "$work/out-b" 2>/dev/null \
    && grep -q 'revised' "$work/out-a/articles/one/index.html" "$work/out-b/articles/one/index.html" 2>/dev/null \
    && [ -f "$work/out-a/articles/seven/index.html" ] && [ -f "$work/out-b/articles/seven/index.html" ] \
    && diff -r -q -x .newsbot-build "$work/out-a" "$work/out-b" >"$work/diff.txt" 2>&1
}
started=$(now)
wait_for 120 same_output "both output folders alike (last diff: $(head -n 5 "$work/diff.txt" 2>/dev/null))"
files=$(find "$work/out-a" -type f | wc -l)
[ ! -e "$work/out-a/articles/two" ] && [ ! -e "$work/out-b/articles/two" ] || fail "the withdrawn page is still there"
say "output folders identical ($files files each, .newsbot-build aside) $(since "$started") s after the posts"

# Nothing more happens: no second post, edit or deletion once things settled.
settled=$(tally)
sleep 15
[ "$(tally)" = "$settled" ] || fail "the fake server's statuses changed after settling: $settled -> $(tally)"
verdict=$(python3 - "$settled" <<'PY'
import json, sys
counts = json.loads(sys.argv[1])
want = {"one": [1, 1, 0], "two": [1, 0, 1], "three": [1, 0, 0], "four": [1, 0, 0],
        "five": [1, 0, 0], "six": [1, 0, 0], "seven": [1, 0, 0]}
wrong = {k: counts.get(k) for k, v in want.items() if counts.get(k) != v}
extra = sorted(set(counts) - set(want))
print(json.dumps({"wrong": wrong, "extra": extra}))
PY
)
[ "$verdict" = '{"wrong": {}, "extra": []}' ] || fail "posts per article (posts, edits, deletions): $settled; $verdict"
say "posts per article (posts, edits, deletions): $settled"

# -- readiness and logs -----------------------------------------------------------------------------
for copy in a b; do
  ready "$copy" || fail "/readyz of copy $copy: $(curl -s "http://127.0.0.1:${port[$copy]}/readyz")"
done
for copy in a b; do
  docker logs "$name-$copy" >"$work/log-$copy.txt" 2>&1
done
python3 - "$work/log-a.txt" "$work/log-b.txt" >"$work/logs.json" <<'PY'
import collections, json, re, sys
result = {}
for path in sys.argv[1:]:
    seen = collections.Counter()
    for line in open(path, encoding="utf-8", errors="replace"):
        try:
            record = json.loads(line)
        except ValueError:
            seen[("raw", line.strip()[:160])] += 1
            continue
        if record.get("level") in ("warning", "error", "critical"):
            message = re.sub(r"\d+(\.\d+)?", "N", str(record.get("message")))[:160]
            seen[(record["level"], message)] += 1
    result[path.rsplit("-", 1)[-1][0]] = [[level, message, n] for (level, message), n in seen.items()]
print(json.dumps(result))
PY
say "warnings and errors logged (level, message, times): $(cat "$work/logs.json")"
bad=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(sum(1 for v in r.values() for level, m, n in v if level != "warning" or n > 1))' "$work/logs.json")
[ "$bad" = 0 ] || fail "an error, or a warning repeated, in the logs: $(cat "$work/logs.json")"

python3 - "$report" "$first_post" "$all_posted" "$alone" "$files" "$settled" "$work/logs.json" <<'PY'
import json, sys
path, first, after_kill, alone, files, counts, logs = sys.argv[1:]
figures = {
    "first_post_seconds": float(first), "all_posted_after_kill_seconds": float(after_kill),
    "survivor_posted_after_kill_seconds": float(alone),
    "output_files": int(files), "per_article": json.loads(counts),
    "logged": json.load(open(logs, encoding="utf-8")),
}
with open(path, "w", encoding="utf-8") as file:
    json.dump(figures, file, indent=1)
PY
say "passed"
