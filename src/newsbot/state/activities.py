"""The actor's notes and activities: what followers last received of each article, the outbox.

Each write puts a note, its activity and the activity's delivery rows in one
transaction: an activity is never recorded without its deliveries, nor the
other way round. Which inboxes get a row, and in which order, is the
caller's (``route``); this module only stores them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from newsbot.articles import Article
from newsbot.state import unwritten
from newsbot.state.database import chunks
from newsbot.state.followers import delivery_inboxes
from newsbot.state.index import decode_article
from newsbot.state.schema import ap_activities, ap_notes, articles
from newsbot.times import from_epoch

Enqueue = Callable[[Connection, str, Iterable[str], datetime], int]
"""Add the delivery rows of an activity to some inboxes, in the caller's transaction."""


@dataclass(frozen=True, slots=True)
class KnownNote:
    state: str  # published | deleted
    revision: str


@dataclass(frozen=True, slots=True)
class LiveArticle:
    revision: str | None
    data: Any
    html: str

    def article(self) -> Article:
        return decode_article(self.data)


@dataclass(frozen=True, slots=True)
class NewActivity:
    id: str
    type: str
    article_id: str | None
    public: bool
    body: dict[str, Any]
    created: datetime


class Activities:
    def __init__(self, engine: Engine, enqueue: Enqueue) -> None:
        self.engine = engine
        self.enqueue = enqueue

    # -- what changed ----------------------------------------------------------------

    def notes(self) -> dict[str, KnownNote]:
        query = select(ap_notes.c.article_id, ap_notes.c.state, ap_notes.c.revision)
        with self.engine.connect() as conn:
            return {r.article_id: KnownNote(r.state, r.revision) for r in conn.execute(query)}

    def live(self, now: int) -> dict[str, str | None]:
        """Articles followers should have (visible, owning their id, published by ``now``),
        by id: their revision (None for a row stored before revisions were).

        Ids and revisions only: a sync compares them with the notes and reads the
        text of the few that changed (`read`). Reading every article's text and
        HTML at each sync held the whole store in memory (~7 KB an article in the
        service bench's store).
        """
        query = select(articles.c.id, articles.c.revision).where(*_live(now))
        with self.engine.connect() as conn:
            return {r.id: r.revision for r in conn.execute(query)}

    def not_on_site(self, now: int) -> set[str]:
        """Live articles whose page may not be on the site yet: stored by a build still
        writing its output (the service's builds run beside its syncs) or one that failed
        half-way, or whose page a folder could not write (`newsbot.state.unwritten`).

        A note for one of them would link followers to a page that is not there; it is
        made once the page is. (Notes already made stay: their pages were written.)
        """
        query = select(articles.c.id).where(*_live(now), ~unwritten.on_site(from_epoch(now)))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def read(self, ids: Sequence[str], now: int) -> Iterator[tuple[str, LiveArticle]]:
        """The live articles among ``ids``, a chunk at a time."""
        for chunk in chunks(ids, 500):
            query = select(articles.c.id, articles.c.revision, articles.c.data, articles.c.html)
            with self.engine.connect() as conn:
                rows = conn.execute(query.where(articles.c.id.in_(chunk), *_live(now))).all()
            for r in rows:
                yield r.id, LiveArticle(r.revision, r.data, r.html)

    # -- writing ----------------------------------------------------------------------

    def publish(self, article_id: str, note: dict[str, Any], activity: NewActivity, *,
                again: bool, deliver: bool) -> int:  # fmt: skip
        """Store a note (new, or again after a deletion) and its Create; returns the deliveries."""
        with self.engine.begin() as conn:
            if again:
                conn.execute(update(ap_notes).where(ap_notes.c.article_id == article_id)
                             .values(**note))  # fmt: skip
            else:
                conn.execute(insert(ap_notes).values(article_id=article_id, **note))
            return self._record(conn, activity, deliver=deliver)

    def update(self, article_id: str, note: dict[str, Any], activity: NewActivity) -> int:
        """Change a note and record its Update; returns the deliveries."""
        with self.engine.begin() as conn:
            conn.execute(update(ap_notes).where(ap_notes.c.article_id == article_id).values(**note))
            return self._record(conn, activity)

    def delete(self, article_id: str, deleted: int, activity: NewActivity) -> int:
        """Mark a note deleted and record its Delete; returns the deliveries."""
        with self.engine.begin() as conn:
            conn.execute(
                update(ap_notes).where(ap_notes.c.article_id == article_id)
                .values(state="deleted", deleted=deleted)
            )  # fmt: skip
            return self._record(conn, activity)

    def _record(self, conn: Connection, activity: NewActivity, *, deliver: bool = True) -> int:
        self._insert(conn, activity)
        if not deliver:
            return 0
        return self.enqueue(conn, activity.id, delivery_inboxes(conn), activity.created)

    @staticmethod
    def _insert(conn: Connection, activity: NewActivity) -> None:
        seq = int(
            conn.execute(select(func.coalesce(func.max(ap_activities.c.seq), 0))).scalar_one()
        )
        conn.execute(insert(ap_activities).values(
            id=activity.id, seq=seq + 1, type=activity.type, article_id=activity.article_id,
            public=activity.public, body=json.dumps(activity.body, ensure_ascii=False),
            created=int(activity.created.timestamp()),
        ))  # fmt: skip

    def record_once(self, activity: NewActivity, inboxes: Sequence[str]) -> None:
        """Record an activity to ``inboxes`` unless its id is already there (an Accept)."""
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(ap_activities.c.id).where(ap_activities.c.id == activity.id)
            ).first()
            if exists is None:
                self._insert(conn, activity)
                self.enqueue(conn, activity.id, inboxes, activity.created)

    # -- reading ----------------------------------------------------------------------

    def note_by_id(self, article_id: str) -> tuple[str, dict[str, Any], int | None] | None:
        query = select(ap_notes.c.state, ap_notes.c.document, ap_notes.c.deleted).where(
            ap_notes.c.article_id == article_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return row.state, json.loads(row.document), row.deleted

    def article_at(self, url_path: str) -> str | None:
        query = select(ap_notes.c.article_id).where(ap_notes.c.url_path == url_path).limit(1)
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
            return None if found is None else str(found)

    def activity(self, activity_id: str) -> dict[str, Any] | None:
        query = select(ap_activities.c.body).where(
            ap_activities.c.id == activity_id, ap_activities.c.public
        )
        with self.engine.connect() as conn:
            body = conn.execute(query).scalar_one_or_none()
        return None if body is None else dict(json.loads(str(body)))

    def total(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(
                select(func.count()).select_from(ap_activities).where(ap_activities.c.public)
            ).scalar_one())  # fmt: skip

    def page(self, before: int | None, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Newest first: up to ``limit`` public activities (seq and body) with ``seq < before``."""
        query = select(ap_activities.c.seq, ap_activities.c.body).where(ap_activities.c.public)
        if before is not None:
            query = query.where(ap_activities.c.seq < before)
        query = query.order_by(ap_activities.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [(int(r.seq), json.loads(r.body)) for r in conn.execute(query)]


def _live(now: int) -> tuple[Any, ...]:
    return (articles.c.visible, ~articles.c.shadowed, articles.c.published <= now)
