"""The outbox: articles become Create, Update and Delete activities, each queued for delivery.

After each build :meth:`Outbox.sync` compares the live articles (visible,
published, owning their id) with the notes followers last received
(``ap_notes``): a new article is a ``Create``, a changed revision an
``Update`` carrying the note's ``updated``, a note whose article is gone or
withdrawn a ``Delete`` (its URL then answers 410 with a Tombstone). Each
activity, its note and its deliveries (one per follower inbox, shared inboxes
once) are written in one transaction: an activity is never recorded without
its deliveries, nor the other way round.

Edits and deletions obey ``may_change`` (the same guard as posts: a store
that looks damaged edits and deletes nothing; they wait for a later sync).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from newsbot.activitypub import documents
from newsbot.activitypub.deliveries import DeliveryStore
from newsbot.activitypub.documents import Actor
from newsbot.articles import Article, revision_of
from newsbot.publish.compose import RelatedLink
from newsbot.render import bodies as html
from newsbot.state.activities import Activities, KnownNote, NewActivity
from newsbot.state.database import Engine
from newsbot.summaries import lead

log = logging.getLogger(__name__)

Related = Callable[[Article, datetime], Sequence[Article]]
LEAD_LENGTH = 300


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    held: int = 0
    """Updates and deletes not made because ``may_change`` said no."""
    deliveries: int = 0
    activities: list[str] = field(default_factory=list)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


class Outbox:
    def __init__(
        self,
        engine: Engine,
        actor: Actor,
        *,
        related: Related = lambda _article, _now: (),
        may_change: Callable[[], bool] = lambda: True,
        backlog: timedelta = timedelta(hours=48),
    ) -> None:
        self.rows = Activities(engine, DeliveryStore.enqueue)
        self.actor = actor
        self.related = related
        self.may_change = may_change
        self.backlog = backlog

    # -- sync ---------------------------------------------------------------------------

    def sync(self, now: datetime) -> SyncReport:
        report = SyncReport()
        notes = self.rows.notes()
        live = self.rows.live(_ts(now))
        changed = [
            article_id
            for article_id, revision in live.items()
            if not _current(notes.get(article_id), revision)
        ]
        if changed:
            # A new note links to the article's page: none before the page is written.
            waiting = self.rows.not_on_site(_ts(now))
            changed = [
                article_id
                for article_id in changed
                if article_id not in waiting or _published(notes.get(article_id))
            ]
        for article_id, row in self.rows.read(changed, _ts(now)):
            known = notes.get(article_id)
            article = row.article()
            revision = row.revision or revision_of(article)
            if _current(known, revision):
                continue
            if known is None or known.state == "deleted":
                self._publish(article, row.html, revision, now, report, again=known is not None)
            elif self.may_change():
                self._update(article, row.html, revision, now, report)
            else:
                report.held += 1
        for article_id, known in notes.items():
            if known.state == "published" and article_id not in live:
                if self.may_change():
                    self._delete(article_id, known.revision, now, report)
                else:
                    report.held += 1
        return report

    def _note(self, article: Article, body_html: str, now: datetime,
              updated: datetime | None = None) -> dict[str, Any]:  # fmt: skip
        summary = " ".join(article.summary.split()) or lead(
            html.to_text(body_html), LEAD_LENGTH, article.lang or self.actor.language
        )
        related = [RelatedLink(a.title, a.url) for a in self.related(article, now)]
        return documents.note(self.actor, article, summary, related, updated=updated)

    def _publish(self, article: Article, body_html: str, revision: str, now: datetime,
                 report: SyncReport, *, again: bool) -> None:  # fmt: skip
        note = self._note(article, body_html, now)
        salt = f"{revision}@{_ts(now)}" if again else revision
        activity_id = self.actor.activity_id("Create", article.id, salt)
        values = {"url_path": urlsplit(article.url).path, "state": "published",
                  "revision": revision, "published": _ts(article.published),
                  "updated": None, "deleted": None, "document": json.dumps(note)}  # fmt: skip
        report.deliveries += self.rows.publish(
            article.id, values, self._activity(activity_id, "Create", article.id, note, now),
            again=again, deliver=article.published >= now - self.backlog,
        )  # fmt: skip
        report.created += 1
        report.activities.append(activity_id)

    def _update(self, article: Article, body_html: str, revision: str, now: datetime,
                report: SyncReport) -> None:  # fmt: skip
        note = self._note(article, body_html, now, updated=now)
        activity_id = self.actor.activity_id("Update", article.id, revision)
        values = {"url_path": urlsplit(article.url).path, "revision": revision,
                  "updated": _ts(now), "document": json.dumps(note)}  # fmt: skip
        report.deliveries += self.rows.update(
            article.id, values, self._activity(activity_id, "Update", article.id, note, now)
        )
        report.updated += 1
        report.activities.append(activity_id)

    def _delete(self, article_id: str, revision: str, now: datetime, report: SyncReport) -> None:
        stone = documents.tombstone(self.actor, article_id, now)
        stone.pop("@context")
        activity_id = self.actor.activity_id("Delete", article_id, revision)
        report.deliveries += self.rows.delete(
            article_id, _ts(now), self._activity(activity_id, "Delete", article_id, stone, now)
        )
        report.deleted += 1
        report.activities.append(activity_id)

    def _activity(self, activity_id: str, kind: str, article_id: str, obj: dict[str, Any],
                  now: datetime) -> NewActivity:  # fmt: skip
        body = documents.activity(self.actor, kind, obj, activity_id, now)
        return NewActivity(activity_id, kind, article_id, True, body, now)

    # -- Accept ---------------------------------------------------------------------

    def accept(self, follow: dict[str, Any], inbox: str, now: datetime) -> str:
        """Queue a signed ``Accept`` of ``follow`` to the follower's own inbox."""
        follow_id = str(follow.get("id", ""))
        accept_id = self.actor.activity_id("Accept", follow_id, str(follow.get("actor", "")))
        body = documents.accept(self.actor, {k: v for k, v in follow.items() if k != "@context"},
                                accept_id)  # fmt: skip
        self.rows.record_once(NewActivity(accept_id, "Accept", None, False, body, now), [inbox])
        return accept_id

    # -- reading ---------------------------------------------------------------------

    def note_by_id(self, article_id: str) -> tuple[str, dict[str, Any], int | None] | None:
        return self.rows.note_by_id(article_id)

    def article_at(self, url_path: str) -> str | None:
        return self.rows.article_at(url_path)

    def activity(self, activity_id: str) -> dict[str, Any] | None:
        return self.rows.activity(activity_id)

    def total(self) -> int:
        return self.rows.total()

    def page(self, before: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first: up to ``limit`` activities with ``seq < before``, and the next cursor."""
        rows = self.rows.page(before, limit + 1)
        items = []
        for _seq, body in rows[:limit]:
            body.pop("@context", None)
            items.append(body)
        return items, (rows[limit - 1][0] if len(rows) > limit else None)


def _current(known: KnownNote | None, revision: str | None) -> bool:
    """Whether followers have the article's revision already (as far as the row says)."""
    return known is not None and known.state == "published" and known.revision == revision


def _published(known: KnownNote | None) -> bool:
    """Whether followers have a note of the article (an update, not a new note, is due)."""
    return known is not None and known.state == "published"
