"""Handling what the inbox stored: retried after a transient failure, dropped after a permanent one.

The sender of a stored activity had its 202 and will not send it again; a
Follow whose sender's actor document cannot be fetched when it is handled
must be handled later, or the follower waits for an Accept that never comes.
Each case runs against a real server on loopback (the fake fediverse server,
answering as told before it serves the actor), a closed port, a port that
never answers, and a real state database (SQLite, then PostgreSQL); the
clock is moved past each row's next try instead of waited for.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update
from starlette.responses import Response

from newsbot.activitypub.addresses import guarded_client
from newsbot.activitypub.documents import Actor
from newsbot.activitypub.inbox import HostLimiter, Inbox
from newsbot.activitypub.keys import generate
from newsbot.activitypub.outbox import Outbox
from newsbot.activitypub.remote import RemoteActors
from newsbot.state.database import open_database
from newsbot.state.inbox import InboxRows
from newsbot.state.schema import ap_deliveries, ap_followers, ap_inbox
from support.claims import claimed_by_two
from support.fediverse import RemoteServer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTOR = Actor(base_url="https://news.example/", username="news", name="News", summary="",
              public_pem=generate().public_pem, language="en")  # fmt: skip


class Handling:
    """The inbox's processing on one database, run as a scheduler pass runs it, at ``now``."""

    def __init__(self, engine: Engine, *, max_tries: int = 16, timeout: float = 2.0) -> None:
        self.engine = engine
        self.max_tries = max_tries
        self.timeout = timeout
        self.now = NOW

    def store_follow(self, actor: str) -> None:
        """What the inbox stores before its 202 (the signature was verified then)."""
        follow = {"id": actor + "#follow", "type": "Follow", "actor": actor, "object": ACTOR.id}
        InboxRows(self.engine).store(follow["id"], actor, "Follow", json.dumps(follow),
                                     int(self.now.timestamp()))  # fmt: skip

    def process(self) -> int:
        async def run() -> int:
            async with guarded_client(allow_private=True, timeout=self.timeout) as http:
                inbox = Inbox(
                    self.engine, RemoteActors(http, lambda: self.now, allow_private=True),
                    Outbox(self.engine, ACTOR), lambda: self.now, allow_private=True,
                    limiter=HostLimiter(600), owner="test", max_tries=self.max_tries,
                    rng=random.Random(7),
                )  # fmt: skip
                return await inbox.process()

        return asyncio.run(run())

    def row(self, actor: str) -> dict[str, Any]:
        query = select(ap_inbox).where(ap_inbox.c.actor == actor)
        with self.engine.connect() as conn:
            return dict(conn.execute(query).one()._mapping)

    def accepted(self, actor: str) -> bool:
        """A follower stored and an Accept queued to its inbox."""
        with self.engine.connect() as conn:
            follower = conn.execute(select(ap_followers).where(ap_followers.c.actor == actor))
            accept = conn.execute(
                select(ap_deliveries).where(ap_deliveries.c.inbox == actor + "/inbox")
            )
            return follower.first() is not None and accept.first() is not None

    def after_next_try(self, actor: str) -> None:
        self.now = datetime.fromtimestamp(self.row(actor)["next_try"], UTC) + timedelta(seconds=1)


@pytest.fixture
def remote() -> Iterator[RemoteServer]:
    with RemoteServer() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_follow_whose_actor_cannot_be_fetched_is_accepted_once_its_server_is_back(
    database_url: str, remote: RemoteServer
) -> None:
    engine = open_database(database_url)
    handling = Handling(engine)
    alice = remote.actor_id("alice")
    remote.answers["alice"] = [Response(status_code=503), Response(status_code=502)]
    handling.store_follow(alice)

    assert handling.process() == 1
    row = handling.row(alice)
    assert (row["processed"], row["tries"]) == (None, 1)
    assert row["next_try"] > NOW.timestamp() and "503" in row["last_error"]
    assert not handling.accepted(alice)
    assert handling.process() == 0, "tried again before its next try"

    handling.after_next_try(alice)
    assert handling.process() == 1
    assert (handling.row(alice)["tries"], handling.row(alice)["processed"]) == (2, None)
    handling.after_next_try(alice)
    assert handling.process() == 1
    row = handling.row(alice)
    assert row["processed"] is not None and row["last_error"] is None
    assert handling.accepted(alice)
    assert remote.fetched == ["/users/alice"] * 3
    engine.dispose()


