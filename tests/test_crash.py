"""Exactly once under SIGKILL, faults, forgetful servers and two publishers at once.

The publisher runs in subprocesses against fake servers in this process; the
store is a few hundred generated articles (recent, so no backlog protection
applies) and pacing is off.

- Crash test: ``tests/support/publish_loop.py`` is killed with SIGKILL at random
  moments (seeded), at least ``MIN_KILLS`` times, and started again until it
  says it is done; it publishes to two targets at once, one on a server that
  honours Idempotency-Key and one on a server that ignores it; a second run
  adds 20 % faults on posting (5xx, timeout, answer dropped after the post was
  made, 429). Afterwards each server holds exactly one status per article and
  the state says posted, with that status's id.
- Two ``newsbot publish`` processes at once on one database (SQLite file and
  PostgreSQL): the publish lease lets one of them post, and every article is
  posted once.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import select

from newsbot.settings import Settings
from newsbot.state.database import database_url, open_database
from newsbot.state.schema import deliveries, post_related
from support.fakemastodon import SOFTWARE, FakeMastodon
from support.posting import TOKEN, environment, generate_store, own_urls, posts_by_url, settings_for
from support.posting import target as target_settings
from support.stores import opened

TESTS = Path(__file__).resolve().parent
DRIVER = TESTS / "support" / "publish_loop.py"
NEWSBOT = Path(sys.executable).parent / "newsbot"

ARTICLES = 220
MIN_KILLS = 50
MAX_KILLS = 80
"""After this many kills the victim is left to finish: enough to have hit every window."""
SEED = 20_261_128
KILL_AFTER = (0.005, 0.3)
"""A life lasts this long (seconds, uniform) after the victim said it is ready."""
FAULT_RATES = {"503": 0.05, "timeout": 0.05, "drop": 0.05, "429": 0.05}
CLIENT_TIMEOUT = 0.4
"""The targets' timeout; the fake's "timeout" fault answers only after TIMEOUT_DELAY."""
TIMEOUT_DELAY = 0.7
LATENCY = 0.01
"""Each answer lags behind what the server did: the window where a death loses an answer."""
TIME_LIMIT = 120.0
"""Seconds one crash run may take before the test gives up on it."""


def _subprocess_env(settings: Settings) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    return {**base, **environment(settings), "PYTHONPATH": str(TESTS)}


def _build(settings: Settings) -> None:
    with opened(settings) as app:
        report = app.builder.build(datetime.now(UTC))
    assert not report.problems, report.problems


def _rows(settings: Settings) -> dict[tuple[str, str], dict[str, Any]]:
    engine = open_database(database_url(settings.state))
    try:
        with engine.connect() as conn:
            return {
                (row.target, row.article_id): dict(row._mapping)
                for row in conn.execute(select(deliveries))
            }
    finally:
        engine.dispose()


def _assert_posted_once(
    settings: Settings, servers: dict[str, FakeMastodon], ids: list[str]
) -> Counter[str]:
    """Each server holds one status per article, and the state names that status."""
    rows = _rows(settings)
    totals: Counter[str] = Counter()
    for name, server in servers.items():
        statuses = server.live_statuses()
        counts = posts_by_url(statuses)
        repeated = {url: n for url, n in counts.items() if n != 1}
        assert not repeated, f"{name}: posted more than once: {repeated}"
        by_url = {url: s for s in statuses for url in own_urls(s["text"])}
        for article_id in ids:
            row = rows[(name, article_id)]
            assert row["state"] == "posted", (name, article_id, row)
            status = by_url.get(row["article_url"])
            assert status is not None, f"{name}: {article_id} is not on the server"
            assert row["status_id"] == status["id"], (name, article_id)
        assert len(counts) == len(ids), f"{name}: {len(counts)} articles posted of {len(ids)}"
        totals[name] = len(statuses)
    return totals


def _kill_until_done(
    settings: Settings, rng: random.Random, stderr: IO[str], max_kills: int = MAX_KILLS
) -> tuple[int, int]:
    """Lives of the victim, each killed after a random while, until one finishes: (kills, lives)."""
    server = subprocess.Popen(
        [sys.executable, str(DRIVER), "--fork-server"],
        env=_subprocess_env(settings),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        assert server.stdout.readline().strip() == "ready"
        kills = lives = 0
        started = time.monotonic()
        while time.monotonic() - started < TIME_LIMIT:
            lives += 1
            life = rng.uniform(*KILL_AFTER) if kills < max_kills else TIME_LIMIT
            server.stdin.write(f"life {life:.4f}\n")
            server.stdin.flush()
            outcome = server.stdout.readline().strip()
            if outcome == "killed":
                kills += 1
                continue
            assert outcome == "exited 0", f"the victim failed ({outcome!r}), see its log"
            return kills, lives
        pytest.fail(f"not done after {kills} kills in {TIME_LIMIT:.0f} s")
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("faults", [False, True], ids=["no-faults", "faults-20pc"])
def test_sigkill_at_random_moments_never_loses_or_doubles_a_post(
    tmp_path: Path, faults: bool
) -> None:
    rng = random.Random(SEED + faults)
    content = tmp_path / "content"
    paths = generate_store(content, ARTICLES, datetime.now(UTC))
    ids = [path.removesuffix(".md") for path in paths]
    with (
        FakeMastodon(token=TOKEN, seed=SEED) as honest,
        FakeMastodon(token=TOKEN, seed=SEED + 1, ignore_idempotency_key=True) as forgetful,
    ):
        servers = {"honest": honest, "forgetful": forgetful}
        for server in servers.values():
            server.configure(timeout_delay=TIMEOUT_DELAY, rate_reset_after=0.2, latency=LATENCY)
            if faults:
                server.set_fault_rates("post_status", FAULT_RATES)
        settings = settings_for(
            tmp_path,
            content,
            {
                name: target_settings(server.base_url, timeout=CLIENT_TIMEOUT)
                for name, server in servers.items()
            },
        )
        _build(settings)
        errors = tmp_path / "victim.log"
        started = time.monotonic()
        with errors.open("w") as stderr:
            kills, lives = _kill_until_done(settings, rng, stderr)
        seconds = time.monotonic() - started
        faulted = {
            name: Counter(r["fault"] for r in server.requests if r["fault"])
            for name, server in servers.items()
        }
        lookups = {
            name: sum(r["kind"] == "account_statuses" for r in server.requests)
            for name, server in servers.items()
        }
        totals = _assert_posted_once(settings, servers, ids)
    print(
        f"\ncrash run (faults={faults}): {ARTICLES} articles x {len(servers)} targets, "
        f"{kills} kills in {lives} lives, {seconds:.1f} s; statuses {dict(totals)}; "
        f"reconciliation lookups {lookups}; faults {faulted}"
    )
    assert kills >= MIN_KILLS, f"only {kills} kills: the store is too small to test anything"


@pytest.mark.slow
def test_two_publishers_at_once_post_each_article_once(tmp_path: Path, database_url: str) -> None:
    content = tmp_path / "content"
    paths = generate_store(content, 60, datetime.now(UTC))
    ids = [path.removesuffix(".md") for path in paths]
    with FakeMastodon(token=TOKEN, ignore_idempotency_key=True) as server:
        # Every post takes a while, so that the two passes surely overlap.
        server.configure(slow_delay=0.03)
        server.set_fault_rates("post_status", {"slow": 1.0})
        settings = settings_for(
            tmp_path, content, {"main": target_settings(server.base_url)}, database_url
        )
        _build(settings)
        env = _subprocess_env(settings)
        command = [str(NEWSBOT), "publish", "--no-build", "--no-pacing"]
        outputs = []
        for _ in range(3):
            both = [
                subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                for _ in range(2)
            ]
            for process in both:
                out, err = process.communicate(timeout=120)
                assert process.returncode == 0, err
                outputs.append(out)
            if all(row["state"] == "posted" for row in _rows(settings).values()):
                break
        _assert_posted_once(settings, {"main": server}, ids)
    skipped = sum("skipped, another process is publishing" in out for out in outputs)
    assert skipped >= 1, f"the two passes never overlapped: {outputs}"


PROFILE_ARTICLES = 24
PROFILE_KILLS = 12
"""Per server profile: a small store and a dozen kills, four visibilities at once."""
VISIBILITIES = ("public", "unlisted", "private", "direct")
SOFTWARE_VISIBILITIES = {"friendica": ("public", "unlisted", "private")}
"""Friendica cannot post direct statuses (a target asking for them stops, see test_profiles)."""


@pytest.mark.slow
@pytest.mark.parametrize("software", [*sorted(SOFTWARE), "no-listing"])
def test_every_profile_and_visibility_posts_once_under_sigkill(
    tmp_path: Path, software: str
) -> None:
    """Four targets (one per visibility) on four servers of one profile, killed at random.

    "no-listing" is a server of unknown software that lists no non-public
    post of the account's and ignores Idempotency-Key: there a request whose outcome is lost
    becomes uncertain; the test then does what the operator would (looks at
    the server, runs ``newsbot resolve``) and the rest is posted.
    """
    rng = random.Random(f"{SEED}:{software}")
    content = tmp_path / "content"
    paths = generate_store(content, PROFILE_ARTICLES, datetime.now(UTC))
    ids = [path.removesuffix(".md") for path in paths]
    preset = "takahe" if software == "no-listing" else software
    with contextlib.ExitStack() as stack:
        servers = {
            visibility: stack.enter_context(
                FakeMastodon(token=TOKEN, seed=SEED + n, software=preset)
            )
            for n, visibility in enumerate(VISIBILITIES)
            if visibility in SOFTWARE_VISIBILITIES.get(software, VISIBILITIES)
        }
        for server in servers.values():
            server.configure(timeout_delay=TIMEOUT_DELAY, latency=LATENCY)
            server.set_fault_rates("post_status", {"drop": 0.1, "timeout": 0.05})
            if software == "no-listing":
                server.configure(home_timeline=False)
        settings = settings_for(
            tmp_path,
            content,
            {
                visibility: target_settings(
                    server.base_url,
                    timeout=CLIENT_TIMEOUT,
                    visibility=visibility,
                    # Replies under crashes too: related links forced into one on two targets.
                    related_in="reply" if visibility in ("public", "private") else "auto",
                    # A server newsbot has no profile for: the most careful rules.
                    profile="unknown" if software == "no-listing" else "auto",
                )
                for visibility, server in servers.items()
            },
        )
        _build(settings)
        with (tmp_path / "victim.log").open("w") as stderr:
            kills, _ = _kill_until_done(settings, rng, stderr, max_kills=PROFILE_KILLS)
        resolved = _resolve_uncertain(settings, servers)
        if resolved:
            for server in servers.values():
                server.clear_faults()
            with (tmp_path / "after.log").open("w") as stderr:
                _kill_until_done(settings, rng, stderr, max_kills=0)
        totals = _assert_posted_once(settings, servers, ids)
        _assert_replies_once(settings, servers)
    if software != "no-listing":
        assert resolved == 0, "a server that lists every visibility left uncertain deliveries"
    replies = {
        target: sum(1 for s in server.live_statuses() if s["in_reply_to_id"])
        for target, server in servers.items()
    }
    # Every generated article has related articles: each post on a "reply" target has one.
    assert replies["public"] == replies["private"] == len(ids), replies
    print(
        f"\n{software}: {kills} kills, statuses {dict(totals)}, replies {replies}, "
        f"{resolved} resolved by hand"
    )


def _resolve_uncertain(settings: Settings, servers: dict[str, FakeMastodon]) -> int:
    """What an operator does: look for each uncertain post on its server, then resolve it."""
    resolved = 0
    env = _subprocess_env(settings)
    for (target, article_id), row in _rows(settings).items():
        if row["state"] != "uncertain":
            continue
        found = [
            s for s in servers[target].live_statuses() if row["article_url"] in own_urls(s["text"])
        ]
        answer = ["--posted", found[0]["url"]] if found else ["--not-posted"]
        done = subprocess.run(
            [str(NEWSBOT), "resolve", target, article_id, *answer],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        resolved += 1
    engine = open_database(database_url(settings.state))
    try:
        with engine.connect() as conn:
            uncertain = list(
                conn.execute(select(post_related).where(post_related.c.reply_state == "uncertain"))
            )
    finally:
        engine.dispose()
    rows = _rows(settings)
    for reply in uncertain:
        parent = rows[(reply.target, reply.article_id)]["status_id"]
        found = [s for s in servers[reply.target].live_statuses() if s["in_reply_to_id"] == parent]
        answer = ["--posted", found[0]["url"]] if found else ["--not-posted"]
        done = subprocess.run(
            [str(NEWSBOT), "resolve", "--reply", reply.target, reply.article_id, *answer],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        resolved += 1
    return resolved


def _assert_replies_once(settings: Settings, servers: dict[str, FakeMastodon]) -> None:
    """At most one reply under each post, and the state names it."""
    engine = open_database(database_url(settings.state))
    try:
        with engine.connect() as conn:
            rows = list(conn.execute(select(post_related)))
    finally:
        engine.dispose()
    for target, server in servers.items():
        statuses = server.live_statuses()
        under = Counter(s["in_reply_to_id"] for s in statuses if s["in_reply_to_id"])
        assert all(n == 1 for n in under.values()), f"{target}: {under}"
        for row in rows:
            if row.target == target and row.reply_state == "posted":
                assert server.status(row.reply_id) is not None
        states = Counter(r.reply_state for r in rows if r.target == target and r.in_reply)
        assert set(states) <= {"posted"}, f"{target}: replies {dict(states)}"


def test_a_post_records_its_related_set_with_its_attempt_and_releases_its_reply_with_its_outcome(
    database_url: str,
) -> None:
    """Two commits per post: nothing can die between the set and the attempt, or between
    the outcome and the reply's release."""
    from newsbot.articles import RelatedLink
    from newsbot.state.deliveries import Attempt, DeliveryStore, KeptSet
    from newsbot.state.replies import RelatedStore

    engine = open_database(database_url)
    try:
        store, related = DeliveryStore(engine), RelatedStore(engine)
        now = datetime(2026, 12, 4, 12, tzinfo=UTC)
        links = (RelatedLink("Other", "https://x/other"),)
        kept = KeptSet(links, ("other",), in_reply=True, reply_key="key-a")
        store.begin(Attempt("main", "2026/a", "create", "r1", "k-a", "https://x/a"), now, kept)
        row, kept_set = store.get("main", "2026/a"), related.get("main", "2026/a")
        assert row is not None and row.state == "sending" and row.tries == 1
        assert kept_set is not None and kept_set.links == links
        assert kept_set.reply_state == "waiting" and kept_set.reply_key == "key-a"
        assert related.due_replies("main", now) == []  # waits for its post

        store.succeeded(
            "main", "2026/a", state="posted", revision="r1", now=now, status_id="9",
            status_url="https://server/9", release_reply=True,
        )  # fmt: skip
        row = store.get("main", "2026/a")
        assert row is not None and row.state == "posted" and row.status_id == "9"
        due = related.due_replies("main", now)
        assert [(d.article_id, d.reply_state) for d in due] == [("2026/a", "retry")]
    finally:
        engine.dispose()


