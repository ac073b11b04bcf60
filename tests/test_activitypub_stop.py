"""A stop does not wait for an inbox that never answers, and the delivery cut short is sent later.

The real service runs with one follower whose inbox (``fediverse.RemoteServer``
on loopback) takes the Create and never answers. On stop, the request gets a
short grace and is dropped: the service ends well within ``docker stop``'s
10 s (it waited 10 s for deliveries in flight), and its row is due again at
once, so the next start delivers it (with the same activity id, which the
receiver de-duplicates by). SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from newsbot.activitypub.followers import host_of
from newsbot.state.database import open_database
from newsbot.state.schema import ap_deliveries, ap_followers
from support.fediverse import RemoteServer
from support.posting import write_article
from test_activitypub import Running, eventually, make_settings

STOPPED_WITHIN_SECONDS = 7.0
"""Well under ``docker stop``'s 10 s; the worker's grace is 3 s."""


def test_stop_drops_a_delivery_nobody_answers_and_the_next_start_sends_it(
    tmp_path: Path, database_url: str
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC)
    write_article(content, "news.md", "Ferry strike ends", now - timedelta(minutes=1))
    settings = make_settings(tmp_path, content, database_url)
    settings = settings.model_copy(
        update={"service": settings.service.model_copy(update={"shutdown_timeout_seconds": 20})}
    )
    engine = open_database(database_url)
    with RemoteServer(delay=3600) as remote:  # records each POST, then never answers
        actor = remote.actor_id("alice")
        with engine.begin() as conn:
            conn.execute(insert(ap_followers).values(
                actor=actor, inbox=actor + "/inbox", shared_inbox=None, follow_id=None,
                host=host_of(actor), created=int(now.timestamp()),
            ))  # fmt: skip
        with Running(settings) as running:
            eventually(lambda: remote.of_type("Create"), 30, "the Create was not sent")
            started = time.monotonic()
            running.service.stop()
            running.thread.join(30)
            took = time.monotonic() - started
        assert took < STOPPED_WITHIN_SECONDS, f"the stop took {took:.1f} s"
        with engine.connect() as conn:
            assert conn.execute(select(ap_deliveries.c.state)).scalars().all() == ["pending"]

        remote.delay = 0  # the inbox answers now
        with Running(settings):
            eventually(lambda: len(remote.of_type("Create")) == 2, 20, "not sent again")

            def delivered() -> bool:
                with engine.connect() as conn:
                    return conn.execute(select(ap_deliveries.c.state)).scalar_one() == "done"

            eventually(delivered, 20, "the row was not recorded done")
    sent = remote.of_type("Create")
    assert sent[0].activity["id"] == sent[1].activity["id"]
    engine.dispose()