def test_transient_failures_are_tried_again_and_permanent_ones_dropped(
    tmp_path: Any, remote: RemoteServer
) -> None:
    silent = socket.socket()  # accepts connections (the backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    cases = {
        "e500": (Response(status_code=500), True),
        "e503": (Response(status_code=503), True),
        "e429": (Response(status_code=429), True),
        "e408": (Response(status_code=408), True),
        "e404": (Response(status_code=404), False),
        "e410": (Response(status_code=410), False),
        "e403": (Response(status_code=403), False),
        "e401": (Response(status_code=401), False),
        "notjson": (Response(b"<html>", media_type="text/html"), False),
        "notactor": (Response(b'{"type": "Note"}', media_type="application/activity+json"), False),
    }
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    handling = Handling(engine, timeout=0.5)
    for name, (answer, _) in cases.items():
        remote.answers[name] = [answer]
        handling.store_follow(remote.actor_id(name))
    unreachable = {
        f"http://127.0.0.1:{closed_port()}/users/refused": True,
        f"http://127.0.0.1:{silent.getsockname()[1]}/users/timeout": True,
    }
    for actor in unreachable:
        handling.store_follow(actor)
    try:
        assert handling.process() == len(cases) + len(unreachable)
    finally:
        silent.close()
    expected = {remote.actor_id(name): retried for name, (_, retried) in cases.items()}
    for actor, retried in (expected | unreachable).items():
        row = handling.row(actor)
        assert (row["processed"] is None) == retried, (actor, row)
        assert row["tries"] == 1 and row["last_error"], (actor, row)
        assert not handling.accepted(actor)
    engine.dispose()


def test_a_row_is_given_up_after_max_tries_and_retry_after_is_honoured(
    tmp_path: Any, remote: RemoteServer
) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    handling = Handling(engine, max_tries=3)
    bob, carol = remote.actor_id("bob"), remote.actor_id("carol")
    remote.answers["bob"] = [Response(status_code=503) for _ in range(5)]
    remote.answers["carol"] = [Response(status_code=429, headers={"Retry-After": "7200"})]
    erin = remote.actor_id("erin")  # claimed 3 times already, each ended by a crash
    for actor in (bob, carol, erin):
        handling.store_follow(actor)
    with engine.begin() as conn:
        conn.execute(update(ap_inbox).where(ap_inbox.c.actor == erin).values(tries=3))
    assert handling.process() == 3
    assert handling.row(carol)["next_try"] == NOW.timestamp() + 7200  # later than the schedule
    assert handling.row(erin)["last_error"] == "its handling never finished"
    assert "/users/erin" not in remote.fetched
    for tries in (2, 3):
        handling.after_next_try(bob)
        handling.process()
        assert handling.row(bob)["tries"] == tries
    row = handling.row(bob)
    assert row["processed"] is not None and row["last_error"].startswith("gave up after 3 tries")
    handling.now += timedelta(days=30)
    remote.answers["carol"] = []
    assert handling.process() == 1  # carol, answered now; bob is not tried again
    assert remote.fetched.count("/users/bob") == 3
    assert handling.accepted(carol) and not handling.accepted(bob)
    engine.dispose()


def test_claimers_sharing_a_database_never_take_one_row_twice(database_url: str) -> None:
    engine = open_database(database_url)
    with engine.begin() as conn:
        conn.execute(insert(ap_inbox), [
            {"actor": f"https://h{i}.example/u", "type": "Follow", "body": "{}", "received": 0,
             "tries": 0, "next_try": 0} for i in range(300)
        ])  # fmt: skip
    rows = InboxRows(engine)
    taken = claimed_by_two(
        lambda owner: [r.id for r in rows.claim(owner, NOW, 7, timedelta(minutes=1))]
    )
    assert taken == 300
    engine.dispose()


