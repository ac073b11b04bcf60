"""Deliveries: what was done about each article on each target, durably.

The publisher writes a row *before* every request (state ``sending``, with the
idempotency key) and the outcome *after* it. So a crash leaves either no trace
(nothing was sent), a ``sending`` row (the outcome is unknown: reconcile before
sending again), or the outcome. States:

    sending   a request is (or was, before a crash) in flight
    retry     a transient failure; try again at ``next_try``
    posted    the status exists (``status_id``, ``status_url``)
    failed    a permanent failure (``last_error`` says why); not retried
    uncertain the outcome is unknown and the server cannot list the account's posts of
              this visibility: never resent blindly; ``newsbot resolve`` settles it
    skipped   seen but deliberately not posted (backlog, catch-up, filters)
    deleted   the post was deleted after the article was withdrawn
    gone      the server no longer has the status (deleted by someone else)
    former    posted (or tried) on an account the target no longer posts to;
              never edited or deleted from here
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    select,
    update,
)

from newsbot.articles import RelatedLink
from newsbot.state import unwritten
from newsbot.state.delivery_states import (
    ACTIVE,
    ENDED,
    OF_THE_ACCOUNT,
    SETTLED_REPLIES,
    Action,
    DeliveryState,
    ReplyState,
)
from newsbot.state.index import CHANGES, Stored, decode_article
from newsbot.state.pass_marks import PassMark, write_mark
from newsbot.state.schema import (
    articles,
    deliveries,
    meta,
    post_related,
    targets,
)
from newsbot.times import epoch_seconds as ts
from newsbot.times import from_epoch

__all__ = [
    "ACTIVE",
    "ENDED",
    "OF_THE_ACCOUNT",
    "SETTLED_REPLIES",
    "Action",
    "Attempt",
    "Delivery",
    "DeliveryState",
    "DeliveryStore",
    "KeptSet",
    "KnownAccount",
    "ReplyState",
]


# The statements of every post, built once: a post's records cost their execution only.
# The row's key is bound as ``row_target`` and ``row_article``; the columns set are the
# other parameters given.
_DELIVERY = and_(
    deliveries.c.target == bindparam("row_target"),
    deliveries.c.article_id == bindparam("row_article"),
)
_SET_DELIVERY = update(deliveries).where(_DELIVERY)
# A row's tries count the tries of its current action: an edit's tries are not a delete's.
_TRY_DELIVERY = _SET_DELIVERY.values(
    tries=case((deliveries.c.action == bindparam("tried_action"), deliveries.c.tries + 1), else_=1)
)
_RELATED = and_(
    post_related.c.target == bindparam("row_target"),
    post_related.c.article_id == bindparam("row_article"),
)
_REPLY_STATE = select(post_related.c.reply_state).where(_RELATED)
_SET_RELATED = update(post_related).where(_RELATED)
_RELEASE_REPLY = _SET_RELATED.where(post_related.c.reply_state == ReplyState.WAITING).values(
    reply_state=ReplyState.RETRY, next_try=0
)


@dataclass(frozen=True, slots=True)
class KnownAccount:
    """The account a target posts to: its server and its id there (from verify_credentials)."""

    server: str | None
    account_id: str | None


RESOLVED_POSTED = "resolved by hand: posted"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of the deliveries table."""

    target: str
    article_id: str
    state: DeliveryState
    action: Action
    revision: str
    idempotency_key: str
    uncertain: bool
    status_id: str | None
    status_url: str | None
    reply_id: str | None
    article_url: str
    tries: int
    next_try: int
    first_attempt: int | None
    last_attempt: int | None
    posted_at: int | None
    last_error: str | None

    @property
    def outcome_unknown(self) -> bool:
        """A request of this row may have been carried out without its outcome being recorded.

        Either a failure said so (a timeout, a dropped connection, a 5xx) or the
        row is still ``sending``: the process died with the request in flight.
        """
        return self.uncertain or self.state == DeliveryState.SENDING


