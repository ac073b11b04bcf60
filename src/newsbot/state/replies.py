"""Related sets and replies: what related links each post was made with, and its reply.

An edit keeps the related links the post was made with, unless the editors
changed their picks; so the set is stored with the post. When the links went
in a reply under the post, the reply is a delivery of its own: recorded
(``sending``, with its own idempotency key) before it is sent, its outcome
after, retried when due, reconciled after an unknown outcome, and deleted
with its post. Reply states: ``waiting`` (for its post, recorded before the
post is sent), ``sending``, ``retry``, ``posted``, ``failed``, ``uncertain``,
``deleted``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, exists, select, update

from newsbot.articles import RelatedLink
from newsbot.state.deliveries import (
    DeliveryState,
    KeptSet,
    ReplyState,
    keep_related_set,
    release_reply_of,
)
from newsbot.state.schema import deliveries, post_related
from newsbot.times import epoch_seconds


@dataclass(frozen=True, slots=True)
class RelatedSet:
    """One post's related links, and its reply when they are in one."""

    target: str
    article_id: str
    links: tuple[RelatedLink, ...]
    editors: tuple[str, ...]
    in_reply: bool
    reply_state: ReplyState | None
    reply_key: str | None
    reply_id: str | None
    reply_url: str | None
    tries: int
    next_try: int
    first_attempt: int | None
    last_error: str | None

    @property
    def reply_outcome_unknown(self) -> bool:
        return self.reply_state == ReplyState.SENDING


class RelatedStore:
    """Reads and writes of related sets and replies, over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, target: str, article_id: str) -> RelatedSet | None:
        query = select(post_related).where(
            post_related.c.target == target, post_related.c.article_id == article_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _related_set(row._mapping)

    def keep(
        self,
        target: str,
        article_id: str,
        links: Sequence[RelatedLink],
        editors: Sequence[str],
        *,
        in_reply: bool,
        reply_key: str | None,
    ) -> None:
        """Store the set a post was made with; a reply to make waits for the post.

        A post being sent keeps its set with its attempt instead
        (`DeliveryStore.begin`), in one transaction.
        """
        kept = KeptSet(tuple(links), tuple(editors), in_reply, reply_key)
        with self.engine.begin() as conn:
            keep_related_set(conn, target, article_id, kept)

    def release(self, target: str, article_id: str) -> None:
        """The post is made: its reply, waiting for it, is now due."""
        with self.engine.begin() as conn:
            release_reply_of(conn, target, article_id)

    def release_posted(self, target: str) -> None:
        """Release the replies whose post was recorded as made but not released: a crash
        between the two writes would otherwise leave them waiting for ever."""
        with self.engine.begin() as conn:
            conn.execute(
                update(post_related)
                .where(*_waiting_on_posted(target))
                .values(reply_state=ReplyState.RETRY, next_try=0)
            )

    def waiting_on_posted(self, target: str) -> bool:
        """Whether `release_posted` has a reply to release."""
        query = select(exists().where(*_waiting_on_posted(target)))
        with self.engine.connect() as conn:
            return bool(conn.execute(query).scalar())

    def due_replies(self, target: str, now: datetime) -> list[RelatedSet]:
        """Replies in flight after a crash, or to try again now."""
        query = (
            select(post_related)
            .where(
                post_related.c.target == target,
                post_related.c.reply_state.in_((ReplyState.SENDING, ReplyState.RETRY)),
                post_related.c.next_try <= epoch_seconds(now),
            )
            .order_by(post_related.c.next_try, post_related.c.article_id)
        )
        with self.engine.connect() as conn:
            return [_related_set(row._mapping) for row in conn.execute(query)]

    def listing(self, target: str, states: Sequence[str]) -> list[RelatedSet]:
        query = select(post_related).where(
            post_related.c.target == target, post_related.c.reply_state.in_(states)
        )
        with self.engine.connect() as conn:
            return [_related_set(row._mapping) for row in conn.execute(query)]

    def begin_reply(self, target: str, article_id: str, now: datetime) -> None:
        row = self.get(target, article_id)
        moment = epoch_seconds(now)
        first = row.first_attempt if row is not None and row.first_attempt else moment
        self._set(
            target, article_id, reply_state=ReplyState.SENDING, first_attempt=first,
            next_try=moment,
            tries=post_related.c.tries + 1,
        )  # fmt: skip

    def reply_posted(self, target: str, article_id: str, reply_id: str, url: str | None) -> None:
        self._set(
            target, article_id, reply_state=ReplyState.POSTED, reply_id=reply_id, reply_url=url,
            last_error=None, tries=0,
        )  # fmt: skip

    def reply_failed(
        self,
        target: str,
        article_id: str,
        error: str,
        retry_at: datetime | None,
        state: ReplyState,
    ) -> None:
        values: dict[str, Any] = {"reply_state": state, "last_error": error[:1000]}
        if retry_at is not None:
            values["next_try"] = epoch_seconds(retry_at)
        self._set(target, article_id, **values)

    def counts(self, target: str) -> dict[str, int]:
        query = select(post_related.c.reply_state).where(post_related.c.target == target)
        found: dict[str, int] = {}
        with self.engine.connect() as conn:
            for (state,) in conn.execute(query):
                if state is not None:
                    found[str(state)] = found.get(str(state), 0) + 1
        return found

    def _set(self, target: str, article_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(post_related)
                .where(post_related.c.target == target, post_related.c.article_id == article_id)
                .values(**values)
            )


def _related_set(row: Any) -> RelatedSet:
    links = tuple(RelatedLink(str(t), str(u)) for t, u in json.loads(row["links"]))
    return RelatedSet(
        target=row["target"],
        article_id=row["article_id"],
        links=links,
        editors=tuple(json.loads(row["editors"])),
        in_reply=bool(row["in_reply"]),
        reply_state=None if row["reply_state"] is None else ReplyState(row["reply_state"]),
        reply_key=row["reply_key"],
        reply_id=row["reply_id"],
        reply_url=row["reply_url"],
        tries=int(row["tries"]),
        next_try=int(row["next_try"]),
        first_attempt=row["first_attempt"],
        last_error=row["last_error"],
    )


def _waiting_on_posted(target: str) -> tuple[ColumnElement[bool], ...]:
    """Replies of ``target`` still waiting for a post that was recorded as made."""
    posted = exists().where(
        deliveries.c.target == post_related.c.target,
        deliveries.c.article_id == post_related.c.article_id,
        deliveries.c.state == DeliveryState.POSTED,
    )
    return (
        post_related.c.target == target,
        post_related.c.reply_state == ReplyState.WAITING,
        posted,
    )
