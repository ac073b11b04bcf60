"""Edits of revised articles' posts and deletions of withdrawn ones, within their guards.

None while the store is suspect (`newsbot.state.suspect`): a store that lost
half its files must not delete half the account. At most
``max_edits_per_pass`` and ``max_deletes_per_pass`` per pass; the rest wait,
counted as held.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from newsbot.articles import revision_of
from newsbot.mastodon.errors import (
    AuthError,
    Gone,
    MastodonError,
    PermanentError,
    RateLimited,
    TooLong,
    TransientError,
)
from newsbot.mastodon.retry import backoff
from newsbot.publish.compose import Composed, ComposeError
from newsbot.publish.create import MAX_TRIES, NEW_PER_PASS, refused
from newsbot.publish.report import PassReport, StopReason, StopTarget
from newsbot.state import suspect
from newsbot.state.deliveries import Action, Attempt, Delivery, DeliveryState, ReplyState
from newsbot.state.index import Stored

if TYPE_CHECKING:
    from newsbot.publish.publisher import Publisher

log = logging.getLogger(__name__)


class Amends:
    """The edits and deletions of one publisher's target, and this pass's allowance of them."""

    def __init__(self, publisher: Publisher) -> None:
        self.p = publisher
        self.suspect: suspect.Suspect | None = None
        self._edits_left = self._deletes_left = 0

    def guard(self) -> None:
        """This pass's allowance of edits and deletions: none while the store is suspect."""
        p = self.p
        self.suspect = suspect.load(p.store.engine)
        if self.suspect is not None:
            self._edits_left = self._deletes_left = 0
            log.warning(
                "no post is edited or deleted: %s",
                self.suspect.message(),
                extra={"target": p.name},
            )
            return
        self._edits_left = p.target.max_edits_per_pass
        self._deletes_left = p.target.max_deletes_per_pass

    def _allowed(self, action: Action, article_id: str, report: PassReport) -> bool:
        """Whether one more edit or delete fits this pass; counts the ones held back."""
        left = self._edits_left if action == Action.EDIT else self._deletes_left
        if left <= 0:
            report.held += 1
            if report.held == 1 and self.suspect is None:
                log.warning(
                    "per-pass limit of %ss reached; the rest wait for the next pass",
                    action,
                    extra={"target": self.p.name, "article": article_id},
                )
            return False
        if action == Action.EDIT:
            self._edits_left -= 1
        else:
            self._deletes_left -= 1
        return True

    # -- edits ----------------------------------------------------------------------

    def edit_revised(self, report: PassReport) -> None:
        if not self.p.target.edit_on_update:
            return
        revised = self.p.store.revised(self.p.name, NEW_PER_PASS)
        self.p.saturated = self.p.saturated or len(revised) >= NEW_PER_PASS
        for delivery, stored in revised:
            self.edit(delivery, stored, report)

    def edit(self, delivery: Delivery, stored: Stored, report: PassReport) -> None:
        p = self.p
        article = stored.article
        revision = revision_of(article)
        if delivery.status_id is None or not self._allowed(Action.EDIT, article.id, report):
            return
        kept = p.related_sets.get(p.name, article.id)
        try:
            composed = p.compose(stored, kept=kept)
        except ComposeError as exc:
            self._edit_failed(article.id, revision, f"cannot compose a status: {exc}", report)
            return
        # An edit keeps only the media it sends: the image goes again (or its new version).
        media_ids = p.media.upload(article, p.limits)
        p.begin(
            Attempt(p.name, article.id, Action.EDIT, delivery.revision,
                    delivery.idempotency_key, article.url),
        )  # fmt: skip
        try:
            try:
                p.client.edit_status(delivery.status_id, p.request(composed, media_ids))
            except TooLong as exc:
                p.learn_length(article.id, exc, report)
                composed = p.compose(stored, kept=kept)
                report.recomposed += 1
                p.client.edit_status(delivery.status_id, p.request(composed, media_ids))
            except PermanentError as exc:
                if not self._over_new_limit(exc, composed):
                    raise
                composed = p.compose(stored, kept=kept)
                report.recomposed += 1
                log.info(
                    "edit refused over a limit lowered since it was read; recomposed: %d/%d "
                    "characters", composed.length, composed.limit,
                    extra={"target": p.name, "article": article.id},
                )  # fmt: skip
                p.client.edit_status(delivery.status_id, p.request(composed, media_ids))
        except Gone:
            p.store.succeeded(
                p.name, article.id, state=DeliveryState.GONE, revision=revision, now=p.clock()
            )
            log.warning(
                "gone: the post was deleted on the server; the revision is not posted again",
                extra={"target": p.name, "article": article.id,
                       "status_url": delivery.status_url},
            )  # fmt: skip
            return
        except TransientError as exc:
            last = _last_try(delivery, Action.EDIT, exc)
            if last is not None:
                self._edit_failed(article.id, revision, f"gave up after {last} tries: {exc}",
                                  report)  # fmt: skip
                return
            self._retry_later(delivery, exc, report)
            return
        except AuthError as exc:
            self._retry_later(delivery, exc, report)
            raise StopTarget(StopReason.TOKEN_REFUSED, refused(exc)) from None
        except (PermanentError, ComposeError) as exc:
            self._edit_failed(article.id, revision, str(exc), report)
            return
        p.store.succeeded(
            p.name, article.id, state=DeliveryState.POSTED, revision=revision, now=p.clock()
        )
        report.edited += 1
        log.info(
            "edited",
            extra={"target": p.name, "article": article.id, "status_url": delivery.status_url},
        )

    def _over_new_limit(self, exc: PermanentError, composed: Composed) -> bool:
        """Whether a refused edit is too long for the server's limit as it is now.

        Pleroma and Akkoma answer every refused edit alike (`Profile.opaque_edit_errors`),
        so a length error cannot be told from a bad language or media. Their counting is
        the profile's own (`newsbot.mastodon.profiles`): a well-fitted edit is too long
        there only if the limit was lowered since it was read (a process trusts what it
        read for `SERVER_TTL`). The limit is read again, once: only if the edit is over
        it is one shorter edit sent. Any other cause would refuse that one too, and no
        counting is learned from an answer that does not say it was the length.
        """
        p = self.p
        if not (p.server.profile.opaque_edit_errors and exc.status_code == 400):
            return False
        rule = p.reread_limits().rule
        return rule.count(composed.text, composed.spoiler_text) > rule.limit

    def _edit_failed(self, article_id: str, revision: str, reason: str, report: PassReport) -> None:
        """The post stays as it was; the revision is remembered so the edit is not retried."""
        p = self.p
        log.warning(
            "edit failed, the post stays as it was: %s", reason,
            extra={"target": p.name, "article": article_id},
        )  # fmt: skip
        p.store.succeeded(
            p.name, article_id, state=DeliveryState.POSTED, revision=revision, now=p.clock()
        )
        p.store.failed(p.name, article_id, error=f"edit failed: {reason}", retry_at=None,
                       uncertain=False, back_to=DeliveryState.POSTED)  # fmt: skip
        report.failed += 1

    def withdrawn_before_edit(self, delivery: Delivery) -> None:
        """Withdrawn before its edit went out: the post stands (and may be deleted next)."""
        self.p.store.failed(
            self.p.name, delivery.article_id, error="withdrawn before its edit was made",
            retry_at=None, uncertain=False, back_to=DeliveryState.POSTED,
        )  # fmt: skip

    def _retry_later(self, delivery: Delivery, exc: MastodonError, report: PassReport) -> None:
        """An edit or delete to try again: when a rate limit lifts, or after a backoff."""
        p = self.p
        if isinstance(exc, RateLimited):
            retry_at = exc.retry_at
        else:
            retry_at = p.clock() + timedelta(seconds=backoff(delivery.tries + 1, p.rng))
        p.store.failed(
            p.name, delivery.article_id, error=str(exc), retry_at=retry_at, uncertain=False
        )
        report.retries += 1

    # -- deletions ------------------------------------------------------------------

    def delete_withdrawn(self, report: PassReport) -> None:
        if not self.p.target.delete_on_withdraw:
            return
        withdrawn = self.p.store.withdrawn(self.p.name, NEW_PER_PASS)
        self.p.saturated = self.p.saturated or len(withdrawn) >= NEW_PER_PASS
        for delivery in withdrawn:
            self.delete(delivery, report)

    def delete(self, delivery: Delivery, report: PassReport) -> None:
        p = self.p
        allowed = self._allowed(Action.DELETE, delivery.article_id, report)
        if delivery.status_id is None or not allowed:
            return
        p.begin(
            Attempt(p.name, delivery.article_id, Action.DELETE, delivery.revision,
                    delivery.idempotency_key, delivery.article_url),
        )  # fmt: skip
        kept = p.related_sets.get(p.name, delivery.article_id)
        reply_id = kept.reply_id if kept is not None else None
        try:
            for status_id in dict.fromkeys(
                filter(None, (reply_id, delivery.reply_id, delivery.status_id))
            ):
                with contextlib.suppress(Gone):  # already deleted: as good
                    p.client.delete_status(status_id)
        except TransientError as exc:
            last = _last_try(delivery, Action.DELETE, exc)
            if last is not None:
                self._delete_failed(delivery, f"gave up after {last} tries: {exc}", report)
                return
            self._retry_later(delivery, exc, report)
            return
        except AuthError as exc:
            self._retry_later(delivery, exc, report)
            raise StopTarget(StopReason.TOKEN_REFUSED, refused(exc)) from None
        except PermanentError as exc:
            self._delete_failed(delivery, str(exc), report)
            return
        p.store.succeeded(
            p.name, delivery.article_id, state=DeliveryState.DELETED,
            revision=delivery.revision, now=p.clock(),
        )  # fmt: skip
        if kept is not None and kept.reply_state is not None:
            p.related_sets.reply_failed(
                p.name, delivery.article_id, "deleted with its post", None, ReplyState.DELETED
            )
        report.deleted += 1
        log.info(
            "deleted",
            extra={"target": p.name, "article": delivery.article_id,
                   "status_url": delivery.status_url},
        )  # fmt: skip

    def _delete_failed(self, delivery: Delivery, reason: str, report: PassReport) -> None:
        """The post stays on the server: said once, and kept (with its link) among the failed.

        Failed, not posted: a posted row of a withdrawn article would be deleted
        again every pass. The status page and ``newsbot state`` list it with its
        link, for someone to delete it by hand.
        """
        p = self.p
        log.warning(
            "delete failed, the post stays on the server: %s", reason,
            extra={"target": p.name, "article": delivery.article_id,
                   "status_url": delivery.status_url},
        )  # fmt: skip
        p.store.failed(p.name, delivery.article_id, error=f"delete failed: {reason}",
                       retry_at=None, uncertain=False)  # fmt: skip
        report.failed += 1


def _last_try(delivery: Delivery, action: Action, exc: TransientError) -> int | None:
    """The number of this try of an edit or delete if no other may follow, else None.

    A server error that lasts would otherwise have the request sent again every
    pass, for ever; after `MAX_TRIES` it is given up. A rate limit is not a
    failure of the request (it says when to come back), so it is never the last.
    ``delivery`` is the row as read before this try, whose tries count its own action's.
    """
    tries = (delivery.tries if delivery.action == action else 0) + 1  # this one included
    return tries if tries >= MAX_TRIES and not isinstance(exc, RateLimited) else None
