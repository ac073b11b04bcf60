"""One publish pass for one target: due work -> send -> record.

Order of work: rows left unfinished (a crash, or a retry whose time came),
then deletions of withdrawn articles, edits of revised ones, and last new
articles, oldest first, as pacing allows. Every request is recorded before it
is sent and its outcome after; an unknown outcome (timeout, dropped
connection, crash) is reconciled against the account's own recent statuses
before anything is sent again, because some servers ignore Idempotency-Key.

This module is the pass's state machine; its steps live beside it: new posts
(`newsbot.publish.create`), edits and deletions within their guards
(`newsbot.publish.amend`), replies with related links
(`newsbot.publish.replies`), which articles and when (`newsbot.publish.rules`),
lead images (`newsbot.publish.media`) and the search for a post whose outcome
is unknown (`newsbot.publish.reconcile`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NoReturn

from newsbot.articles import Article
from newsbot.mastodon.account_check import check_account
from newsbot.mastodon.client import MastodonClient
from newsbot.mastodon.documents import Limits, PostedStatus, Software, StatusRequest
from newsbot.mastodon.errors import (
    AuthError,
    MastodonError,
    TooLong,
    TransientError,
)
from newsbot.mastodon.profiles import UNKNOWN
from newsbot.publish import reconcile, rules
from newsbot.publish.amend import Amends
from newsbot.publish.compose import Composed, ComposeError, PostPolicy, RelatedLink, compose
from newsbot.publish.create import Creates, refused
from newsbot.publish.media import Media
from newsbot.publish.reconcile import links_as_its_own
from newsbot.publish.replies import Replies
from newsbot.publish.report import Interrupted, PassReport, StopReason, StopTarget
from newsbot.publish.serverrules import ServerRules, choose_profile
from newsbot.publish.targets import fingerprint
from newsbot.render import bodies as html
from newsbot.settings import TargetSettings
from newsbot.state import suspect
from newsbot.state.deliveries import Action, Attempt, DeliveryStore, KeptSet, KnownAccount
from newsbot.state.index import Stored
from newsbot.state.learning import Learned, TargetKnowledge
from newsbot.state.leases import Lease
from newsbot.state.pass_marks import PassMark
from newsbot.state.replies import RelatedSet, RelatedStore
from newsbot.summaries import Leads

__all__ = ["PassReport", "Publisher", "StopReason", "account_changed", "links_as_its_own"]

log = logging.getLogger(__name__)

IDEMPOTENCY_TRUST = 45 * 60
"""Seconds after a first attempt during which a server that honours Idempotency-Key still
remembers it (Mastodon: an hour): resending with the key is safe, no search is needed."""

SERVER_TTL = 600.0
"""Seconds a process trusts what it read of the server (limits, software, the scopes its
listing and media checks proved); the token and its account are checked every pass."""

SKIPS_SAID = 2
"""Passes skipped in a row for another process's lease before it is said at INFO (once)."""

Related = Callable[[Article, int, datetime], Sequence[Article]]
"""Finds up to k related articles (editors' first) for an article, as of a moment."""


