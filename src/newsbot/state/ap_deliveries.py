"""Delivery rows of the actor's activities: one per (activity, inbox), claimed and finished.

A row is ``pending`` until a worker claims it: one ``UPDATE ... RETURNING``
sets a batch to ``sending`` under the worker's claim token and a lease (on
PostgreSQL the candidates are taken ``FOR UPDATE SKIP LOCKED``, so replicas
never wait on each other's rows; SQLite runs one writer at a time). After the request the
row becomes ``done``, or ``pending`` again with a later ``next_try`` (the
caller's retry schedule decides when), or ``failed`` (a permanent refusal),
``given_up`` (``max_tries`` tries failed) or ``dead`` (its host is dead). A
worker killed mid-flight leaves rows ``sending`` whose lease runs out; they
are claimed again.

Hosts have a breaker: after ``breaker_failures`` failures in a row their
rows wait (paused), and a host failing without a single success for
``dead_after`` is dead.

Rows given up or dead wait for the operator: once the cause is fixed,
`DeliveryRows.requeue` makes them due again (and their hosts alive), except a
row that a later activity of its article makes useless (`_superseded`).

A ``Create`` sent after its note was edited carries the note as it is now
(`_bodies`): a server that missed the ``Create`` until then (given up and
re-queued, or retried while the edit's ``Update`` went ahead) drops the
``Update`` of a note it never had, and would keep the old text for good.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from newsbot.state.database import chunks
from newsbot.state.leases import claimer, is_alive
from newsbot.state.owner_files import OwnerFiles
from newsbot.state.schema import ap_activities, ap_deliveries, ap_hosts, ap_notes

MAX_BACKOFF_PAUSE = 3600
"""The longest a host's breaker stays open before one more try."""

GIVEN_UP = ("given_up", "dead")
"""The states of rows no worker tries any more, which the operator may queue again."""


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    activity_id: str
    inbox: str
    host: str
    tries: int
    """Including this one."""
    body: bytes