@dataclass(frozen=True, slots=True)
class Attempt:
    """What is about to be sent, recorded before it is."""

    target: str
    article_id: str
    action: Action
    revision: str
    idempotency_key: str
    article_url: str


@dataclass(frozen=True, slots=True)
class KeptSet:
    """The related links a post is made with, kept with the post (see `newsbot.state.replies`).

    ``in_reply``: they go in a reply under the post, sent under ``reply_key``.
    """

    links: tuple[RelatedLink, ...]
    editors: tuple[str, ...]
    in_reply: bool
    reply_key: str | None


class DeliveryStore:
    """Reads and writes of deliveries and target rows over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- what is due --------------------------------------------------------

    def store_changes(self) -> str | None:
        """The store index's change count (`newsbot.state.index.CHANGES`)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(meta.c.value).where(meta.c.key == CHANGES)).scalar()
        return None if value is None else str(value)

    def new_articles(
        self, target: str, now: datetime, limit: int | None, since: datetime | None = None
    ) -> list[Stored]:
        """Live articles this target has never seen, oldest first; with ``since``, only those
        published after it (read through the index on ``published``: nothing older).

        Only articles of a build that finished: one still writing its output (the
        service's build runs beside its passes) or failed half-way has stored the
        article before its page and feeds exist, and a post would link to a page
        that is not there yet. Nor one whose page that build could not write
        (`newsbot.state.unwritten`), until a build writes it. One statement reads
        both, as the build's last transaction left them.
        """
        seen = exists().where(
            and_(deliveries.c.target == target, deliveries.c.article_id == articles.c.id)
        )
        query = (
            select(articles.c.data, articles.c.html, articles.c.leads)
            .where(
                articles.c.visible,
                ~articles.c.shadowed,
                articles.c.published <= ts(now),
                articles.c.published > (-(2**62) if since is None else ts(since)),
                ~seen,
                unwritten.on_site(now),
            )
            .order_by(articles.c.published, articles.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Stored(decode_article(r.data), r.html, r.leads) for r in conn.execute(query)]

    def revised(self, target: str, limit: int) -> list[tuple[Delivery, Stored]]:
        """Posted articles whose content changed since (candidates for an edit)."""
        query = (
            select(deliveries, articles.c.data, articles.c.html, articles.c.leads)
            .join(articles, articles.c.id == deliveries.c.article_id)
            .where(
                deliveries.c.target == target,
                deliveries.c.state == DeliveryState.POSTED,
                articles.c.visible,
                ~articles.c.shadowed,
                articles.c.revision != deliveries.c.revision,
            )
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                (_delivery(row._mapping), Stored(decode_article(row.data), row.html, row.leads))
                for row in conn.execute(query)
            ]

    def withdrawn(self, target: str, limit: int) -> list[Delivery]:
        """Posted articles that are no longer live in the store (candidates for deletion)."""
        live = exists().where(
            and_(articles.c.id == deliveries.c.article_id, articles.c.visible, ~articles.c.shadowed)
        )
        query = (
            select(deliveries)
            .where(deliveries.c.target == target, deliveries.c.state == DeliveryState.POSTED, ~live)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(row._mapping) for row in conn.execute(query)]

    def unfinished(self, target: str, now: datetime) -> list[Delivery]:
        """Rows left ``sending`` (a crash) or ``retry`` rows whose time has come."""
        query = (
            select(deliveries)
            .where(
                deliveries.c.target == target,
                deliveries.c.state.in_(ACTIVE),
                deliveries.c.next_try <= ts(now),
            )
            .order_by(deliveries.c.next_try, deliveries.c.article_id)
        )
        with self.engine.connect() as conn:
            return [_delivery(row._mapping) for row in conn.execute(query)]

    def article(self, article_id: str) -> Stored | None:
        """The live article with this id, if the store still has it."""
        query = select(articles.c.data, articles.c.html, articles.c.leads).where(
            articles.c.id == article_id, articles.c.visible, ~articles.c.shadowed
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Stored(decode_article(row.data), row.html, row.leads)

    def get(self, target: str, article_id: str) -> Delivery | None:
        query = select(deliveries).where(
            deliveries.c.target == target, deliveries.c.article_id == article_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _delivery(row._mapping)

    # -- pacing -----------------------------------------------------------------

    def posted_since(self, target: str, since: datetime) -> int:
        query = select(func.count()).where(
            deliveries.c.target == target, deliveries.c.posted_at > ts(since)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def last_posted(self, target: str) -> datetime | None:
        query = select(func.max(deliveries.c.posted_at)).where(deliveries.c.target == target)
        with self.engine.connect() as conn:
            value: int | None = conn.execute(query).scalar_one_or_none()
        return None if value is None else from_epoch(value)

    # -- recording --------------------------------------------------------------

    def begin(self, attempt: Attempt, now: datetime, kept: KeptSet | None = None) -> None:
        """Record an attempt as in flight; committed before the request is sent.

        ``kept``, the related set of a post, is written in the same transaction:
        one commit before each request, and a crash leaves both or neither.
        """
        values = {
            "state": DeliveryState.SENDING,
            "action": attempt.action,
            "idempotency_key": attempt.idempotency_key,
            "article_url": attempt.article_url,
            "last_attempt": ts(now),
            "next_try": ts(now),
        }
        row = {"row_target": attempt.target, "row_article": attempt.article_id}
        with self.engine.begin() as conn:
            if kept is not None:
                keep_related_set(conn, attempt.target, attempt.article_id, kept)
            done = conn.execute(_TRY_DELIVERY, row | values | {"tried_action": attempt.action})
            if done.rowcount == 0:
                conn.execute(
                    insert(deliveries),
                    {
                        "target": attempt.target,
                        "article_id": attempt.article_id,
                        "revision": attempt.revision,
                        "uncertain": False,
                        "tries": 1,
                        "first_attempt": ts(now),
                        **values,
                    },
                )

    def resolve_posted(
        self, target: str, article_id: str, status_id: str, status_url: str, now: datetime
    ) -> None:
        """An operator found the uncertain post on the server: record it (and mark it, so
        that the next pass gives it the reply with its related links, where it has one)."""
        self._update(
            target, article_id, state=DeliveryState.POSTED, uncertain=False, status_id=status_id,
            status_url=status_url, posted_at=ts(now), tries=0, last_error=RESOLVED_POSTED,
        )  # fmt: skip

    def resolved_posted(self, target: str) -> list[Delivery]:
        """Posts an operator resolved as posted whose related set is not settled yet."""
        query = select(deliveries).where(
            deliveries.c.target == target,
            deliveries.c.state == DeliveryState.POSTED,
            deliveries.c.last_error == RESOLVED_POSTED,
        )
        with self.engine.connect() as conn:
            return [_delivery(row._mapping) for row in conn.execute(query)]

    def resolve_not_posted(self, target: str, article_id: str, now: datetime) -> None:
        """An operator checked: the uncertain request was not carried out; post on the next pass."""
        self._update(
            target, article_id, state=DeliveryState.RETRY, uncertain=False, next_try=ts(now),
            last_error="resolved: not posted",
        )  # fmt: skip

    def succeeded(
        self,
        target: str,
        article_id: str,
        *,
        state: DeliveryState,
        revision: str,
        now: datetime,
        status_id: str | None = None,
        status_url: str | None = None,
        reply_id: str | None = None,
        release_reply: bool = False,
    ) -> None:
        """Record the outcome of a successful request.

        ``release_reply``: the request made the post, so its reply waiting for it
        is now due (`release_reply`), in the same transaction.
        """
        values: dict[str, Any] = {
            "state": state,
            "revision": revision,
            "uncertain": False,
            "last_error": None,
            "tries": 0,
        }
        if status_id is not None:
            values.update(status_id=status_id, status_url=status_url)
        if reply_id is not None:
            values["reply_id"] = reply_id
        if state == DeliveryState.POSTED and status_id is not None:
            values["posted_at"] = ts(now)
        with self.engine.begin() as conn:
            conn.execute(_SET_DELIVERY, {"row_target": target, "row_article": article_id, **values})
            if release_reply:
                release_reply_of(conn, target, article_id)

    def failed(
        self,
        target: str,
        article_id: str,
        *,
        error: str,
        retry_at: datetime | None,
        uncertain: bool,
        back_to: DeliveryState | None = None,
    ) -> None:
        """Record a failure: ``retry_at`` None means permanent.

        ``back_to`` restores a row's earlier state when an edit or delete of a
        posted status failed for good: the post itself still exists.
        """
        values: dict[str, Any] = {"last_error": error[:1000]}
        if retry_at is None:
            values["state"] = back_to or DeliveryState.FAILED
        else:
            values.update(state=DeliveryState.RETRY, next_try=ts(retry_at))
        if uncertain:
            values["uncertain"] = True
        self._update(target, article_id, **values)

    def skip(self, target: str, items: Iterable[Stored], reason: str, now: datetime) -> int:
        """Mark articles as seen without posting them (backlog, catch-up, filtered out)."""
        rows = [
            {
                "target": target,
                "article_id": s.article.id,
                "state": DeliveryState.SKIPPED,
                "action": Action.CREATE,
                "revision": "",
                "idempotency_key": "",
                "uncertain": False,
                "article_url": s.article.url,
                "tries": 0,
                "next_try": ts(now),
                "last_error": reason,
            }
            for s in items
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(deliveries), rows)
        return len(rows)

    def _update(self, target: str, article_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(_SET_DELIVERY, {"row_target": target, "row_article": article_id, **values})

    # -- targets ----------------------------------------------------------------

    def account_id(self, target: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(targets.c.account_id).where(targets.c.name == target)
            ).scalar_one_or_none()

    def account_of(self, target: str) -> KnownAccount | None:
        """The account the target posted to, if it ever connected."""
        query = select(targets.c.server, targets.c.account_id).where(targets.c.name == target)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else KnownAccount(row.server, row.account_id)

    def remember_account(self, target: str, server: str, account_id: str) -> None:
        self._set_target(target, server=server, account_id=account_id, moved_to=None)

    def note_moved(self, target: str, server: str, account_id: str) -> None:
        """Remember the account the token now belongs to, for `adopt_moved` to take over."""
        moved = json.dumps({"server": server, "account_id": account_id})
        self._set_target(target, moved_to=moved)

    def moved_to(self, target: str) -> KnownAccount | None:
        """The other account the token was found to belong to, not yet adopted."""
        with self.engine.connect() as conn:
            text = conn.execute(
                select(targets.c.moved_to).where(targets.c.name == target)
            ).scalar_one_or_none()
        if not text:
            return None
        data = json.loads(text)
        return KnownAccount(data["server"], data["account_id"])

    def adopt_moved(self, target: str) -> tuple[KnownAccount, int] | None:
        """Post to the new account from now on: the rows of the former one are retired.

        Their statuses (and the replies holding related links under them) stay as
        they are on the former account; none of them is edited, deleted or posted
        again. Returns the account and how many rows.
        """
        moved = self.moved_to(target)
        if moved is None:
            return None
        with self.engine.begin() as conn:
            done = conn.execute(
                update(deliveries)
                .where(deliveries.c.target == target, deliveries.c.state.in_(OF_THE_ACCOUNT))
                .values(state=DeliveryState.FORMER, uncertain=False)
            )
            conn.execute(  # replies under the former account's posts: never sent or deleted
                update(post_related)
                .where(post_related.c.target == target, post_related.c.reply_state.isnot(None),
                       post_related.c.reply_state.notin_(SETTLED_REPLIES))
                .values(reply_state=ReplyState.FORMER)
            )  # fmt: skip
            conn.execute(
                update(targets)
                .where(targets.c.name == target)
                .values(server=moved.server, account_id=moved.account_id, moved_to=None,
                        last_error=None)
            )  # fmt: skip
        return moved, int(done.rowcount)

    def _set_target(self, target: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(targets).where(targets.c.name == target).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(targets).values(name=target, **values))

    def record_pass(
        self,
        target: str,
        now: datetime,
        *,
        account_id: str | None = None,
        error: str | None = None,
        mark: PassMark | None = None,
    ) -> None:
        """Remember the end of a pass (and the account id once known), and its mark: where a
        pass that did everything left off (`newsbot.state.pass_marks`), or None."""
        values: dict[str, Any] = {"last_pass": ts(now), "last_error": error}
        if error is None:
            values["last_success"] = ts(now)
        if account_id is not None:
            values["account_id"] = account_id
        with self.engine.begin() as conn:
            done = conn.execute(update(targets).where(targets.c.name == target).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(targets).values(name=target, **values))
            write_mark(conn, target, mark)

    def last_pass_error(self, target: str) -> str | None:
        """Why the target's last pass stopped, if it did."""
        with self.engine.connect() as conn:
            error: str | None = conn.execute(
                select(targets.c.last_error).where(targets.c.name == target)
            ).scalar_one_or_none()
        return error

    def report(self, target: str) -> dict[str, int]:
        """How many deliveries are in each state."""
        query = (
            select(deliveries.c.state, func.count())
            .where(deliveries.c.target == target)
            .group_by(deliveries.c.state)
        )
        with self.engine.connect() as conn:
            return {str(row[0]): int(row[1]) for row in conn.execute(query).all()}

    def listing(self, target: str, states: Sequence[str], limit: int) -> list[Delivery]:
        query = (
            select(deliveries)
            .where(deliveries.c.target == target, deliveries.c.state.in_(states))
            .order_by(deliveries.c.last_attempt.desc(), deliveries.c.article_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_delivery(row._mapping) for row in conn.execute(query)]


def keep_related_set(conn: Connection, target: str, article_id: str, kept: KeptSet) -> None:
    """Store the set a post is made with; a reply to make waits for the post."""
    values: dict[str, Any] = {
        "links": json.dumps([[link.title, link.url] for link in kept.links], ensure_ascii=False),
        "editors": json.dumps(list(kept.editors), ensure_ascii=False),
        "in_reply": kept.in_reply,
    }
    row = {"row_target": target, "row_article": article_id}
    existing = conn.execute(_REPLY_STATE, row).first()
    if existing is None:
        waiting = {"reply_state": ReplyState.WAITING, "reply_key": kept.reply_key}
        reply = waiting if kept.in_reply else {}
        conn.execute(
            insert(post_related),
            {"target": target, "article_id": article_id, "tries": 0, "next_try": 0}
            | values
            | reply,
        )
        return
    if existing.reply_state is None and kept.in_reply:  # recomposed into a reply
        values.update(reply_state=ReplyState.WAITING, reply_key=kept.reply_key)
    elif existing.reply_state == ReplyState.WAITING and not kept.in_reply:
        values.update(reply_state=None)  # recomposed: the links fit in the post
    conn.execute(_SET_RELATED, row | values)


def release_reply_of(conn: Connection, target: str, article_id: str) -> None:
    """The post is made: its reply, waiting for it, is now due."""
    conn.execute(_RELEASE_REPLY, {"row_target": target, "row_article": article_id})


def _delivery(row: Any) -> Delivery:
    values = {name: row[name] for name in Delivery.__dataclass_fields__}
    values.update(state=DeliveryState(row["state"]), action=Action(row["action"]))
    return Delivery(**values)
