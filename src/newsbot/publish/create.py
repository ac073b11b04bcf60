"""New posts: each article posted exactly once on a target, whatever fails on the way.

Every try is recorded before it is sent (`Publisher.begin`) and its outcome
after. When a try's outcome is unknown (a timeout, a dropped connection, a
crash), nothing is sent again before the account's own statuses are searched
for the post (`newsbot.publish.reconcile`); where the server cannot list them,
only an Idempotency-Key the server still remembers makes a resend safe, and
otherwise the delivery is marked uncertain for an operator to settle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from newsbot.articles import Article, revision_of
from newsbot.mastodon.documents import PostedStatus
from newsbot.mastodon.errors import AuthError, PermanentError, RateLimited, TooLong, TransientError
from newsbot.mastodon.retry import backoff
from newsbot.publish import rules
from newsbot.publish.compose import Composed, ComposeError, idempotency_key
from newsbot.publish.report import PassReport, StopReason, StopTarget
from newsbot.state.deliveries import Action, Attempt, Delivery, DeliveryState, KeptSet
from newsbot.state.index import Stored

if TYPE_CHECKING:
    from newsbot.publish.publisher import Publisher

log = logging.getLogger(__name__)

IN_PASS_TRIES = 3
"""Quick retries of a transient failure within one pass, before leaving it to a later pass."""
MAX_TRIES = 12
"""After this many failed tries a delivery is given up on and recorded as failed."""
MAX_WAIT_IN_PASS = 30.0
"""A rate limit that lifts sooner than this is waited out; a longer one ends the pass."""
NEW_PER_PASS = 200
"""New articles read per pass (pacing posts far fewer)."""


@dataclass
class _Post:
    """One article's post across the tries of one pass."""

    stored: Stored
    revision: str
    key: str
    composed: Composed
    uncertain: bool
    """An earlier try may have been carried out: look (or trust the key) before resending."""
    since: int | None
    """The first try, in seconds since the epoch: how far back to look for the post."""
    found_revision: str
    """The revision a post found by reconciliation is of: the first try's (a later pass
    edits it to the current text, where the target edits)."""
    tries: int
    media_ids: tuple[str, ...] | None = None
    shortened: bool = False

    @property
    def article(self) -> Article:
        return self.stored.article