def test_a_claim_takes_no_more_rows_than_asked(database_url: str) -> None:
    """Processing claims one row at a time and handles the one it gets: a row taken beyond
    the limit would wait out the lease unhandled, a try spent."""
    engine = open_database(database_url)
    rows = InboxRows(engine)
    for i in range(5):
        rows.store(None, f"https://h{i}.example/u", "Follow", "{}", 0)
    (first,) = rows.claim("one", NOW, 1, timedelta(minutes=1))
    with engine.connect() as conn:
        held = conn.execute(select(ap_inbox.c.id).where(ap_inbox.c.owner.is_not(None))).all()
    assert [r.id for r in held] == [first.id]
    assert len(rows.claim("one", NOW, 3, timedelta(minutes=1))) == 3
    engine.dispose()


def test_a_row_whose_claimer_was_killed_is_handled_by_the_next_processing_at_once(
    tmp_path: Any,
) -> None:
    """Its claimer's process is gone (same pid namespace): the row is not left to its lease."""
    code = "from newsbot.state.leases import process_owner; print(process_owner(), flush=True)"
    dead = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    handling = Handling(open_database(f"sqlite:///{tmp_path / 's.db'}"))
    like = {"type": "Like", "actor": "https://a.example/u", "object": ACTOR.id}
    with handling.engine.begin() as conn:
        conn.execute(insert(ap_inbox).values(
            actor=like["actor"], type="Like", body=json.dumps(like), received=0, tries=1,
            next_try=0, owner=f"{dead}|0badc0de", lease_until=int(NOW.timestamp()) + 3600,
        ))  # fmt: skip
    assert handling.process() == 1
    row = handling.row(like["actor"])
    assert row["processed"] is not None and row["owner"] is None and row["tries"] == 2
    handling.engine.dispose()


def test_a_claim_whose_lease_ran_out_is_taken_over_and_its_late_finish_ignored(
    tmp_path: Any,
) -> None:
    """A claimer that died (or hung) mid-way: its row is handled by another after the lease."""
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    rows = InboxRows(engine)
    rows.store(None, "https://a.example/u", "Follow", "{}", 0)
    lease = timedelta(minutes=1)
    (first,) = rows.claim("one", NOW, 10, lease)
    assert rows.claim("two", NOW + lease / 2, 10, lease) == []
    (second,) = rows.claim("two", NOW + lease * 2, 10, lease)
    assert (second.id, second.tries) == (first.id, 2)
    rows.processed(first, NOW + lease * 2, "late")  # the first claimer's, after it lost the row
    with engine.connect() as conn:
        assert conn.execute(select(ap_inbox.c.processed)).scalar() is None
    rows.processed(second, NOW + lease * 2)
    with engine.connect() as conn:
        row = conn.execute(select(ap_inbox)).one()
    assert row.processed is not None and row.last_error is None and row.owner is None
    engine.dispose()


def test_processing_looks_for_rows_of_killed_claimers_at_most_every_half_minute(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web server processes the inbox after each activity it receives: a killed claimer
    is rare, so its rows are looked for once per `ORPHANS_EVERY_SECONDS`, not per activity."""
    from newsbot.activitypub import inbox as inbox_module

    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    looked: list[int] = []
    monkeypatch.setattr(InboxRows, "release_orphans", lambda rows: looked.append(1) or 0)
    clock = [1000.0]
    monkeypatch.setattr(inbox_module.time, "monotonic", lambda: clock[0])

    async def run() -> None:
        async with guarded_client(allow_private=True, timeout=2.0) as http:
            inbox = Inbox(
                engine, RemoteActors(http, lambda: NOW, allow_private=True),
                Outbox(engine, ACTOR), lambda: NOW, allow_private=True,
                limiter=HostLimiter(600), owner="test",
            )  # fmt: skip
            await inbox.process()
            await inbox.process()
            assert len(looked) == 1
            clock[0] += inbox_module.ORPHANS_EVERY_SECONDS + 1
            await inbox.process()
            assert len(looked) == 2

    asyncio.run(run())
    engine.dispose()
