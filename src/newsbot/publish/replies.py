"""Replies that hold a post's related links: deliveries of their own.

When the related links go in a reply (``related_in = "reply"``, or "auto" when
fewer than two fit in the post), the reply is recorded before it is sent
(`newsbot.state.replies`, with its own idempotency key), recomposed after a
length error, retried after a transient failure, and after an unknown
outcome either resent under a key the server still remembers, or looked for
among the account's own statuses (a reply to the post), or reported as
uncertain where the server cannot list them. It is deleted with its post.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from newsbot.mastodon.documents import PostedStatus, StatusRequest
from newsbot.mastodon.errors import (
    AuthError,
    MastodonError,
    PermanentError,
    TooLong,
    TransientError,
)
from newsbot.mastodon.retry import backoff
from newsbot.publish.compose import compose_reply, status_language
from newsbot.publish.create import refused
from newsbot.publish.report import StopReason, StopTarget
from newsbot.state.deliveries import ENDED, DeliveryState, ReplyState
from newsbot.state.replies import RelatedSet

if TYPE_CHECKING:
    from newsbot.publish.publisher import Publisher
    from newsbot.publish.report import PassReport

log = logging.getLogger(__name__)

MAX_REPLY_TRIES = 12


class Replies:
    """The reply deliveries of one publisher's target."""

    def __init__(self, publisher: Publisher) -> None:
        self.p = publisher

    def finish_due(self, report: PassReport) -> None:
        """Send (or settle) every reply that is due: new, to retry, or in flight at a crash."""
        self.p.related_sets.release_posted(self.p.name)
        for due in self.p.related_sets.due_replies(self.p.name, self.p.clock()):
            self._send(due, report)

    def send_due(self, article_id: str, report: PassReport) -> None:
        due = self.p.related_sets.get(self.p.name, article_id)
        if due is not None and due.reply_state in (ReplyState.RETRY, ReplyState.SENDING):
            self._send(due, report)

    def _send(self, due: RelatedSet, report: PassReport) -> None:
        p = self.p
        parent = p.store.get(p.name, due.article_id)
        if parent is None or parent.state != DeliveryState.POSTED or parent.status_id is None:
            if parent is not None and parent.state in ENDED:
                p.related_sets.reply_failed(
                    p.name, due.article_id, f"its post is {parent.state}", None, ReplyState.DELETED
                )
            return
        if due.reply_outcome_unknown:
            if p.unverifiable():
                if not p.key_still_guards(due.first_attempt):
                    self._uncertain(due, report)
                    return
            else:
                parent_id = parent.status_id
                found = p.find_own(lambda s: s.in_reply_to_id == parent_id, due.first_attempt)
                if found is not None:
                    self._posted(due, found, report, "an earlier attempt had been posted")
                    return
        text, _, _ = compose_reply(due.links, p.policy, p.server.rule)
        if text is None or due.reply_key is None:
            self._failed(due, "nothing fits")
            return
        for attempt in range(2):
            p.may_send()
            p.related_sets.begin_reply(p.name, due.article_id, p.clock())
            try:
                reply = p.client.post_status(self._request(text, parent.status_id), due.reply_key)
            except TooLong as exc:
                if attempt:
                    self._failed(due, f"too long even by the strictest count: {exc}")
                    return
                p.learn_length(due.article_id, exc, report)
                text, _, _ = compose_reply(due.links, p.policy, p.server.rule)
                report.recomposed += 1
                if text is None:
                    self._failed(due, "no related link fits this server")
                    return
                continue
            except TransientError as exc:
                unknown = exc.outcome_unknown
                self._retry(due, exc, state=ReplyState.SENDING if unknown else ReplyState.RETRY)
                return
            except AuthError as exc:
                self._retry(due, exc, state=ReplyState.RETRY)
                raise StopTarget(StopReason.TOKEN_REFUSED, refused(exc)) from None
            except PermanentError as exc:
                self._failed(due, str(exc))
                return
            self._posted(due, reply, report, "reply with related links posted")
            return

    def _request(self, text: str, parent_id: str) -> StatusRequest:
        visibility = self.p.target.visibility
        return StatusRequest(
            status=text,
            visibility="unlisted" if visibility == "public" else visibility,
            language=status_language(self.p.policy.language),
            in_reply_to_id=parent_id,
        )

    def _posted(self, due: RelatedSet, reply: PostedStatus, report: PassReport, what: str) -> None:
        self.p.related_sets.reply_posted(self.p.name, due.article_id, reply.id, reply.url)
        report.replies += 1
        log.info(
            what, extra={"target": self.p.name, "article": due.article_id, "status_url": reply.url}
        )

    def _retry(self, due: RelatedSet, exc: MastodonError, state: ReplyState) -> None:
        p = self.p
        if due.tries + 1 >= MAX_REPLY_TRIES and state == ReplyState.RETRY:
            self._failed(due, f"gave up after {due.tries + 1} tries: {exc}")
            return
        retry_at = p.clock() + timedelta(seconds=backoff(due.tries + 1, p.rng))
        p.related_sets.reply_failed(p.name, due.article_id, str(exc), retry_at, state)
        log.warning(
            "reply will be retried: %s", exc, extra={"target": p.name, "article": due.article_id}
        )

    def _failed(self, due: RelatedSet, reason: str) -> None:
        p = self.p
        p.related_sets.reply_failed(p.name, due.article_id, reason, None, ReplyState.FAILED)
        log.warning(
            "reply with related links not posted: %s",
            reason,
            extra={"target": self.p.name, "article": due.article_id},
        )

    def _uncertain(self, due: RelatedSet, report: PassReport) -> None:
        reason = "reply outcome unknown and this server cannot list the account's posts"
        p = self.p
        p.related_sets.reply_failed(p.name, due.article_id, reason, None, ReplyState.UNCERTAIN)
        report.uncertain += 1
        log.error("uncertain: %s", reason, extra={"target": self.p.name, "article": due.article_id})