def test_a_kill_between_the_post_and_its_release_leaves_the_reply_due(database_url: str) -> None:
    """The post's row says posted but its reply still waits for it: the next pass sends it."""
    from newsbot.state.deliveries import Attempt, DeliveryStore
    from newsbot.state.replies import RelatedStore

    engine = open_database(database_url)
    try:
        store, related = DeliveryStore(engine), RelatedStore(engine)
        now = datetime(2026, 12, 4, 12, tzinfo=UTC)
        for article in ("2026/posted", "2026/in-flight"):
            related.keep("main", article, [], [], in_reply=True, reply_key=f"key-{article}")
            store.begin(
                Attempt("main", article, "create", "r1", f"k-{article}", "https://x/a"), now
            )
        store.succeeded("main", "2026/posted", state="posted", revision="r1", now=now,
                        status_id="9", status_url="https://server/9")  # fmt: skip
        assert related.due_replies("main", now) == []  # the kill: released never ran
        related.release_posted("main")
        due = related.due_replies("main", now)
        assert [(d.article_id, d.reply_state) for d in due] == [("2026/posted", "retry")]
        waiting = related.get("main", "2026/in-flight")
        assert waiting is not None and waiting.reply_state == "waiting"  # its post is unknown yet
    finally:
        engine.dispose()
