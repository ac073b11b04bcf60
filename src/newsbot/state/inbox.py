"""Activities received at the actor's inbox: stored before the 202, processed after.

The sender has its 202 once a row is stored, and will not send again: a row
is processed until it is handled, refused for good, or has failed
``max_tries`` times. Handling is claimed as deliveries are
(:mod:`newsbot.state.ap_deliveries`): one ``UPDATE ... RETURNING`` takes a due
row under the claimer's token and a lease, so several processes sharing the
database (a replica, the web server's task and the scheduler's pass) never
handle one row at once. A claimer killed mid-way leaves its row to the next
one: at once when it is seen to be gone (`InboxRows.release_orphans`), after
its lease elsewhere. A transient failure puts the row back with a later
``next_try``.

A row given up (``max_tries`` failures, or as many claims that never
finished) is flagged ``given_up``, apart from rows handled or refused for
good: the operator sees them (`counts`, `listing`) and, once the cause is
fixed, queues them again (`requeue`).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, insert, or_, select, update

from newsbot.state.leases import claimer, is_alive
from newsbot.state.owner_files import OwnerFiles
from newsbot.state.schema import ap_inbox


@dataclass(frozen=True, slots=True)
class Received:
    id: int
    actor: str
    body: str
    tries: int = 0
    """Including the one under way."""
    owner: str = ""
    """The claim token: only its holder finishes the row."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A row as the operator sees it: what came from whom, how often it failed, and why."""

    id: int
    type: str
    actor: str
    received: int
    tries: int
    next_try: int
    last_error: str | None


WAITING = "waiting"
"""A try failed for a transient reason; the row is due again at its ``next_try``."""
GIVEN_UP = "given_up"
"""Tried ``max_tries`` times without being handled: nothing more happens until it is re-queued."""


def _state() -> Any:
    """Each row's state, in SQL: new, waiting, handled, dropped (refused for good), given_up."""
    return case(
        (ap_inbox.c.given_up, GIVEN_UP),
        (and_(ap_inbox.c.processed.is_not(None), ap_inbox.c.last_error.is_not(None)), "dropped"),
        (ap_inbox.c.processed.is_not(None), "handled"),
        (ap_inbox.c.last_error.is_not(None), WAITING),
        else_="new",
    )


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