class Creates:
    """The new posts of one publisher's target."""

    def __init__(self, publisher: Publisher) -> None:
        self.p = publisher

    def post_new(self, report: PassReport, since: datetime | None = None) -> None:
        """Mark what the rules skip as seen; post the rest oldest first, as pacing allows.

        With ``since``, only articles published after it are looked at.
        """
        p = self.p
        now = p.clock()
        candidates = p.store.new_articles(p.name, now, NEW_PER_PASS, since)
        p.saturated = p.saturated or len(candidates) >= NEW_PER_PASS
        chosen = rules.sort(p.target, candidates, lambda stored: stored.article, now)
        for skip in rules.Skip:
            report.skipped += p.store.skip(p.name, chosen.skipped[skip], skip, now)
        for stored in chosen.to_post:
            if not p.readable(stored.article) or not p.may_post_now():
                report.waiting += 1
                continue
            self.create(stored, report, delivery=None)

    def create(self, stored: Stored, report: PassReport, delivery: Delivery | None) -> None:
        """Post the article once: reconcile an unknown outcome first, retry transient failures."""
        post = self._first(stored, report, delivery)
        if post is None:
            return
        article = stored.article
        for _ in range(IN_PASS_TRIES):
            if post.uncertain and self._settled_without_sending(post, report):
                return
            try:
                status = self._send(post)
            except TooLong as exc:
                if self._recomposed(post, exc, report):
                    continue
                return
            except TransientError as exc:
                if self._ended_by(post, exc, report):
                    return
                continue
            except AuthError as exc:
                self.p.store.failed(
                    self.p.name, article.id, error=str(exc), retry_at=self.p.clock(),
                    uncertain=False,
                )  # fmt: skip
                raise StopTarget(StopReason.TOKEN_REFUSED, refused(exc)) from None
            except PermanentError as exc:
                self._give_up(article.id, str(exc), report)
                return
            self._posted(article, post.revision, status, report, post.composed, sent=True)
            return
        report.retries += 1

    # -- the steps of one post ------------------------------------------------------

    def _first(self, stored: Stored, report: PassReport, delivery: Delivery | None) -> _Post | None:
        """The post as first composed, carrying over what an earlier pass tried; None when
        the article cannot make a status (recorded as failed)."""
        article = stored.article
        revision = revision_of(article)
        try:
            composed = self.p.compose(stored)
        except ComposeError as exc:
            self._give_up(article.id, f"cannot compose a status: {exc}", report)
            return None
        return _Post(
            stored=stored,
            revision=revision,
            key=idempotency_key(self.p.name, article.id, revision),
            composed=composed,
            uncertain=delivery is not None and delivery.outcome_unknown,
            since=None if delivery is None else delivery.first_attempt,
            found_revision=revision if delivery is None else delivery.revision,
            tries=0 if delivery is None else delivery.tries,
        )

    def _settled_without_sending(self, post: _Post, report: PassReport) -> bool:
        """After an unknown outcome: look first; where nothing can be looked at, only a key
        the server still remembers makes resending safe. Whether the post is settled."""
        p = self.p
        if p.unverifiable():
            if p.key_still_guards(post.since):
                return False
            self._mark_uncertain(post.article, report)
            return True
        return self._reconciled(post, report)

    def _send(self, post: _Post) -> PostedStatus:
        """One try: media once, the related set and the attempt recorded, then the request."""
        p = self.p
        if post.media_ids is None:
            post.media_ids = p.media.upload(post.article, p.limits)
        article = post.article
        p.begin(
            Attempt(p.name, article.id, Action.CREATE, post.revision, post.key, article.url),
            self._kept(article, post.revision, post.composed),
        )
        post.since = post.since or int(p.clock().timestamp())
        post.tries += 1
        return p.client.post_status(p.request(post.composed, post.media_ids), post.key)

    def _recomposed(self, post: _Post, exc: TooLong, report: PassReport) -> bool:
        """The server counts more than its profile said: learn, once, and recompose.
        Whether there is a shorter status to try."""
        if post.shortened:
            self._give_up(post.article.id, f"too long even by the strictest count: {exc}", report)
            return False
        self.p.learn_length(post.article.id, exc, report)
        try:
            post.composed = self.p.compose(post.stored)
        except ComposeError:
            self._give_up(post.article.id, f"too long for this server: {exc}", report)
            return False
        report.recomposed += 1
        log.info(
            "recomposed after a length error: %d/%d characters (%s)",
            post.composed.length, post.composed.limit, post.composed.counting,
            extra={"target": self.p.name, "article": post.article.id},
        )  # fmt: skip
        post.shortened = True
        return True

    def _ended_by(self, post: _Post, exc: TransientError, report: PassReport) -> bool:
        """A transient failure: wait and try again, or give up after `MAX_TRIES` (unless the
        post turns out to have been made). Whether the post is done with."""
        post.uncertain = post.uncertain or exc.outcome_unknown
        if post.tries >= MAX_TRIES:
            if not (post.uncertain and self._reconciled(post, report)):
                self._give_up(post.article.id, f"gave up after {post.tries} tries: {exc}", report)
            return True
        self._transient(post.article.id, exc, post.tries, post.uncertain)
        return False

    def _reconciled(self, post: _Post, report: PassReport) -> bool:
        """Record the post as made if an earlier try did get through; whether it did."""
        found = self.p.find_posted(post.article.url, post.since)
        if found is None:
            return False
        log.info(
            "an earlier attempt had been posted",
            extra={"target": self.p.name, "article": post.article.id, "status_url": found.url},
        )
        self._posted(post.article, post.found_revision, found, report, post.composed)
        return True

    def _mark_uncertain(self, article: Article, report: PassReport) -> None:
        p = self.p
        reason = (
            "outcome unknown and this server cannot list the account's "
            f"{p.target.visibility} posts: resolve with `newsbot resolve {p.name} "
            f"{article.id} --posted URL` or `--not-posted`"
        )
        p.store.failed(
            p.name, article.id, error=reason, retry_at=None, uncertain=True,
            back_to=DeliveryState.UNCERTAIN,
        )  # fmt: skip
        report.uncertain += 1
        log.error(
            "uncertain: %s", reason,
            extra={"target": p.name, "article": article.id, "article_url": article.url},
        )  # fmt: skip

    def _posted(
        self,
        article: Article,
        revision: str,
        status: PostedStatus,
        report: PassReport,
        composed: Composed,
        sent: bool = False,
    ) -> None:
        p = self.p
        if not sent:  # found by reconciliation: its related set is this composition's
            kept = self._kept(article, revision, composed)
            p.related_sets.keep(
                p.name, article.id, kept.links, kept.editors, in_reply=kept.in_reply,
                reply_key=kept.reply_key,
            )  # fmt: skip
        p.store.succeeded(
            p.name, article.id, state=DeliveryState.POSTED, revision=revision, now=p.clock(),
            status_id=status.id, status_url=status.url or status.uri, release_reply=True,
        )  # fmt: skip
        report.posted += 1
        log.info(
            "posted", extra={"target": p.name, "article": article.id, "status_url": status.url}
        )
        if composed.reply_text is not None:
            p.replies.send_due(article.id, report)

    def _kept(self, article: Article, revision: str, composed: Composed) -> KeptSet:
        """The post's related set (and its reply to make), recorded with the attempt, before
        the post is sent: a crash after the post leaves the reply due, never forgotten."""
        return KeptSet(
            links=tuple(composed.related),
            editors=tuple(article.related),
            in_reply=composed.reply_text is not None,
            reply_key=idempotency_key(self.p.name, article.id, revision + ":reply"),
        )

    def _transient(self, article_id: str, exc: TransientError, tries: int, uncertain: bool) -> None:
        """Record a transient failure and wait before the next try (or end the pass)."""
        p = self.p
        now = p.clock()
        if isinstance(exc, RateLimited):
            wait = (exc.retry_at - now).total_seconds()
            p.store.failed(
                p.name, article_id, error=str(exc), retry_at=exc.retry_at, uncertain=uncertain
            )
            if wait > MAX_WAIT_IN_PASS:
                p.pause_until(exc.retry_at)
            p.sleep(max(wait, 0) + p.rng.uniform(0, 1))
            return
        delay = backoff(tries, p.rng)
        retry_at = now + timedelta(seconds=delay)
        p.store.failed(p.name, article_id, error=str(exc), retry_at=retry_at, uncertain=uncertain)
        p.sleep(min(delay, MAX_WAIT_IN_PASS))

    def _give_up(self, article_id: str, reason: str, report: PassReport) -> None:
        self.p.store.failed(self.p.name, article_id, error=reason, retry_at=None, uncertain=False)
        report.failed += 1
        log.warning("not posted: %s", reason, extra={"target": self.p.name, "article": article_id})

    # -- posts of earlier passes ----------------------------------------------------

    def abandon(self, delivery: Delivery, report: PassReport) -> None:
        """The article left the store before its post was confirmed."""
        p = self.p
        found = (
            p.find_posted(delivery.article_url, delivery.first_attempt)
            if delivery.outcome_unknown
            else None
        )
        if found is not None:
            p.store.succeeded(
                p.name, delivery.article_id, state=DeliveryState.POSTED,
                revision=delivery.revision, now=p.clock(), status_id=found.id,
                status_url=found.url or found.uri,
            )  # fmt: skip
            return
        p.store.failed(
            p.name, delivery.article_id, error="withdrawn before it was posted",
            retry_at=None, uncertain=False, back_to=DeliveryState.SKIPPED,
        )  # fmt: skip
        report.skipped += 1

    def settle_resolved(self) -> None:
        """Posts an operator resolved as posted get their related set (and reply) now."""
        p = self.p
        for delivery in p.store.resolved_posted(p.name):
            stored = p.store.article(delivery.article_id)
            if stored is not None and p.related_sets.get(p.name, delivery.article_id) is None:
                try:
                    composed: Composed | None = p.compose(stored)
                except ComposeError:
                    composed = None
                if composed is not None:
                    p.related_sets.keep(
                        p.name, delivery.article_id, composed.related, stored.article.related,
                        in_reply=composed.reply_text is not None,
                        reply_key=idempotency_key(p.name, delivery.article_id,
                                                  delivery.revision + ":reply"),
                    )  # fmt: skip
            p.related_sets.release(p.name, delivery.article_id)
            p.store.succeeded(
                p.name, delivery.article_id, state=DeliveryState.POSTED,
                revision=delivery.revision, now=p.clock(),
            )  # fmt: skip


def refused(exc: Exception) -> str:
    """The one wording of a refused token (the reason is `StopReason.TOKEN_REFUSED`)."""
    return f"the access token was refused: {exc}"
