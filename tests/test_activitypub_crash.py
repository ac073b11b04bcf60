"""Deliveries survive SIGKILL: ``newsbot run`` killed while fanning an article out, restarted.

Four remote servers on loopback (each a distinct host: its own port) with 30
followers each, every follower with its own inbox: one article is 120
deliveries. The inboxes verify each signature and answer slowly, so the kill
lands with requests in flight. After the restart every inbox has the Create
(nothing lost), no inbox has it more often than the requests that can have
been in flight at the kill or answered during the one write of outcomes in
progress (at-least-once, bounded by the concurrency), every
copy carries the same activity id (receivers de-duplicate by it), and every
row ends ``done``. The private key appears in no output. SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from newsbot.activitypub.followers import host_of
from newsbot.state.database import open_database
from newsbot.state.schema import ap_deliveries, ap_followers, ap_keys
from support.fediverse import RemoteServer
from support.posting import write_article
from test_activitypub import eventually, free_port

NEWSBOT = Path(sys.executable).parent / "newsbot"
SERVERS = 4
FOLLOWERS_EACH = 30
PER_HOST = 2


@pytest.fixture
def remotes() -> Iterator[list[RemoteServer]]:
    with ExitStack() as stack:
        yield [stack.enter_context(RemoteServer(delay=0.05)) for _ in range(SERVERS)]


def start(env: dict[str, str], folder: Path, run: int) -> subprocess.Popen[bytes]:
    out = (folder / f"out-{run}.log").open("wb")
    return subprocess.Popen([str(NEWSBOT), "run"], env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_sigkill_during_fan_out_loses_nothing(
    tmp_path: Path, database_url: str, remotes: list[RemoteServer]
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    write_article(content, "news.md", "Ferry strike ends", now - timedelta(minutes=1))
    engine = open_database(database_url)
    inboxes = []
    with engine.begin() as conn:
        for s, remote in enumerate(remotes):
            for i in range(FOLLOWERS_EACH):
                actor = remote.actor_id(f"u{s}x{i}")
                inboxes.append(actor + "/inbox")
                conn.execute(insert(ap_followers).values(
                    actor=actor, inbox=actor + "/inbox", shared_inbox=None, follow_id=None,
                    host=host_of(actor), created=int(now.timestamp()),
                ))  # fmt: skip
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update({
        "NEWSBOT_SITE__BASE_URL": f"http://127.0.0.1:{port}/",
        "NEWSBOT_SERVICE__PORT": str(port),
        "NEWSBOT_SERVICE__JITTER_SECONDS": "0",
        "NEWSBOT_STORE__CONTENT_DIR": str(content),
        "NEWSBOT_FEEDS__OUTPUT_DIR": str(tmp_path / "public"),
        "NEWSBOT_STATE__DATABASE_URL": database_url,
        "NEWSBOT_LOG__FORMAT": "json",
        "NEWSBOT_ACTIVITYPUB__ALLOW_PRIVATE_ADDRESSES": "true",
        "NEWSBOT_ACTIVITYPUB__PER_HOST_CONCURRENCY": str(PER_HOST),
        "NEWSBOT_ACTIVITYPUB__TIMEOUT": "3",
    })  # fmt: skip

    def receipts() -> Counter[tuple[str, str]]:
        return Counter(
            (f"{remote.base}{r.inbox}", r.activity["id"])
            for remote in remotes
            for r in remote.of_type("Create")
        )

    first = start(env, tmp_path, 1)
    try:
        eventually(lambda: sum(receipts().values()) >= 20, 60, "the fan-out did not start")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = sum(receipts().values())
        assert at_kill < len(inboxes), "the kill came too late to test anything"
        second = start(env, tmp_path, 2)
        try:
            eventually(lambda: len(receipts()) == len(inboxes), 90,
                       "not every inbox got the article after the restart")  # fmt: skip
            time.sleep(1.0)  # any late duplicate would arrive now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    got = receipts()
    assert {inbox for inbox, _ in got} == set(inboxes)
    assert len({activity for _, activity in got}) == 1, "one stable activity id"
    duplicates = sum(n - 1 for n in got.values())
    # In flight at the kill, plus those answered while their outcomes were being written.
    assert duplicates <= 2 * SERVERS * PER_HOST, got
    assert all(not remote.rejected for remote in remotes)
    with engine.connect() as conn:
        states = Counter(conn.execute(select(ap_deliveries.c.state)).scalars())
        pem = conn.execute(select(ap_keys.c.private_pem)).scalar_one()
    assert states == {"done": len(inboxes)}
    engine.dispose()
    shown = subprocess.run([str(NEWSBOT), "followers", "--json"], env=env, capture_output=True,
                           text=True, check=True)  # fmt: skip
    report = json.loads(shown.stdout)
    assert report["followers"] == len(inboxes) and report["servers"] == SERVERS
    assert report["deliveries"] == {"done": len(inboxes)} and report["dead_hosts"] == []
    secret = "".join(pem.splitlines()[1:-1])[:64]
    assert secret not in shown.stdout + shown.stderr
    for log in tmp_path.glob("out-*.log"):
        assert secret not in log.read_text().replace("\n", "")