class InboxRows:
    def __init__(
        self, engine: Engine, *, max_tries: int = 16, files: OwnerFiles | None = None
    ) -> None:
        self.engine = engine
        self.max_tries = max_tries
        self.files = files
        """This process's owner files: a claimer killed in another pid namespace that shares
        the data folder is seen to be gone (`release_orphans`)."""

    def store(self, activity_id: str | None, actor: str, kind: str, body: str, at: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(ap_inbox).values(
                activity_id=activity_id, actor=actor, type=kind[:50], body=body, received=at,
                tries=0, next_try=at,
            ))  # fmt: skip

    def claim(self, owner: str, now: datetime, limit: int, lease: timedelta) -> list[Received]:
        """Take up to ``limit`` due rows, oldest first, for this claimer alone until the lease ends.

        Due: not processed, its ``next_try`` reached, and not held under a live
        lease. On PostgreSQL the candidates are taken ``FOR UPDATE SKIP
        LOCKED``; the update re-checks that each is still due, so a row another
        claimer took in between is left to it (SQLite runs one writer at a time).
        """
        token = f"{owner}|{uuid.uuid4().hex[:8]}"
        t = _ts(now)
        due = and_(
            ap_inbox.c.processed.is_(None),
            ap_inbox.c.next_try <= t,
            or_(ap_inbox.c.lease_until.is_(None), ap_inbox.c.lease_until < t),
        )
        candidates: Any = select(ap_inbox.c.id).where(due).order_by(ap_inbox.c.id).limit(limit)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Locked and read first: as a subquery of the UPDATE, PostgreSQL may run it
                # again per row, each run skipping the rows the last one locked, and the
                # update took every due row instead of ``limit`` (held unhandled under the
                # lease, a try spent each).
                query = candidates.with_for_update(skip_locked=True)
                candidates = list(conn.execute(query).scalars())
            else:
                candidates = candidates.scalar_subquery()
            taken = conn.execute(
                update(ap_inbox)
                .where(ap_inbox.c.id.in_(candidates), due)
                .values(owner=token, lease_until=_ts(now + lease), tries=ap_inbox.c.tries + 1)
                .returning(ap_inbox.c.id, ap_inbox.c.actor, ap_inbox.c.body, ap_inbox.c.tries)
            ).all()
        return [Received(r.id, r.actor, r.body, r.tries, token) for r in sorted(taken)]

    def release_orphans(self) -> int:
        """Free the rows of claimers seen to be gone (killed): due again at once; how many.

        Seen: on this machine in the same pid namespace, or through their owner
        file in the shared data folder (`newsbot.state.leases.is_alive`). Other
        claimed rows wait for their lease to run out, since their claimer may
        still be handling them. The try the dead claimer took still counts.
        """
        claimed = and_(ap_inbox.c.processed.is_(None), ap_inbox.c.owner.is_not(None))
        query = select(ap_inbox.c.owner).where(claimed).distinct()
        with self.engine.connect() as conn:
            tokens: list[str] = [str(r[0]) for r in conn.execute(query)]
        gone = [t for t in tokens if not is_alive(claimer(t), self.files)]
        if not gone:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(
                update(ap_inbox)
                .where(claimed, ap_inbox.c.owner.in_(gone))
                .values(owner=None, lease_until=None)
            ).rowcount

    def processed(self, row: Received, at: datetime, error: str | None = None) -> None:
        """The row is done with: handled, or refused for good (``error`` says why)."""
        self._finish(row, processed=_ts(at), last_error=error)

    def retry(self, row: Received, at: datetime, error: str, next_try: datetime) -> bool:
        """A transient failure: due again at ``next_try``, or given up after ``max_tries``.

        Returns whether it will be tried again.
        """
        if row.tries >= self.max_tries:
            self.give_up(row, at, f"gave up after {row.tries} tries: {error}")
            return False
        self._finish(row, next_try=_ts(next_try), last_error=error)
        return True

    def give_up(self, row: Received, at: datetime, error: str) -> None:
        """No more tries: the row waits for the operator (`requeue`)."""
        self._finish(row, processed=_ts(at), last_error=error, given_up=True)

    def _finish(self, row: Received, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(ap_inbox)
                .where(ap_inbox.c.id == row.id, ap_inbox.c.owner == row.owner)
                .values(owner=None, lease_until=None, **values)
            )

    # -- the operator's view ----------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows by state (new, waiting, handled, dropped, given_up); states with none left out."""
        state = _state()
        query = select(state, func.count()).group_by(state)
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def listing(self, state: str, limit: int) -> list[Entry]:
        """Up to ``limit`` rows ``waiting`` (soonest due first) or ``given_up`` (latest first)."""
        if state == WAITING:
            where = and_(ap_inbox.c.processed.is_(None), ap_inbox.c.last_error.is_not(None))
            order: Sequence[Any] = (ap_inbox.c.next_try, ap_inbox.c.id)
        else:
            where, order = ap_inbox.c.given_up, (ap_inbox.c.processed.desc(), ap_inbox.c.id)
        query = select(
            ap_inbox.c.id, ap_inbox.c.type, ap_inbox.c.actor, ap_inbox.c.received,
            ap_inbox.c.tries, ap_inbox.c.next_try, ap_inbox.c.last_error,
        ).where(where).order_by(*order).limit(limit)  # fmt: skip
        with self.engine.connect() as conn:
            return [Entry(**r._mapping) for r in conn.execute(query)]

    def given_up(self) -> dict[str, int]:
        """The given-up rows by activity type: what `requeue` would queue again now."""
        query = (
            select(ap_inbox.c.type, func.count())
            .where(ap_inbox.c.given_up)
            .group_by(ap_inbox.c.type)
        )
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def requeue(self, now: datetime) -> dict[str, int]:
        """Make every given-up row due at ``now`` with all its tries again; how many, by type.

        One ``UPDATE`` that takes only rows still given up: a row is re-queued
        once however many copies run this at once, and a second run finds
        nothing. Rows being handled are never touched (they are not given up).
        The last error stays, shown with the row until it is handled.
        """
        with self.engine.begin() as conn:
            kinds: Sequence[str] = conn.execute(
                update(ap_inbox)
                .where(ap_inbox.c.given_up)
                .values(given_up=False, processed=None, tries=0, next_try=_ts(now), owner=None,
                        lease_until=None)  # fmt: skip
                .returning(ap_inbox.c.type)
            ).scalars().all()  # fmt: skip
        return dict(Counter(str(kind) for kind in kinds))
