"""Activities received at the actor's inbox: stored before the 202, processed after.

The sender has its 202 once a row is stored, and will not send again: a row
is processed until it is handled, refused for good, or has failed
``max_tries`` times. Handling is claimed as deliveries are
(:mod:`newsbot.state.ap_deliveries`): one ``UPDATE ... RETURNING`` takes a due
row under the claimer's token and a lease, so several processes sharing the
database (a replica, the web server's task and the scheduler's pass) never
handle one row at once; a claimer killed mid-way leaves a lease that runs
out, and the row is claimed again. A transient failure puts the row back with
a later ``next_try``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, insert, or_, select, update

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


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


class InboxRows:
    def __init__(self, engine: Engine, *, max_tries: int = 16) -> None:
        self.engine = engine
        self.max_tries = max_tries

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
        candidates = select(ap_inbox.c.id).where(due).order_by(ap_inbox.c.id).limit(limit)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            taken = conn.execute(
                update(ap_inbox)
                .where(ap_inbox.c.id.in_(candidates.scalar_subquery()), due)
                .values(owner=token, lease_until=_ts(now + lease), tries=ap_inbox.c.tries + 1)
                .returning(ap_inbox.c.id, ap_inbox.c.actor, ap_inbox.c.body, ap_inbox.c.tries)
            ).all()
        return [Received(r.id, r.actor, r.body, r.tries, token) for r in sorted(taken)]

    def processed(self, row: Received, at: datetime, error: str | None = None) -> None:
        """The row is done with: handled, or refused for good (``error`` says why)."""
        self._finish(row, processed=_ts(at), last_error=error)

    def retry(self, row: Received, at: datetime, error: str, next_try: datetime) -> bool:
        """A transient failure: due again at ``next_try``, or given up after ``max_tries``.

        Returns whether it will be tried again.
        """
        if row.tries >= self.max_tries:
            self._finish(row, processed=_ts(at), last_error=f"gave up after {row.tries} tries: "
                         + error)  # fmt: skip
            return False
        self._finish(row, next_try=_ts(next_try), last_error=error)
        return True

    def _finish(self, row: Received, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(ap_inbox)
                .where(ap_inbox.c.id == row.id, ap_inbox.c.owner == row.owner)
                .values(owner=None, lease_until=None, **values)
            )