@dataclass(frozen=True, slots=True)
class GivenUp:
    """A given-up row as the operator sees it."""

    id: int
    activity_id: str
    type: str
    inbox: str
    state: str
    tries: int
    finished: int | None
    last_status: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Requeue:
    """What a re-queue takes (or took): rows by activity type, rows left, hosts revived."""

    by_type: dict[str, int]
    superseded: int
    """Rows left given up: a later activity of their article makes them useless (`_superseded`)."""
    hosts: list[str]
    """Dead hosts of the rows taken, alive again."""

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one send ended: ``done``, ``retry`` (with an optional earliest time), ``failed``."""

    claimed: Claimed
    result: str
    status: int | None = None
    error: str | None = None
    retry_after: datetime | None = None
    seconds: float = 0.0


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


class DeliveryRows:
    def __init__(
        self,
        engine: Engine,
        *,
        breaker_failures: int = 5,
        dead_after: timedelta = timedelta(days=7),
        max_tries: int = 16,
        files: OwnerFiles | None = None,
    ) -> None:
        self.engine = engine
        self.breaker_failures = breaker_failures
        self.dead_after = dead_after
        self.max_tries = max_tries
        self.files = files
        """This process's owner files: a claimer killed in another pid namespace that shares
        the data folder is seen to be gone (`release_orphans`)."""

    # -- claiming ---------------------------------------------------------------------

    def claim(self, owner: str, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
        """Take up to ``limit`` due rows for this worker (rows of paused or dead hosts wait)."""
        token = f"{owner}|{uuid.uuid4().hex[:8]}"
        t = _ts(now)
        blocked = select(ap_hosts.c.host).where(or_(ap_hosts.c.paused_until > t, ap_hosts.c.dead))
        due = or_(
            and_(ap_deliveries.c.state == "pending", ap_deliveries.c.next_try <= t),
            and_(ap_deliveries.c.state == "sending", ap_deliveries.c.lease_until < t),
        )
        candidates = (
            select(ap_deliveries.c.id)
            .where(due, ap_deliveries.c.host.not_in(blocked))
            .order_by(ap_deliveries.c.next_try, ap_deliveries.c.id)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True, of=ap_deliveries)
            taken = conn.execute(
                update(ap_deliveries)
                .where(ap_deliveries.c.id.in_(candidates.scalar_subquery()), due)
                .values(
                    state="sending",
                    owner=token,
                    lease_until=_ts(now + lease),
                    tries=ap_deliveries.c.tries + 1,
                )
                .returning(
                    ap_deliveries.c.id,
                    ap_deliveries.c.activity_id,
                    ap_deliveries.c.inbox,
                    ap_deliveries.c.host,
                    ap_deliveries.c.tries,
                )
            ).all()
            if not taken:
                return []
            # One body per activity, shared by its rows: every inbox gets the same bytes.
            bodies = _bodies(conn, {r.activity_id for r in taken})
        return [
            Claimed(r.id, r.activity_id, r.inbox, r.host, r.tries, bodies[r.activity_id])
            for r in sorted(taken, key=lambda r: r.id)  # the order they were queued in
            if r.activity_id in bodies
        ]

    def release_orphans(self) -> int:
        """Free the rows of claimers seen to be gone (killed): due again at once.

        Seen: on this machine in the same pid namespace, or through their owner
        file in the shared data folder (`newsbot.state.leases.is_alive`). Other
        rows in flight wait for their lease to run out, since their claimer may
        still be sending them.
        """
        dead = select(ap_hosts.c.host).where(ap_hosts.c.dead)
        with self.engine.begin() as conn:  # rows that came back pending after their host died
            conn.execute(
                update(ap_deliveries)
                .where(ap_deliveries.c.state == "pending", ap_deliveries.c.host.in_(dead))
                .values(state="dead", last_error="the host is dead")
            )
        query = select(ap_deliveries.c.owner).where(ap_deliveries.c.state == "sending").distinct()
        with self.engine.connect() as conn:
            tokens: list[str] = [str(r[0]) for r in conn.execute(query) if r[0]]
        gone = [t for t in tokens if not is_alive(claimer(t), self.files)]
        if not gone:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(
                update(ap_deliveries)
                .where(ap_deliveries.c.owner.in_(gone), ap_deliveries.c.state == "sending")
                .values(state="pending", lease_until=None)
            ).rowcount

    def release(self, owner: str, ids: Sequence[int]) -> int:
        """Make rows ``ids`` that ``owner`` claimed and did not finish due again at once (their
        requests were cut short by a stop); how many. The try counts, as after a crash."""
        released = 0
        with self.engine.begin() as conn:
            for chunk in chunks(ids):
                released += conn.execute(
                    update(ap_deliveries)
                    .where(
                        ap_deliveries.c.id.in_(chunk),
                        ap_deliveries.c.state == "sending",
                        ap_deliveries.c.owner.startswith(f"{owner}|", autoescape=True),
                    )
                    .values(state="pending", lease_until=None)
                ).rowcount
        return released

    # -- finishing --------------------------------------------------------------------

    def record(
        self, outcomes: Sequence[Outcome], now: datetime, next_try: Callable[[Outcome], datetime]
    ) -> None:
        """Record a batch of outcomes in one transaction, and each host's health with them.

        ``next_try`` says when a row to be retried is due again.
        """
        if not outcomes:
            return
        t = _ts(now)
        done = [o for o in outcomes if o.result == "done"]
        failed = [o for o in outcomes if o.result == "failed"]
        retry = [o for o in outcomes if o.result == "retry"]
        given_up = [o for o in retry if o.claimed.tries >= self.max_tries]
        retry = [o for o in retry if o.claimed.tries < self.max_tries]
        row = ap_deliveries.c.id == bindparam("b_id")
        with self.engine.begin() as conn:
            if done:
                conn.execute(
                    update(ap_deliveries).where(row).values(
                        state="done", finished=t, lease_until=None, last_error=None,
                        last_status=bindparam("b_status"),
                    ),
                    [{"b_id": o.claimed.id, "b_status": o.status} for o in done],
                )  # fmt: skip
            final = [(o, "failed") for o in failed] + [(o, "given_up") for o in given_up]
            if final:
                conn.execute(
                    update(ap_deliveries).where(row).values(
                        state=bindparam("b_state"), finished=t, lease_until=None,
                        last_status=bindparam("b_status"), last_error=bindparam("b_error"),
                    ),
                    [{"b_id": o.claimed.id, "b_state": state, "b_status": o.status,
                      "b_error": o.error} for o, state in final],
                )  # fmt: skip
            if retry:
                conn.execute(
                    update(ap_deliveries).where(row).values(
                        state="pending", next_try=bindparam("b_next"), lease_until=None,
                        last_status=bindparam("b_status"), last_error=bindparam("b_error"),
                    ),
                    [{"b_id": o.claimed.id, "b_next": _ts(next_try(o)),
                      "b_status": o.status, "b_error": o.error} for o in retry],
                )  # fmt: skip
        self._record_hosts(outcomes, now)

    def _record_hosts(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Per host: a success closes its breaker; failures in a row open it, then kill it."""
        t = _ts(now)
        ok: set[str] = set()
        bad: dict[str, int] = {}
        for o in outcomes:
            if o.result == "done" or (o.result == "failed" and o.status is not None):
                ok.add(o.claimed.host)  # the host answered: it is alive
            elif o.result == "retry":
                bad[o.claimed.host] = bad.get(o.claimed.host, 0) + 1
        for host in ok:
            bad.pop(host, None)
        with self.engine.begin() as conn:
            known = {
                r.host: r
                for r in conn.execute(
                    select(ap_hosts).where(ap_hosts.c.host.in_(list(ok | set(bad))))
                )
            }
            fresh = [
                {"host": h, "failures": 0, "dead": False} for h in (ok | set(bad)) if h not in known
            ]
            if fresh:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(ap_hosts), fresh)
                except IntegrityError:
                    pass  # another worker recorded it first; the updates below still apply
            healthy = [h for h in ok if h not in known or known[h].failures or known[h].dead]
            if healthy:
                conn.execute(
                    update(ap_hosts).where(ap_hosts.c.host.in_(healthy)).values(
                        failures=0, failing_since=None, paused_until=None, dead=False,
                        last_success=t,
                    )
                )  # fmt: skip
            for host, count in bad.items():
                previous = known.get(host)
                failures = (previous.failures if previous else 0) + count
                since = previous.failing_since if previous and previous.failing_since else t
                paused = None
                if failures >= self.breaker_failures:
                    pause = min(60 * 2 ** (failures - self.breaker_failures), MAX_BACKOFF_PAUSE)
                    paused = t + pause
                dead = t - since >= self.dead_after.total_seconds()
                conn.execute(
                    update(ap_hosts).where(ap_hosts.c.host == host).values(
                        failures=failures, failing_since=since, paused_until=paused, dead=dead,
                    )
                )  # fmt: skip
                if dead:
                    conn.execute(
                        update(ap_deliveries)
                        .where(ap_deliveries.c.host == host, ap_deliveries.c.state == "pending")
                        .values(state="dead", finished=t, last_error="the host is dead")
                    )

    # -- enqueueing and reading -------------------------------------------------------

    @staticmethod
    def add(conn: Any, activity_id: str, targets: Iterable[tuple[str, str]], now: datetime) -> int:
        """Add one row per (inbox, host), in that order (inside the caller's transaction)."""
        dead = set(conn.execute(select(ap_hosts.c.host).where(ap_hosts.c.dead)).scalars())
        t = _ts(now)
        rows = []
        for inbox, host in targets:
            rows.append({
                "activity_id": activity_id, "inbox": inbox, "host": host,
                "state": "dead" if host in dead else "pending", "tries": 0, "next_try": t,
                "created": t, "finished": t if host in dead else None,
            })  # fmt: skip
        if rows:
            conn.execute(insert(ap_deliveries), rows)
        return len(rows)

    def counts(self) -> dict[str, int]:
        query = select(ap_deliveries.c.state, func.count()).group_by(ap_deliveries.c.state)
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def dead_hosts(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(ap_hosts.c.host).where(ap_hosts.c.dead)).scalars())

    def paused_hosts(self, now: datetime) -> list[str]:
        query = select(ap_hosts.c.host).where(ap_hosts.c.paused_until > _ts(now))
        with self.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    def pending_by_host(self) -> dict[str, int]:
        query = (
            select(ap_deliveries.c.host, func.count())
            .where(ap_deliveries.c.state.in_(("pending", "sending")))
            .group_by(ap_deliveries.c.host)
        )
        with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(query)}

    def oldest_pending(self) -> int | None:
        query = select(func.min(ap_deliveries.c.created)).where(
            ap_deliveries.c.state.in_(("pending", "sending"))
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
            return None if value is None else int(value)

    # -- the operator's view ----------------------------------------------------------

    def given_up(self, limit: int) -> list[GivenUp]:
        """Up to ``limit`` rows given up or dead, latest first, with their activity's type."""
        query = (
            select(
                ap_deliveries.c.id,
                ap_deliveries.c.activity_id,
                ap_activities.c.type,
                ap_deliveries.c.inbox,
                ap_deliveries.c.state,
                ap_deliveries.c.tries,
                ap_deliveries.c.finished,
                ap_deliveries.c.last_status,
                ap_deliveries.c.last_error,
            )  # fmt: skip
            .join(ap_activities, ap_activities.c.id == ap_deliveries.c.activity_id)
            .where(ap_deliveries.c.state.in_(GIVEN_UP))
            .order_by(ap_deliveries.c.finished.desc(), ap_deliveries.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [GivenUp(**r._mapping) for r in conn.execute(query)]

    def requeue_preview(self) -> Requeue:
        """What `requeue` would take now, without changing anything."""
        superseded = _superseded()
        query = (
            select(ap_activities.c.type, ap_deliveries.c.host, superseded.label("superseded"))
            .join(ap_activities, ap_activities.c.id == ap_deliveries.c.activity_id)
            .where(ap_deliveries.c.state.in_(GIVEN_UP))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            dead: set[str] = set(
                conn.execute(select(ap_hosts.c.host).where(ap_hosts.c.dead)).scalars()
            )
        taken = [r for r in rows if not r.superseded]
        by_type: dict[str, int] = {}
        for r in taken:
            by_type[r.type] = by_type.get(r.type, 0) + 1
        hosts = sorted({r.host for r in taken} & dead)
        return Requeue(by_type, len(rows) - len(taken), hosts)

    def requeue(self, now: datetime) -> Requeue:
        """Make the given-up and dead rows due at ``now`` with all their tries again.

        One ``UPDATE`` takes the rows still given up (so a row is re-queued once
        however many copies run this at once, a second run finds nothing, and
        rows claimed by a worker are never touched), leaving those a later
        activity of their article already reached. Their hosts start afresh:
        alive, breaker closed, no failures counted.
        """
        t = _ts(now)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(ap_deliveries)
                .where(ap_deliveries.c.state.in_(GIVEN_UP), ~_superseded())
                .values(
                    state="pending",
                    tries=0,
                    next_try=t,
                    finished=None,
                    owner=None,
                    lease_until=None,
                )  # fmt: skip
                .returning(ap_deliveries.c.activity_id, ap_deliveries.c.host)
            ).all()
            types: dict[str, str] = {}
            for chunk in chunks({r.activity_id for r in taken}):
                query = select(ap_activities.c.id, ap_activities.c.type)
                types.update(
                    (r.id, r.type) for r in conn.execute(query.where(ap_activities.c.id.in_(chunk)))
                )
            hosts = sorted({r.host for r in taken})
            dead: list[str] = []
            for chunk in chunks(hosts):
                known = ap_hosts.c.host.in_(chunk)
                was_dead = select(ap_hosts.c.host).where(known, ap_hosts.c.dead)
                dead += conn.execute(was_dead).scalars()
                conn.execute(
                    update(ap_hosts)
                    .where(known, or_(ap_hosts.c.dead, ap_hosts.c.failures > 0))
                    .values(dead=False, failures=0, failing_since=None, paused_until=None)
                )
            left = conn.execute(
                select(func.count())
                .select_from(ap_deliveries)
                .where(ap_deliveries.c.state.in_(GIVEN_UP))
            ).scalar_one()
        by_type: dict[str, int] = {}
        for r in taken:
            kind = types.get(r.activity_id, "?")
            by_type[kind] = by_type.get(kind, 0) + 1
        return Requeue(by_type, int(left), sorted(dead))


def _bodies(conn: Any, ids: set[str]) -> dict[str, bytes]:
    """The bodies of activities ``ids``; a ``Create`` whose note was edited since (its
    ``Update`` made at or after it) carries the note as it is now.

    The outbox keeps the ``Create`` as it was made; only what is sent changes.
    A server that has the note already ignores a second ``Create`` of it.
    """
    edited = and_(
        ap_activities.c.type == "Create",
        ap_notes.c.state == "published",
        ap_notes.c.updated >= ap_activities.c.created,
    )
    query = (
        select(ap_activities.c.id, ap_activities.c.body, case((edited, ap_notes.c.document)))
        .outerjoin(ap_notes, ap_notes.c.article_id == ap_activities.c.article_id)
        .where(ap_activities.c.id.in_(ids))
    )
    bodies: dict[str, bytes] = {}
    for activity_id, body, note in conn.execute(query):
        if note is not None:
            body = json.dumps({**json.loads(body), "object": json.loads(note)}, ensure_ascii=False)
        bodies[activity_id] = str(body).encode()
    return bodies


def _superseded() -> Any:
    """In SQL, of an ``ap_deliveries`` row: a later activity of its article makes it useless.

    Either a later activity reached its inbox (an old ``Create`` sent after the
    ``Delete`` that reached it would bring the note back), except an ``Update``
    for a ``Create``: a server drops the ``Update`` of a note it never had
    (Mastodon before 4.4.5 always, and from 4.5.1 when the note is over a day
    old, as a ``Create`` given up after days of tries is), so the ``Create`` is still
    due, carrying the note as it is now (`_bodies`). Or it is a ``Create``
    whose note was deleted since: the server has nothing to show, and the
    ``Delete`` (delivered, due, or re-queued with it) removes whatever an
    ``Update`` may have brought.
    """
    mine, later, other = aliased(ap_activities), aliased(ap_activities), aliased(ap_deliveries)
    reached = exists().where(
        mine.c.id == ap_deliveries.c.activity_id,
        later.c.article_id == mine.c.article_id,
        later.c.seq > mine.c.seq,
        or_(mine.c.type != "Create", later.c.type != "Update"),
        other.c.activity_id == later.c.id,
        other.c.inbox == ap_deliveries.c.inbox,
        other.c.state == "done",
    )
    created, deletion = aliased(ap_activities), aliased(ap_activities)
    deleted_since = exists().where(
        created.c.id == ap_deliveries.c.activity_id,
        created.c.type == "Create",
        deletion.c.article_id == created.c.article_id,
        deletion.c.seq > created.c.seq,
        deletion.c.type == "Delete",
    )
    return or_(reached, deleted_since)