@dataclass
class Publisher:
    """Publishes the store to one target; the clock, sleep and randomness are injected."""

    name: str
    target: TargetSettings
    client: MastodonClient
    store: DeliveryStore
    related: Related
    media_root: Path | None = None
    media_prefix: str = ""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = lambda seconds: None
    rng: random.Random = field(default_factory=random.Random)
    pacing: bool = True
    default_language: str | None = None
    """The site's language, for articles that have none when the target sets none either."""
    lease: Lease | None = None
    """Held around a pass, so that two processes never publish to one target at once."""
    stop: threading.Event | None = None
    """Once set, nothing more is sent (the request in flight is finished and recorded)."""
    store_root: Path | None = None
    """The article store: while it is suspect, only articles whose file is there are posted."""

    offline_profile: str | None = None
    """Dry run only: compose with this profile (or "learned") without asking the server."""
    monotonic: Callable[[], float] = time.monotonic
    """For `SERVER_TTL`."""

    def __post_init__(self) -> None:
        self.limits = Limits()
        self.account_id: str | None = None
        self._paused_until: datetime | None = None
        self.policy = PostPolicy(
            template=self.target.template,
            hashtags=self.target.hashtags,
            max_hashtags=self.target.max_hashtags,
            related_in=self.target.related_in,
            language=self.target.language or self.default_language,
            summary_floor=self.target.summary_floor,
        )
        self.knowledge = TargetKnowledge(self.store.engine)
        self.replies = Replies(self)
        self.creates = Creates(self)
        self.amends = Amends(self)
        self.media = Media(self.name, self.target, self.client, self.media_root, self.media_prefix)
        self.related_sets = RelatedStore(self.store.engine)
        self.server = ServerRules(UNKNOWN, self.limits)
        self._server_read: tuple[float, Software | None] | None = None
        self._mark: tuple[str | None, datetime] | None = None
        self.saturated = False
        """A step of this pass read as many rows as it may: there may be more."""
        self._skipped = 0
        """Passes skipped in a row because another process held the lease."""

    @property
    def suspect(self) -> suspect.Suspect | None:
        """Why the store is not trusted this pass, if it is not."""
        return self.amends.suspect

    # -- the pass ---------------------------------------------------------------

    def run(self, dry_run: bool = False) -> PassReport:
        """One pass; never raises for server trouble, it is in the report.

        A dry run sends and records nothing, so it needs no lease; a real pass
        is skipped (``report.busy``) while another process holds the lease.
        """
        report = PassReport(self.name)
        if dry_run:
            self._dry_run(report)
            return report
        if self.lease is not None and not self.lease.acquire():
            report.busy = self.lease.holder() or "another process"
            self._skipped += 1
            # Copies sharing a database meet now and then: that is their normal way, and
            # worth no line. Twice in a row, a holder may have died (in another container
            # it is waited out, up to the lease's time): said once, until a pass runs.
            log.log(
                logging.INFO if self._skipped == SKIPS_SAID else logging.DEBUG,
                "pass skipped: another process is publishing to this target",
                extra={"target": self.name, "holder": report.busy},
            )
            return report
        self._skipped = 0
        try:
            with self.lease.renewed() if self.lease is not None else contextlib.nullcontext():
                self._pass(report)
        finally:
            if self.lease is not None:
                self.lease.release()
        return report

    def _pass(self, report: PassReport) -> None:
        if self._paused_until is not None and self.clock() < self._paused_until:
            # Sending now would only be refused.
            report.stopped_by(StopReason.RATE_LIMITED, _rate_limited(self._paused_until))
            return
        started = self.clock()
        mark, self._mark, self.saturated = self._mark, None, False
        changes = self.store.store_changes()
        try:
            self._connect()
            self.amends.guard()
            self._finish_unfinished(report)
            self.creates.settle_resolved()
            self.replies.finish_due(report)
            if mark is not None and mark[0] == changes:
                # The store did not change since a pass that did all there was to do: no
                # article was revised or withdrawn since, and new ones are those come due.
                self.creates.post_new(report, since=mark[1])
            else:
                self.amends.delete_withdrawn(report)
                self.amends.edit_revised(report)
                self.creates.post_new(report)
        except Interrupted:
            report.interrupted = True
        except StopTarget as stop:
            report.stopped_by(stop.reason, str(stop))
        except MastodonError as exc:
            report.stopped_by(StopReason.SERVER_ERROR, str(exc))
        if report.stop is not None or report.interrupted:
            self._server_read = None  # read the server afresh next time
        elif not (report.waiting or report.held or self.saturated):
            self._mark = (changes, started)
        report.rules = self.server.describe()
        kept = None if self._mark is None else PassMark(changes, started, fingerprint(self.target))
        self.store.record_pass(
            self.name, self.clock(), account_id=self.account_id, error=report.stopped, mark=kept
        )
        self._note_stop_or_recovery(report)

    def _finish_unfinished(self, report: PassReport) -> None:
        """Rows left ``sending`` by a crash, and retries whose time has come."""
        for delivery in self.store.unfinished(self.name, self.clock()):
            if delivery.action == Action.CREATE:
                stored = self.store.article(delivery.article_id)
                if stored is None:
                    self.creates.abandon(delivery, report)
                elif not self.readable(stored.article) or not self.may_post_now():
                    report.waiting += 1
                else:
                    self.creates.create(stored, report, delivery)
            elif delivery.action == Action.EDIT:
                stored = self.store.article(delivery.article_id)
                if stored is not None:
                    self.amends.edit(delivery, stored, report)
                else:
                    self.amends.withdrawn_before_edit(delivery)
            elif delivery.action == Action.DELETE:
                self.amends.delete(delivery, report)

    def _note_stop_or_recovery(self, report: PassReport) -> None:
        """One log line when a stopped target works again (the stop itself is logged by the
        service with each pass)."""
        stopped = report.stopped is not None and not report.interrupted
        if self.knowledge.record_stop(self.name, self.clock() if stopped else None) and not stopped:
            log.info("target recovered: publishing again", extra={"target": self.name})

    def _connect(self, remember: bool = True) -> None:
        """Read the server's limits and software, and check the token before sending.

        The token must belong to the account the target posted with (see
        `_same_account`), read the account, list the account's own statuses
        where reconciliation looks (per visibility and profile) and use the
        media API; a refusal names the scope that is missing.

        The account read last stays known while the server is asked again (the
        status page shows it during every pass); a connection that fails forgets it.
        """
        try:
            self._read_server(remember)
        except BaseException:
            self.account_id = None
            raise

    def _read_server(self, remember: bool) -> None:
        knowledge = self.knowledge.get(self.name)
        read = self._server_read
        fresh = read is None or self.monotonic() - read[0] > SERVER_TTL or not remember
        try:
            if fresh:
                asked = check_account(self.client, software=self.target.profile == "auto")
                self.limits = asked.limits or self.limits  # composing offline uses them if refused
                _, software, account = asked.answers()
            else:
                assert read is not None
                software = read[1]
                account = self.client.verify_credentials()
            self._same_account(str(self.target.server), account.id, remember)
            self.account_id = account.id
            profile = choose_profile(self.target.profile, software, knowledge)
            self.server = ServerRules(profile, self.limits, knowledge.learned)
            if self.target.visibility not in profile.visibilities:
                raise StopTarget(
                    StopReason.UNSUPPORTED,
                    f"{profile.name} cannot post {self.target.visibility} statuses: "
                    f"choose one of {', '.join(profile.visibilities)}",
                )
            if fresh:
                self._check_listing()
                if self.target.media and self.media_root is not None:
                    self.client.check_media_scope()
                self._server_read = (self.monotonic(), software)
        except AuthError as exc:
            raise StopTarget(StopReason.TOKEN_REFUSED, refused(exc)) from None
        except TransientError as exc:
            raise StopTarget(StopReason.SERVER_UNAVAILABLE, f"server unavailable: {exc}") from None
        if profile.name != knowledge.software:
            self.knowledge.record_software(self.name, profile.name)
            log.info("server profile: %s", self.server.describe(), extra={"target": self.name})

    def _rules_offline(self) -> None:
        """The dry run's rules without the server: a named profile, or the last one detected."""
        knowledge = self.knowledge.get(self.name)
        name = self.offline_profile if self.offline_profile != "learned" else self.target.profile
        profile = choose_profile(name or "auto", None, knowledge)
        self.server = ServerRules(profile, self.limits, knowledge.learned)

    def _check_listing(self) -> None:
        listing = self.server.profile.listing_for(self.target.visibility)
        if listing == "home_timeline" and self.account_id is not None:
            self.client.home_timeline(self.account_id, limit=1)
        elif listing == "account_statuses" and self.account_id is not None:
            self.client.account_statuses(self.account_id, limit=1)

    def _same_account(self, server: str, account_id: str, remember: bool) -> None:
        """Stop, touching nothing, if the token now belongs to another account than before.

        Status ids of the former account mean nothing (or another status) on the
        new one, so edits and deletions there could only go wrong; and posting
        would start the new account off with whatever this target has not posted.
        """
        known = self.store.account_of(self.name)
        same = (
            known is None
            or known.account_id is None
            or (known.account_id == account_id and known.server in (None, server))
        )  # an account id alone was recorded before servers were
        if same:
            if remember:
                self.store.remember_account(self.name, server, account_id)
            return
        assert known is not None
        if remember:
            self.store.note_moved(self.name, server, account_id)
        raise StopTarget(
            StopReason.ACCOUNT_CHANGED, account_changed(self.name, known, server, account_id)
        )

    # -- what the steps share ---------------------------------------------------------

    def readable(self, article: Article) -> bool:
        """Whether the article may be posted now: while the store is suspect, only from its file."""
        if self.suspect is None or self.store_root is None:
            return True
        return (self.store_root / article.path).is_file()

    def may_post_now(self) -> bool:
        """Pacing (`newsbot.publish.rules.may_post_now`), unless it is off for this pass."""
        if not self.pacing:
            return True
        now = self.clock()
        recent = self.store.posted_since(self.name, now - rules.HOUR)
        return rules.may_post_now(self.target, now, recent, self.store.last_posted(self.name))

    def key_still_guards(self, since: int | None) -> bool:
        """Whether resending with the same Idempotency-Key cannot make a second post."""
        if not self.server.profile.idempotency_key or since is None:
            return False
        return self.clock().timestamp() - since < IDEMPOTENCY_TRUST

    def unverifiable(self) -> bool:
        """No listing of this visibility's own posts: an unknown outcome cannot be checked."""
        return self.server.profile.listing_for(self.target.visibility) is None

    def begin(self, attempt: Attempt, kept: KeptSet | None = None) -> None:
        """Record an attempt (and the related set of a post) before sending it, if this
        process may still send at all."""
        self.may_send()
        self.store.begin(attempt, self.clock(), kept)

    def may_send(self) -> None:
        """Raise unless this process may still send: not shutting down, still holding the lease."""
        if self.stop is not None and self.stop.is_set():
            raise Interrupted()
        if self.lease is not None and not self.lease.keep():
            raise StopTarget(
                StopReason.LEASE_LOST, "lost the publish lease to another process; its pass goes on"
            )

    def pause_until(self, until: datetime) -> NoReturn:
        """A rate limit too long to wait out: end the pass, and send nothing before ``until``."""
        self._paused_until = until
        raise StopTarget(StopReason.RATE_LIMITED, _rate_limited(until))

    def reread_limits(self) -> ServerRules:
        """The rules with the server's limits read again now (they are kept `SERVER_TTL`)."""
        self.limits = self.client.instance_limits()
        self.server = replace(self.server, limits=self.limits)
        return self.server

    def learn_length(self, article_id: str, exc: TooLong, report: PassReport) -> None:
        report.length_errors += 1
        self.server = self.server.after_length_error()
        self.knowledge.learn(self.name, self.server.learned or Learned())
        log.warning(
            "length error; this target now counts %s", self.server.describe(),
            extra={"target": self.name, "article": article_id, "error": str(exc)},
        )  # fmt: skip

    def find_posted(self, url: str, since: int | None) -> PostedStatus | None:
        """The account's own post of the article at ``url``, if an earlier attempt got through.

        Statuses that only link to the article as a related one are not its post.
        """
        return self.find_own(lambda status: links_as_its_own(status.content, url), since)

    def find_own(
        self, wanted: Callable[[PostedStatus], bool], since: int | None
    ) -> PostedStatus | None:
        """The newest of the account's own statuses that is ``wanted`` (see `reconcile`)."""
        listing = self.server.profile.listing_for(self.target.visibility)
        return reconcile.find_own(self.client, listing, self.account_id, wanted, since)

    # -- composing ----------------------------------------------------------------

    def _dry_run(self, report: PassReport) -> None:
        """Every article a pass would post, composed exactly as it would be; and the others."""
        try:
            if self.offline_profile is not None:
                self._rules_offline()
            else:
                try:
                    self._connect(remember=False)
                except StopTarget as exc:
                    # Unreachable or refused: compose by the last known rules, and say so.
                    self._rules_offline()
                    report.note = f"composed offline ({exc})"
            report.rules = self.server.describe()
            now = self.clock()
            for stored in self.store.new_articles(self.name, now, None):
                article = stored.article
                skip = rules.verdict(self.target, article, now)
                if skip is not None:
                    report.dry_run_skipped.append((article, str(skip)))
                    continue
                try:
                    composed = self.compose(stored)
                except ComposeError as exc:
                    report.dry_run_skipped.append((article, f"cannot compose a status: {exc}"))
                    continue
                report.dry_run.append((article, composed))
        except StopTarget as exc:
            report.stopped_by(exc.reason, str(exc))
        except MastodonError as exc:
            report.stopped_by(StopReason.SERVER_ERROR, str(exc))

    def compose(self, stored: Stored, kept: RelatedSet | None = None) -> Composed:
        """The status by the target's rules; `ComposeError` when there is none to make.

        ``kept`` is the related set a post was made with: an edit keeps it, in
        the same place, unless the editors changed their picks since. The lead's
        sentences are the ones the build stored, when it stored them for this target.
        """
        article = stored.article
        policy = self.policy
        if kept is not None and tuple(kept.editors) == tuple(article.related):
            links = list(kept.links)
            policy = replace(policy, related_in="reply" if kept.in_reply else "post")
        elif self.target.related:
            links = [
                RelatedLink(other.title, other.url)
                for other in self.related(article, self.target.related, self.clock())
            ]
        else:
            links = []
        return compose(
            article,
            partial(html.lead_text, stored.html),
            links,
            policy,
            self.limits.max_characters,
            None,
            rule=self.server.rule,
            leads=Leads.decode(stored.leads),
        )

    def request(self, composed: Composed, media_ids: Sequence[str]) -> StatusRequest:
        return StatusRequest(
            status=composed.text,
            visibility=self.target.visibility,
            language=composed.language,
            spoiler_text=composed.spoiler_text,
            sensitive=bool(composed.spoiler_text),
            media_ids=tuple(media_ids),
        )


ACCOUNT_CHANGED = "the account changed"
"""How the message of a stop for a token of another account begins."""


def account_changed(target: str, known: KnownAccount, server: str, account_id: str) -> str:
    """The one message of a target whose token now belongs to another account."""
    before = f"account {known.account_id} on {known.server or server}"
    return (
        f"{ACCOUNT_CHANGED}: target {target} posted as {before}, but its token now belongs "
        f"to account {account_id} on {server}; nothing is posted, edited or deleted there. "
        f"To post to the new account from now on, leaving the earlier posts as they are, run "
        f"`newsbot catch-up --target {target}`; or configure the account as a new target name"
    )


def _rate_limited(until: datetime) -> str:
    return f"rate limited until {until.isoformat(timespec='seconds')}"
