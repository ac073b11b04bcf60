"""ActivityPub work that waits or was given up: shown to the operator, and re-queued on demand.

A Follow whose sender's server stays down longer than the retries last is
given up: a follower who never gets an Accept. A delivery whose inbox stays
down is given up too. Each must be seen (``/readyz``, ``/metrics``, the
status page, ``newsbot state``) apart from what was handled or refused for
good, and tried again with ``newsbot requeue --confirm`` once the cause is
fixed: only what was given up, once however many copies run it. Real
servers on loopback (the fake fediverse server), real state databases
(SQLite, then PostgreSQL); the clock is moved past each row's next try.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert, select, update
from starlette.responses import Response

from newsbot.activitypub.deliveries import DeliveryStore, Outcome
from newsbot.activitypub.federation import Federation
from newsbot.cli import main
from newsbot.service.health import Snapshot
from newsbot.service.metrics import Metrics
from newsbot.state.ap_deliveries import DeliveryRows, Requeue
from newsbot.state.database import open_database
from newsbot.state.inbox import InboxRows
from newsbot.state.schema import ap_activities, ap_deliveries, ap_hosts, ap_inbox
from support.fediverse import RemoteServer
from support.posting import write_article
from test_activitypub import eventually, make_settings
from test_activitypub_inbox import NOW, Handling

LEASE = timedelta(minutes=1)


@pytest.fixture
def remote() -> Iterator[RemoteServer]:
    with RemoteServer() as server:
        yield server


def cli(database_url: str, tmp_path: Path, *args: str) -> str:
    """``newsbot ARGS`` on the state database at ``database_url``; its output (exit 0)."""
    env = {"NEWSBOT_STATE__DATABASE_URL": database_url, "NEWSBOT_STATE__DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def give_up_follow(handling: Handling, remote: RemoteServer, name: str) -> str:
    """A Follow from ``name`` whose server answers 503 at every try, until it is given up."""
    actor = remote.actor_id(name)
    remote.answers[name] = [Response(status_code=503) for _ in range(handling.max_tries)]
    handling.store_follow(actor)
    for _ in range(handling.max_tries):
        assert handling.process() == 1
        if handling.row(actor)["processed"] is None:
            handling.after_next_try(actor)
    return actor


def mixed_inbox(engine: Engine, remote: RemoteServer) -> Handling:
    """One received activity in each state: handled, dropped (404), waiting (503), given up."""
    handling = Handling(engine, max_tries=2)
    give_up_follow(handling, remote, "lost")
    remote.answers["gone"] = [Response(status_code=404)]
    remote.answers["later"] = [Response(status_code=503)]
    for name in ("fine", "gone", "later"):
        handling.store_follow(remote.actor_id(name))
    assert handling.process() == 3
    return handling


# -- telling given up apart ------------------------------------------------------------


def test_received_activities_are_counted_by_state_and_the_given_up_listed(
    database_url: str, remote: RemoteServer
) -> None:
    engine = open_database(database_url)
    mixed_inbox(engine, remote)
    rows = InboxRows(engine)
    assert rows.counts() == {"handled": 1, "dropped": 1, "waiting": 1, "given_up": 1}
    (waiting,) = rows.listing("waiting", 10)
    assert waiting.actor == remote.actor_id("later") and "503" in (waiting.last_error or "")
    (lost,) = rows.listing("given_up", 10)
    assert (lost.type, lost.actor, lost.tries) == ("Follow", remote.actor_id("lost"), 2)
    assert (lost.last_error or "").startswith("gave up after 2 tries")
    assert rows.given_up() == {"Follow": 1}
    engine.dispose()


def test_a_row_whose_claims_never_finished_is_given_up_too(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    handling = Handling(engine, max_tries=3)
    handling.store_follow("http://127.0.0.1:9/users/crashing")  # never fetched
    with engine.begin() as conn:
        conn.execute(update(ap_inbox).values(tries=3))  # three claims ended by a crash
    assert handling.process() == 1
    assert InboxRows(engine).given_up() == {"Follow": 1}
    engine.dispose()


def test_a_delivery_out_of_tries_is_given_up_and_a_refused_one_failed(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    store = DeliveryStore(engine, max_tries=1)
    inboxes = ["https://down.example/inbox", "https://refusing.example/inbox"]
    queue(engine, ("a", "Create", "x", 1, inboxes))
    down, refusing = sorted(store.claim("me", NOW, 10, LEASE), key=lambda c: c.inbox)
    store.finish([Outcome(down, "retry", 503, "503"), Outcome(refusing, "failed", 403, "403")], NOW)
    assert states(engine) == {inboxes[0]: "given_up", inboxes[1]: "failed"}
    (row,) = store.given_up(10)
    assert (row.type, row.inbox, row.tries, row.last_status) == ("Create", inboxes[0], 1, 503)
    engine.dispose()


# -- shown where the operator looks ------------------------------------------------------


def federation(engine: Engine, tmp_path: Path, database_url: str, **ap: Any) -> Federation:
    settings = make_settings(tmp_path, tmp_path / "content", database_url, **ap)
    return Federation(settings, engine, owner="test")


def test_readyz_counts_what_waits_and_warns_of_what_was_given_up(
    database_url: str, tmp_path: Path, remote: RemoteServer
) -> None:
    engine = open_database(database_url)
    mixed_inbox(engine, remote)
    health = federation(engine, tmp_path, database_url).health()
    assert health["inbox"] == {"handled": 1, "dropped": 1, "waiting": 1, "given_up": 1}
    assert (health["inbox_waiting"], health["inbox_given_up"], health["given_up"]) == (1, 1, 0)
    snapshot = Snapshot(NOW, None, {}, health)
    (warning,) = snapshot.warnings()
    assert "1 received activity(ies) given up" in warning and "newsbot requeue" in warning
    assert snapshot.to_json()["activitypub"]["inbox_given_up"] == 1
    assert Snapshot(NOW, None, {}, {**health, "inbox_given_up": 0}).warnings() == []
    engine.dispose()


def test_metrics_count_received_activities_waiting_and_given_up(
    tmp_path: Path, remote: RemoteServer
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    engine = open_database(url)
    mixed_inbox(engine, remote)
    metrics = Metrics()
    metrics.observe_federation(federation(engine, tmp_path, url).health())
    value = metrics.registry.get_sample_value
    assert value("newsbot_activitypub_inbox_waiting") == 1
    assert value("newsbot_activitypub_inbox_given_up") == 1
    assert value("newsbot_activitypub_deliveries_given_up") == 0
    engine.dispose()


def test_the_status_page_lists_what_waits_and_what_was_given_up(
    tmp_path: Path, remote: RemoteServer
) -> None:
    from newsbot.service.health import Status
    from newsbot.service.status import Fediverse, StatusPage
    from newsbot.state.index import StoreIndex

    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    mixed_inbox(engine, remote)
    queue(engine, ("a", "Create", "x", 1, ["https://down.example/inbox"]))
    with engine.begin() as conn:
        conn.execute(update(ap_deliveries).where(ap_deliveries.c.activity_id == "a")
                     .values(state="given_up", tries=16, last_error="503"))  # fmt: skip
    page = StatusPage(StoreIndex(engine), DeliveryStore(engine), Status(), [],
                      fediverse=Fediverse(InboxRows(engine), DeliveryRows(engine)))  # fmt: skip
    shown = page.compose()["activitypub"]
    assert shown["inbox"]["given_up"] == 1 and shown["deliveries"]["given_up"] == 1
    assert [r["actor"] for r in shown["inbox_waiting"]] == [remote.actor_id("later")]
    assert shown["inbox_waiting"][0]["due_at"] is not None
    (lost,) = shown["inbox_given_up"]
    assert (lost["type"], lost["actor"], lost["tries"]) == ("Follow", remote.actor_id("lost"), 2)
    assert [r["inbox"] for r in shown["deliveries_given_up"]] == ["https://down.example/inbox"]
    html = page.render(page.compose())
    assert "Received, given up" in html and remote.actor_id("lost") in html
    assert "https://down.example/inbox" in html
    engine.dispose()


def test_newsbot_state_lists_what_waits_and_what_was_given_up(
    database_url: str, tmp_path: Path, remote: RemoteServer
) -> None:
    engine = open_database(database_url)
    mixed_inbox(engine, remote)
    shown = cli(database_url, tmp_path, "state")
    assert "activitypub: deliveries: " in shown
    assert "received: 1 dropped, 1 given_up, 1 handled, 1 waiting" in shown
    assert f"waiting  Follow from {remote.actor_id('later')}" in shown
    assert f"given up Follow from {remote.actor_id('lost')}  after 2 tries: gave up" in shown
    assert "`newsbot requeue`" in shown
    engine.dispose()


# -- re-queued on demand -----------------------------------------------------------------


def test_a_given_up_follow_is_requeued_on_confirmation_and_accepted(
    database_url: str, tmp_path: Path, remote: RemoteServer
) -> None:
    engine = open_database(database_url)
    handling = mixed_inbox(engine, remote)
    lost = remote.actor_id("lost")
    assert not handling.accepted(lost)

    preview = cli(database_url, tmp_path, "requeue")
    assert "would re-queue 1 received activity(ies) (1 Follow)" in preview
    assert "would re-queue 0 delivery(ies)" in preview and "--confirm" in preview
    assert InboxRows(engine).given_up() == {"Follow": 1}, "a preview changed something"

    done = cli(database_url, tmp_path, "requeue", "--confirm")
    assert "re-queued 1 received activity(ies) (1 Follow)" in done
    assert cli(database_url, tmp_path, "requeue", "--confirm").strip() == (
        "nothing was given up: nothing to re-queue"
    )
    row = handling.row(lost)
    assert (row["processed"], row["tries"], row["given_up"]) == (None, 0, False)

    handling.now = datetime.now(UTC)  # the requeue made it due at the wall clock's now
    assert handling.process() == 2  # the lost Follow, and the waiting one (due long since)
    assert handling.accepted(lost)
    assert handling.row(remote.actor_id("gone"))["processed"] is not None  # dropped stays
    assert InboxRows(engine).counts() == {"handled": 3, "dropped": 1}
    engine.dispose()


def queue(engine: Engine, *activities: tuple[str, str, str | None, int, list[str]]) -> None:
    """Activities (id, type, article, seq) with a delivery row to each of their inboxes."""
    with engine.begin() as conn:
        for activity_id, kind, article, seq, inboxes in activities:
            conn.execute(insert(ap_activities).values(
                id=activity_id, seq=seq, type=kind, article_id=article, public=True, body="{}",
                created=0,
            ))  # fmt: skip
            DeliveryStore.enqueue(conn, activity_id, inboxes, NOW)


def states(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            r.inbox: r.state
            for r in conn.execute(select(ap_deliveries.c.inbox, ap_deliveries.c.state))
        }


def test_given_up_and_dead_deliveries_are_requeued_and_their_hosts_revived(
    tmp_path: Path,
) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    inboxes = {s: f"https://{s}.example/inbox" for s in
               ("given_up", "dead", "failed", "done", "sending", "pending")}  # fmt: skip
    queue(engine, ("a", "Create", "x", 1, list(inboxes.values())))
    with engine.begin() as conn:
        for state, inbox in inboxes.items():
            conn.execute(update(ap_deliveries).where(ap_deliveries.c.inbox == inbox)
                         .values(state=state, tries=16, owner="other|1",
                                 lease_until=(NOW + timedelta(days=2)).timestamp()))  # fmt: skip
        conn.execute(insert(ap_hosts).values(host="dead.example", failures=40, dead=True,
                                             failing_since=0, paused_until=None))  # fmt: skip
    store = DeliveryStore(engine)
    preview = store.requeue_preview()
    assert (preview.by_type, preview.superseded, preview.hosts) == ({"Create": 2}, 0,
                                                                     ["dead.example"])  # fmt: skip
    assert states(engine)["https://dead.example/inbox"] == "dead", "a preview changed something"

    later = NOW + timedelta(days=1)
    done = store.requeue(later)
    assert (done.by_type, done.superseded, done.hosts) == ({"Create": 2}, 0, ["dead.example"])
    assert states(engine) == {inboxes[s]: s for s in inboxes} | {
        inboxes["given_up"]: "pending", inboxes["dead"]: "pending"}  # fmt: skip
    assert store.dead_hosts() == []
    claimed = store.claim("me", later, 10, LEASE)
    assert sorted(c.host for c in claimed) == [
        "dead.example",
        "given_up.example",
        "pending.example",
    ]
    assert {c.tries for c in claimed if c.host != "pending.example"} == {1}  # all tries again
    assert store.requeue(later).total == 0
    engine.dispose()


def test_a_delivery_a_later_activity_of_its_article_reached_is_left_given_up(
    tmp_path: Path,
) -> None:
    """An old Create sent after the Delete that reached that inbox would bring the note back."""
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    reached, missed = "https://reached.example/inbox", "https://missed.example/inbox"
    queue(engine, ("create", "Create", "x", 1, [reached, missed]),
          ("delete", "Delete", "x", 2, [reached, missed]),
          ("other", "Create", "y", 3, [reached]))  # fmt: skip
    with engine.begin() as conn:
        conn.execute(update(ap_deliveries).values(state="given_up"))
        conn.execute(update(ap_deliveries).where(
            ap_deliveries.c.activity_id == "delete", ap_deliveries.c.inbox == reached
        ).values(state="done"))  # fmt: skip
    store = DeliveryStore(engine)
    assert store.requeue_preview().superseded == 2
    done = store.requeue(NOW)
    # The Create to the inbox the Delete missed is left too: its note is deleted.
    assert (done.by_type, done.superseded) == ({"Create": 1, "Delete": 1}, 2)
    with engine.connect() as conn:
        left = conn.execute(
            select(ap_deliveries.c.activity_id, ap_deliveries.c.inbox)
            .where(ap_deliveries.c.state == "given_up").order_by(ap_deliveries.c.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in left] == [("create", reached), ("create", missed)]
    engine.dispose()


def test_copies_requeueing_at_once_take_each_row_once(database_url: str) -> None:
    engine = open_database(database_url)
    with engine.begin() as conn:
        conn.execute(insert(ap_inbox), [
            {"actor": f"https://h{i}.example/u", "type": "Follow", "body": "{}", "received": 0,
             "processed": 1, "tries": 16, "next_try": 0, "given_up": True} for i in range(200)
        ])  # fmt: skip
    queue(engine, ("a", "Accept", None, 1, [f"https://h{i}.example/inbox" for i in range(300)]))
    with engine.begin() as conn:
        conn.execute(update(ap_deliveries).values(state="given_up"))
    start = threading.Barrier(4)
    results: list[tuple[dict[str, int], int]] = []

    def requeue() -> None:
        start.wait()
        received = InboxRows(engine).requeue(NOW)
        sent = DeliveryRows(engine).requeue(NOW).total
        results.append((received, sent))

    threads = [threading.Thread(target=requeue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert sum(r[0].get("Follow", 0) for r in results) == 200
    assert sum(r[1] for r in results) == 300
    engine.dispose()


def test_a_delivery_given_up_reaches_its_inbox_once_requeued(
    database_url: str, tmp_path: Path, remote: RemoteServer
) -> None:
    """The whole way: a real delivery worker, an inbox that answers 503, then 202."""
    engine = open_database(database_url)
    fed = federation(engine, tmp_path, database_url, max_tries=1)
    remote.public_keys[fed.actor.key_id] = fed.actor.public_pem
    remote.status = 503
    actor = remote.actor_id("dave")
    follow = {"id": actor + "#follow", "type": "Follow", "actor": actor, "object": fed.actor.id}
    fed.outbox.accept(follow, actor + "/inbox", datetime.now(UTC))
    fed.start()
    try:
        eventually(lambda: fed.health()["given_up"] == 1, 20, "the delivery was not given up")
        assert "1 delivery(ies) given up" in Snapshot(NOW, None, {}, fed.health()).warnings()[0]
        remote.status = 202
        assert DeliveryRows(engine).requeue(datetime.now(UTC)).by_type == {"Accept": 1}
        fed.deliver()
        eventually(lambda: fed.health()["deliveries"] == {"done": 1}, 20, "not delivered")
    finally:
        fed.stop(5)
    assert [r.activity["type"] for r in remote.received] == ["Accept", "Accept"]
    engine.dispose()


# -- what a follower's server ends up with -------------------------------------------------


class Followed:
    """A built store, the actor and one follower on the fake fediverse server; deliveries are
    made by the real worker (which verifies signatures and digests), given up after one try."""

    def __init__(self, tmp_path: Path, database_url: str, remote: RemoteServer) -> None:
        from newsbot.activitypub.followers import Follower, Followers
        from newsbot.app import create_app

        self.content, self.remote = tmp_path / "content", remote
        self.published = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
        self.settings = make_settings(tmp_path, self.content, database_url, max_tries=1)
        self.write("Ferry strike ends")
        self.app = create_app(self.settings)
        self.fed = Federation(self.settings, self.app.engine, owner="test")
        remote.public_keys[self.fed.actor.key_id] = self.fed.actor.public_pem
        actor = remote.actor_id("bob")
        Followers(self.app.engine).add(Follower(actor, actor + "/inbox", None, None),
                                       datetime.now(UTC))  # fmt: skip
        self.note = self.fed.actor.note_id("ferry")
        self.worker = self.fed._make_worker()  # one worker throughout, as in the service

    def write(self, title: str, **fields: Any) -> None:
        write_article(self.content, "ferry.md", title, self.published, **fields)

    def sync(self) -> None:
        """Build the store as it is now and queue its activities."""
        self.app.builder.build(datetime.now(UTC))
        self.fed.outbox.sync(datetime.now(UTC))

    def deliver(self, status: int) -> None:
        """Send what is due, the server answering ``status``; until nothing is due."""
        self.remote.status = status
        asyncio.run(self.worker.run(until_idle=True))

    def requeue(self) -> Requeue:
        return self.fed.deliveries.requeue(datetime.now(UTC))

    def accepted(self, kind: str) -> list[dict[str, Any]]:
        """The activities of type ``kind`` the server took (answered 202)."""
        return [r.activity for r in self.remote.of_type(kind) if r.status == 202]

    def shown(self) -> dict[str, str]:
        """The notes the follower's server shows (Mastodon's rules), by id: their text."""
        return self.remote.notes(datetime.now(UTC))

    def close(self) -> None:
        self.app.close()


@pytest.fixture
def followed(tmp_path: Path, database_url: str, remote: RemoteServer) -> Iterator[Followed]:
    scene = Followed(tmp_path, database_url, remote)
    yield scene
    scene.close()


def test_a_create_given_up_whose_update_reached_the_server_is_requeued_with_the_new_text(
    followed: Followed,
) -> None:
    """The server dropped the Update of a note it never had: without the Create it shows
    nothing, and the Create as it was made would show the old text for good."""
    followed.sync()
    followed.deliver(503)  # the Create is given up
    followed.write("Ferry strike ends after a week")
    followed.sync()
    followed.deliver(202)  # the Update reaches the server, which drops it
    assert followed.shown() == {}
    assert followed.fed.deliveries.requeue_preview().by_type == {"Create": 1}
    assert followed.requeue().by_type == {"Create": 1}
    followed.deliver(202)
    (create,) = followed.accepted("Create")
    assert "after a week" in create["object"]["content"] and create["object"]["updated"]
    assert "after a week" in followed.shown()[followed.note]


def test_a_requeued_create_carries_the_note_as_it_is_now(followed: Followed) -> None:
    """Create and Update both given up, then re-queued: in whichever order they arrive,
    the server ends with the latest text (an Update first is dropped)."""
    followed.sync()
    followed.deliver(503)
    followed.write("Ferry strike ends after a week")
    followed.sync()
    followed.deliver(503)
    assert followed.requeue().by_type == {"Create": 1, "Update": 1}
    followed.deliver(202)
    for kind in ("Create", "Update"):
        (sent,) = followed.accepted(kind)
        assert "after a week" in sent["object"]["content"], kind
    assert "after a week" in followed.shown()[followed.note]


def test_a_create_given_up_whose_note_was_deleted_since_is_left(followed: Followed) -> None:
    """The server has nothing to show: the Delete alone goes (it removes whatever an
    Update may have brought), not an old text shown to followers and then taken back."""
    followed.sync()
    followed.deliver(503)
    followed.write("Ferry strike ends", withdrawn=True)
    followed.sync()
    followed.deliver(503)
    done = followed.requeue()
    assert (done.by_type, done.superseded) == ({"Delete": 1}, 1)
    followed.deliver(202)
    assert [r.activity["type"] for r in followed.remote.received if r.status == 202] == ["Delete"]
    assert followed.shown() == {}
