"""One publish pass for one target: due work -> send -> record.

Order of work: rows left unfinished (a crash, or a retry whose time came),
then deletions of withdrawn articles, edits of revised ones, and last new
articles, oldest first, as pacing allows. Every request is recorded before it
is sent and its outcome after; an unknown outcome (timeout, dropped
connection, crash) is reconciled against the account's own recent statuses
before anything is sent again, because some servers ignore Idempotency-Key.

Edits and deletions are guarded: none while the store is suspect (see
`newsbot.state.suspect`), at most ``max_edits_per_pass`` and ``max_deletes_per_pass``
per pass, and none at all on an account other than the one the target posted
to before (the token may have been replaced by another account's).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from urllib.parse import unquote

from newsbot.articles import Article, revision_of, tag_slug
from newsbot.mastodon.client import (
    AuthError,
    Gone,
    Limits,
    MastodonClient,
    MastodonError,
    PermanentError,
    PostedStatus,
    RateLimited,
    StatusRequest,
    TooLong,
    TransientError,
    backoff,
)
from newsbot.mastodon.profiles import UNKNOWN
from newsbot.publish.compose import (
    RELATED_MARK,
    Composed,
    PostPolicy,
    RelatedLink,
    compose,
    idempotency_key,
)
from newsbot.publish.replies import Replies
from newsbot.publish.serverrules import ServerRules, choose_profile
from newsbot.render import bodies as html
from newsbot.settings import TargetSettings
from newsbot.state import suspect
from newsbot.state.deliveries import (
    Action,
    Attempt,
    Delivery,
    DeliveryState,
    DeliveryStore,
    KnownAccount,
    ReplyState,
)
from newsbot.state.index import Stored
from newsbot.state.learning import Learned, TargetKnowledge
from newsbot.state.leases import Lease
from newsbot.state.replies import RelatedSet, RelatedStore
from newsbot.store.assets import AssetRefused, open_asset, store_path

log = logging.getLogger(__name__)

IDEMPOTENCY_TRUST = 45 * 60
"""Seconds after a first attempt during which a server that honours Idempotency-Key still
remembers it (Mastodon: an hour): resending with the key is safe, no search is needed."""
IN_PASS_TRIES = 3
"""Quick retries of a transient failure within one pass, before leaving it to a later pass."""
MAX_TRIES = 12
"""After this many failed tries a delivery is given up on and recorded as failed."""
MAX_WAIT_IN_PASS = 30.0
"""A rate limit that lifts sooner than this is waited out; a longer one ends the pass."""
RECONCILE_PAGES = 5
"""Pages of 40 of the account's statuses searched for a post whose first attempt is unknown."""
RECONCILE_MAX_PAGES = 25
"""Pages searched back to the first attempt of a post, when its time is known."""
RECONCILE_SLACK = 600
"""Seconds of clock difference allowed between us and the server when searching."""
NEW_PER_PASS = 200

Related = Callable[[Article, int, datetime], Sequence[Article]]
"""Finds up to k related articles (editors' first) for an article, as of a moment."""


@dataclass
class PassReport:
    """What one pass did for one target."""

    target: str
    posted: int = 0
    edited: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    retries: int = 0
    waiting: int = 0
    length_errors: int = 0
    """Length errors the server answered (each teaches the target its counting rule)."""
    recomposed: int = 0
    uncertain: int = 0
    """Deliveries whose outcome is unknown and cannot be checked: an operator decides."""
    replies: int = 0
    rules: str = ""
    """The profile and counting rule the pass composed with, in words."""
    note: str | None = None
    stopped: str | None = None
    held: int = 0
    """Edits and deletions left for a later pass: a suspect store, or the per-pass caps."""
    busy: str | None = None
    """The pass did not run: this other process holds the target's publish lease."""
    interrupted: bool = False
    """The pass ended early because newsbot is shutting down."""
    dry_run: list[tuple[Article, Composed]] = field(default_factory=list)
    dry_run_skipped: list[tuple[Article, str]] = field(default_factory=list)
    """Articles the dry run would not post, with why (backlog, filters, cannot compose)."""


class _StopTarget(Exception):
    """The target cannot go on in this pass (token, rate limit, server down, lease lost)."""


class _Interrupted(Exception):
    """newsbot is shutting down: send nothing more."""


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

    def __post_init__(self) -> None:
        self.limits = Limits()
        self.account_id: str | None = None
        self.suspect: suspect.Suspect | None = None
        self._edits_left = self._deletes_left = 0
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
        self.related_sets = RelatedStore(self.store.engine)
        self.server = ServerRules(UNKNOWN, self.limits)

    # -- the pass ---------------------------------------------------------------

    def run(self, dry_run: bool = False) -> PassReport:
        """One pass; never raises for server trouble, it is in the report.

        A dry run sends and records nothing, so it needs no lease; a real pass
        is skipped (``report.busy``) while another process holds the lease.
        """
        report = PassReport(self.name)
        if dry_run:
            try:
                if self.offline_profile is not None:
                    self._rules_offline()
                else:
                    try:
                        self._connect(remember=False)
                    except _StopTarget as exc:
                        # Unreachable or refused: compose by the last known rules, and say so.
                        self._rules_offline()
                        report.note = f"composed offline ({exc})"
                report.rules = self.server.describe()
                self._dry_run(report)
            except (_StopTarget, MastodonError) as exc:
                report.stopped = str(exc)
            return report
        if self.lease is not None and not self.lease.acquire():
            report.busy = self.lease.holder() or "another process"
            log.info(
                "pass skipped: another process is publishing to this target",
                extra={"target": self.name, "holder": report.busy},
            )
            return report
        try:
            self._pass(report)
        finally:
            if self.lease is not None:
                self.lease.release()
        return report

    def _pass(self, report: PassReport) -> None:
        if self._paused_until is not None and self.clock() < self._paused_until:
            report.stopped = _rate_limited(self._paused_until)  # sending now would only be refused
            return
        try:
            self._connect()
            self._guard(report)
            self._finish_unfinished(report)
            self._settle_resolved(report)
            self.replies.finish_due(report)
            self._delete_withdrawn(report)
            self._edit_revised(report)
            self._post_new(report)
        except _Interrupted:
            report.interrupted = True
        except _StopTarget as stop:
            report.stopped = str(stop)
        except MastodonError as exc:
            report.stopped = str(exc)
        report.rules = self.server.describe()
        self.store.record_pass(
            self.name, self.clock(), account_id=self.account_id, error=report.stopped
        )
        self._note_stop_or_recovery(report)

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
        """
        self.account_id = None
        knowledge = self.knowledge.get(self.name)
        try:
            self.limits = self.client.instance_limits()
            software = self.client.server_software() if self.target.profile == "auto" else None
            account = self.client.verify_credentials()
            self._same_account(str(self.target.server), account.id, remember)
            self.account_id = account.id
            profile = choose_profile(self.target.profile, software, knowledge)
            self.server = ServerRules(profile, self.limits, knowledge.learned)
            if self.target.visibility not in profile.visibilities:
                raise _StopTarget(
                    f"{profile.name} cannot post {self.target.visibility} statuses: "
                    f"choose one of {', '.join(profile.visibilities)}"
                )
            self._check_listing()
            if self.target.media and self.media_root is not None:
                self.client.check_media_scope()
        except AuthError as exc:
            raise _StopTarget(f"the access token was refused: {exc}") from None
        except TransientError as exc:
            raise _StopTarget(f"server unavailable: {exc}") from None
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
        raise _StopTarget(account_changed(self.name, known, server, account_id))

    def _guard(self, report: PassReport) -> None:
        """This pass's allowance of edits and deletions: none while the store is suspect."""
        self.suspect = suspect.load(self.store.engine)
        if self.suspect is not None:
            self._edits_left = self._deletes_left = 0
            log.warning(
                "no post is edited or deleted: %s",
                self.suspect.message(),
                extra={"target": self.name},
            )
            return
        self._edits_left = self.target.max_edits_per_pass
        self._deletes_left = self.target.max_deletes_per_pass

    def _allowed(self, action: Action, article_id: str, report: PassReport) -> bool:
        """Whether one more edit or delete fits this pass; counts the ones held back."""
        left = self._edits_left if action == Action.EDIT else self._deletes_left
        if left <= 0:
            report.held += 1
            if report.held == 1 and self.suspect is None:
                log.warning(
                    "per-pass limit of %ss reached; the rest wait for the next pass",
                    action,
                    extra={"target": self.name, "article": article_id},
                )
            return False
        if action == Action.EDIT:
            self._edits_left -= 1
        else:
            self._deletes_left -= 1
        return True

    # -- new articles -----------------------------------------------------------

    def _post_new(self, report: PassReport) -> None:
        now = self.clock()
        candidates = self.store.new_articles(self.name, now, NEW_PER_PASS)
        wanted = [s for s in candidates if self._wants(s.article)]
        unwanted = [s for s in candidates if not self._wants(s.article)]
        report.skipped += self.store.skip(self.name, unwanted, "not for this target", now)
        horizon = now - timedelta(hours=self.target.backlog_max_age_hours)
        old = [s for s in wanted if s.article.published < horizon]
        report.skipped += self.store.skip(
            self.name, old, "backlog: older than the target's max age", now
        )
        for stored in (s for s in wanted if s.article.published >= horizon):
            if not self._readable(stored.article):
                report.waiting += 1
                continue
            if not self._may_post_now():
                report.waiting += 1
                continue
            self._create(stored.article, stored.html, report, delivery=None)

    def _readable(self, article: Article) -> bool:
        """Whether the article may be posted now: while the store is suspect, only from its file."""
        if self.suspect is None or self.store_root is None:
            return True
        return (self.store_root / article.path).is_file()

    def _wants(self, article: Article) -> bool:
        tags = {tag_slug(t) for t in article.tags}
        section = tag_slug(article.section) if article.section else None
        t = self.target
        if t.include_tags and not tags & {tag_slug(x) for x in t.include_tags}:
            return False
        if t.include_sections and section not in {tag_slug(x) for x in t.include_sections}:
            return False
        if tags & {tag_slug(x) for x in t.exclude_tags}:
            return False
        return section not in {tag_slug(x) for x in t.exclude_sections}

    def _may_post_now(self) -> bool:
        """Pacing: at most ``posts_per_hour``, spread evenly, never a burst."""
        if not self.pacing:
            return True
        now = self.clock()
        if (
            self.store.posted_since(self.name, now - timedelta(hours=1))
            >= self.target.posts_per_hour
        ):
            return False
        last = self.store.last_posted(self.name)
        spacing = timedelta(seconds=3600 / self.target.posts_per_hour)
        return last is None or now - last >= spacing

    def _create(
        self, article: Article, body_html: str, report: PassReport, delivery: Delivery | None
    ) -> None:
        """Post ``article`` once: reconcile an unknown outcome first, retry transient failures."""
        revision = revision_of(article)
        key = idempotency_key(self.name, article.id, revision)
        uncertain = delivery is not None and delivery.outcome_unknown
        since = None if delivery is None else delivery.first_attempt
        # A post found by reconciliation may be of the first attempt's revision: recording
        # that one makes a later pass edit it to the current text, where the target edits.
        found_revision = revision if delivery is None else delivery.revision
        tries = 0 if delivery is None else delivery.tries
        try:
            composed = self._compose(
                article, body_html, url_length=self.limits.characters_reserved_per_url
            )
        except ValueError as exc:
            self._give_up(article.id, f"cannot compose a status: {exc}", report)
            return
        media_ids: tuple[str, ...] | None = None
        shortened = False
        for _ in range(IN_PASS_TRIES):
            if uncertain:
                # Look first; where nothing can be looked at, only a key the server still
                # remembers makes resending safe.
                if self.unverifiable():
                    if not self.key_still_guards(since):
                        self._mark_uncertain(article, report)
                        return
                elif self._reconciled(article, found_revision, since, report, composed):
                    return
            if media_ids is None:
                media_ids = self._media(article)
            self._keep_related(article, revision, composed)
            self._begin(Attempt(self.name, article.id, Action.CREATE, revision, key, article.url))
            since = since or int(self.clock().timestamp())
            tries += 1
            try:
                status = self.client.post_status(self._request(composed, media_ids), key)
            except TooLong as exc:
                if shortened:
                    reason = f"too long even by the strictest count: {exc}"
                    self._give_up(article.id, reason, report)
                    return
                # The server counts more than its profile said: learn, once, and recompose.
                self._learn_length(article, exc, report)
                try:
                    composed = self._compose(article, body_html, url_length=None)
                except ValueError:
                    self._give_up(article.id, f"too long for this server: {exc}", report)
                    return
                report.recomposed += 1
                log.info(
                    "recomposed after a length error: %d/%d characters (%s)",
                    composed.length, composed.limit, composed.counting,
                    extra={"target": self.name, "article": article.id},
                )  # fmt: skip
                shortened = True
                continue
            except TransientError as exc:
                uncertain = uncertain or exc.outcome_unknown
                if tries >= MAX_TRIES:
                    if not (
                        uncertain
                        and self._reconciled(article, found_revision, since, report, composed)
                    ):
                        self._give_up(article.id, f"gave up after {tries} tries: {exc}", report)
                    return
                self._transient(article.id, exc, tries, uncertain)
                continue
            except AuthError as exc:
                self.store.failed(
                    self.name, article.id, error=str(exc), retry_at=self.clock(), uncertain=False
                )
                raise _StopTarget(f"the access token was refused: {exc}") from None
            except PermanentError as exc:
                self._give_up(article.id, str(exc), report)
                return
            self._posted(article, revision, status, report, composed)
            return
        report.retries += 1

    def key_still_guards(self, since: int | None) -> bool:
        """Whether resending with the same Idempotency-Key cannot make a second post."""
        if not self.server.profile.idempotency_key or since is None:
            return False
        return self.clock().timestamp() - since < IDEMPOTENCY_TRUST

    def unverifiable(self) -> bool:
        """No listing of this visibility's own posts: an unknown outcome cannot be checked."""
        return self.server.profile.listing_for(self.target.visibility) is None

    def _mark_uncertain(self, article: Article, report: PassReport) -> None:
        reason = (
            "outcome unknown and this server cannot list the account's "
            f"{self.target.visibility} posts: resolve with `newsbot resolve {self.name} "
            f"{article.id} --posted URL` or `--not-posted`"
        )
        self.store.failed(
            self.name, article.id, error=reason, retry_at=None, uncertain=True,
            back_to=DeliveryState.UNCERTAIN,
        )  # fmt: skip
        report.uncertain += 1
        log.error(
            "uncertain: %s", reason,
            extra={"target": self.name, "article": article.id, "article_url": article.url},
        )  # fmt: skip

    def _learn_length(self, article: Article, exc: TooLong, report: PassReport) -> None:
        self.learn_length(article.id, exc, report)

    def _reconciled(
        self,
        article: Article,
        revision: str,
        since: int | None,
        report: PassReport,
        composed: Composed,
    ) -> bool:
        """Record the post as made if an earlier attempt did get through; whether it did."""
        found = self._find_posted(article.url, since)
        if found is None:
            return False
        log.info(
            "an earlier attempt had been posted",
            extra={"target": self.name, "article": article.id, "status_url": found.url},
        )
        self._posted(article, revision, found, report, composed)
        return True

    def _begin(self, attempt: Attempt) -> None:
        """Record an attempt before sending it, if this process may still send at all."""
        self.may_send()
        self.store.begin(attempt, self.clock())

    def may_send(self) -> None:
        """Raise unless this process may still send: not shutting down, still holding the lease."""
        if self.stop is not None and self.stop.is_set():
            raise _Interrupted()
        if self.lease is not None and not self.lease.keep():
            raise _StopTarget("lost the publish lease to another process; its pass goes on")

    def stop_target(self, why: str) -> Exception:
        """The exception that ends this target's pass (for the reply sender)."""
        return _StopTarget(why)

    def learn_length(self, article_id: str, exc: TooLong, report: PassReport) -> None:
        report.length_errors += 1
        self.server = self.server.after_length_error()
        self.knowledge.learn(self.name, self.server.learned or Learned())
        log.warning(
            "length error; this target now counts %s", self.server.describe(),
            extra={"target": self.name, "article": article_id, "error": str(exc)},
        )  # fmt: skip

    def _posted(
        self,
        article: Article,
        revision: str,
        status: PostedStatus,
        report: PassReport,
        composed: Composed,
    ) -> None:
        self.store.succeeded(
            self.name,
            article.id,
            state=DeliveryState.POSTED,
            revision=revision,
            now=self.clock(),
            status_id=status.id,
            status_url=status.url or status.uri,
        )
        report.posted += 1
        log.info(
            "posted", extra={"target": self.name, "article": article.id, "status_url": status.url}
        )
        self._keep_related(article, revision, composed)
        self.related_sets.release(self.name, article.id)
        if composed.reply_text is not None:
            self.replies.send_due(article.id, report)

    def _keep_related(self, article: Article, revision: str, composed: Composed) -> None:
        """The post's related set (and its reply to make), recorded before the post is sent:
        a crash after the post leaves the reply due, never forgotten."""
        self.related_sets.keep(
            self.name, article.id, composed.related, article.related,
            in_reply=composed.reply_text is not None,
            reply_key=idempotency_key(self.name, article.id, revision + ":reply"),
        )  # fmt: skip

    def _transient(self, article_id: str, exc: TransientError, tries: int, uncertain: bool) -> None:
        """Record a transient failure and wait before the next try (or end the pass)."""
        now = self.clock()
        if isinstance(exc, RateLimited):
            wait = (exc.retry_at - now).total_seconds()
            self.store.failed(
                self.name, article_id, error=str(exc), retry_at=exc.retry_at, uncertain=uncertain
            )
            if wait > MAX_WAIT_IN_PASS:
                self._paused_until = exc.retry_at
                raise _StopTarget(_rate_limited(exc.retry_at))
            self.sleep(max(wait, 0) + self.rng.uniform(0, 1))
            return
        delay = backoff(tries, self.rng)
        self.store.failed(
            self.name,
            article_id,
            error=str(exc),
            retry_at=now + timedelta(seconds=delay),
            uncertain=uncertain,
        )
        self.sleep(min(delay, MAX_WAIT_IN_PASS))

    def _give_up(self, article_id: str, reason: str, report: PassReport) -> None:
        self.store.failed(self.name, article_id, error=reason, retry_at=None, uncertain=False)
        report.failed += 1
        log.warning("not posted: %s", reason, extra={"target": self.name, "article": article_id})

    def _find_posted(self, url: str, since: int | None) -> PostedStatus | None:
        """The account's own post of the article at ``url``, if an earlier attempt got through.

        Searched newest first, back to a while before the first attempt
        (``since``, seconds since the epoch) when it is known. Statuses that
        only link to the article as a related one are not its post.
        """
        return self.find_own(lambda status: links_as_its_own(status.content, url), since)

    def find_own(
        self, wanted: Callable[[PostedStatus], bool], since: int | None
    ) -> PostedStatus | None:
        """The newest of the account's own statuses that is ``wanted``, searched in the listing
        that shows the target's visibility (the home timeline on some servers)."""
        listing = self.server.profile.listing_for(self.target.visibility)
        if self.account_id is None or listing is None:
            return None
        account_id = self.account_id
        pages = RECONCILE_PAGES if since is None else RECONCILE_MAX_PAGES
        max_id: str | None = None
        for _ in range(pages):
            if listing == "home_timeline":
                page = self.client.home_timeline(account_id, limit=40, max_id=max_id)
            else:
                page = self.client.account_statuses(account_id, limit=40, max_id=max_id)
            for status in page:
                if status.account_id in (None, account_id) and wanted(status):
                    return status
            if not page or (since is not None and _older_than(page[-1], since - RECONCILE_SLACK)):
                return None
            max_id = page[-1].id
        return None

    # -- unfinished, revised, withdrawn -------------------------------------------

    def _finish_unfinished(self, report: PassReport) -> None:
        for delivery in self.store.unfinished(self.name, self.clock()):
            if delivery.action == Action.CREATE:
                stored = self.store.article(delivery.article_id)
                if stored is None:
                    self._abandon_create(delivery, report)
                    continue
                if not self._readable(stored.article) or not self._may_post_now():
                    report.waiting += 1
                    continue
                self._create(stored.article, stored.html, report, delivery)
            elif delivery.action == Action.EDIT:
                stored = self.store.article(delivery.article_id)
                if stored is not None:
                    self._edit(delivery, stored, report)
                else:
                    # Withdrawn before its edit went out: the post stands (and may be deleted next).
                    self.store.failed(
                        self.name, delivery.article_id, error="withdrawn before its edit was made",
                        retry_at=None, uncertain=False, back_to=DeliveryState.POSTED,
                    )  # fmt: skip
            elif delivery.action == Action.DELETE:
                self._delete(delivery, report)

    def _settle_resolved(self, report: PassReport) -> None:
        """Posts an operator resolved as posted get their related set (and reply) now."""
        for delivery in self.store.resolved_posted(self.name):
            stored = self.store.article(delivery.article_id)
            if stored is not None and self.related_sets.get(self.name, delivery.article_id) is None:
                try:
                    composed = self._compose(stored.article, stored.html)
                except ValueError:
                    composed = None
                if composed is not None:
                    self.related_sets.keep(
                        self.name, delivery.article_id, composed.related, stored.article.related,
                        in_reply=composed.reply_text is not None,
                        reply_key=idempotency_key(self.name, delivery.article_id,
                                                  delivery.revision + ":reply"),
                    )  # fmt: skip
            self.related_sets.release(self.name, delivery.article_id)
            self.store.succeeded(
                self.name, delivery.article_id, state=DeliveryState.POSTED,
                revision=delivery.revision, now=self.clock(),
            )  # fmt: skip

    def _abandon_create(self, delivery: Delivery, report: PassReport) -> None:
        """The article left the store before its post was confirmed."""
        found = (
            self._find_posted(delivery.article_url, delivery.first_attempt)
            if delivery.outcome_unknown
            else None
        )
        if found is not None:
            self.store.succeeded(
                self.name, delivery.article_id, state=DeliveryState.POSTED,
                revision=delivery.revision, now=self.clock(), status_id=found.id,
                status_url=found.url or found.uri,
            )  # fmt: skip
            return
        self.store.failed(
            self.name, delivery.article_id, error="withdrawn before it was posted",
            retry_at=None, uncertain=False, back_to=DeliveryState.SKIPPED,
        )  # fmt: skip
        report.skipped += 1

    def _edit_revised(self, report: PassReport) -> None:
        if not self.target.edit_on_update:
            return
        for delivery, stored in self.store.revised(self.name, NEW_PER_PASS):
            self._edit(delivery, stored, report)

    def _edit(self, delivery: Delivery, stored: Stored, report: PassReport) -> None:
        article = stored.article
        revision = revision_of(article)
        if delivery.status_id is None or not self._allowed(Action.EDIT, article.id, report):
            return
        kept = self.related_sets.get(self.name, article.id)
        try:
            composed = self._compose(article, stored.html, kept=kept)
        except ValueError as exc:
            self._edit_failed(article.id, revision, f"cannot compose a status: {exc}", report)
            return
        # An edit keeps only the media it sends: the image goes again (or its new version).
        media_ids = self._media(article)
        self._begin(
            Attempt(self.name, article.id, Action.EDIT, delivery.revision,
                    delivery.idempotency_key, article.url),
        )  # fmt: skip
        try:
            try:
                self.client.edit_status(delivery.status_id, self._request(composed, media_ids))
            except TooLong as exc:
                self._learn_length(article, exc, report)
                composed = self._compose(article, stored.html, kept=kept)
                report.recomposed += 1
                self.client.edit_status(delivery.status_id, self._request(composed, media_ids))
        except Gone:
            self.store.succeeded(
                self.name, article.id, state=DeliveryState.GONE, revision=revision, now=self.clock()
            )
            log.warning(
                "gone: the post was deleted on the server; the revision is not posted again",
                extra={"target": self.name, "article": article.id,
                       "status_url": delivery.status_url},
            )  # fmt: skip
            return
        except TransientError as exc:
            self._retry_later(delivery, exc, report)
            return
        except AuthError as exc:
            self._retry_later(delivery, exc, report)
            raise _StopTarget(f"the access token was refused: {exc}") from None
        except (PermanentError, ValueError) as exc:
            self._edit_failed(article.id, revision, str(exc), report)
            return
        self.store.succeeded(
            self.name, article.id, state=DeliveryState.POSTED, revision=revision, now=self.clock()
        )
        report.edited += 1
        log.info(
            "edited",
            extra={"target": self.name, "article": article.id, "status_url": delivery.status_url},
        )

    def _edit_failed(self, article_id: str, revision: str, reason: str, report: PassReport) -> None:
        """The post stays as it was; the revision is remembered so the edit is not retried."""
        self.store.succeeded(
            self.name, article_id, state=DeliveryState.POSTED, revision=revision, now=self.clock()
        )
        self.store.failed(self.name, article_id, error=f"edit failed: {reason}", retry_at=None,
                          uncertain=False, back_to=DeliveryState.POSTED)  # fmt: skip
        report.failed += 1

    def _retry_later(self, delivery: Delivery, exc: MastodonError, report: PassReport) -> None:
        """An edit or delete to try again: when a rate limit lifts, or after a backoff."""
        if isinstance(exc, RateLimited):
            retry_at = exc.retry_at
        else:
            retry_at = self.clock() + timedelta(seconds=backoff(delivery.tries + 1, self.rng))
        self.store.failed(
            self.name, delivery.article_id, error=str(exc), retry_at=retry_at, uncertain=False
        )
        report.retries += 1

    def _delete_withdrawn(self, report: PassReport) -> None:
        if not self.target.delete_on_withdraw:
            return
        for delivery in self.store.withdrawn(self.name, NEW_PER_PASS):
            self._delete(delivery, report)

    def _delete(self, delivery: Delivery, report: PassReport) -> None:
        allowed = self._allowed(Action.DELETE, delivery.article_id, report)
        if delivery.status_id is None or not allowed:
            return
        self._begin(
            Attempt(self.name, delivery.article_id, Action.DELETE, delivery.revision,
                    delivery.idempotency_key, delivery.article_url),
        )  # fmt: skip
        kept = self.related_sets.get(self.name, delivery.article_id)
        reply_id = kept.reply_id if kept is not None else None
        try:
            for status_id in dict.fromkeys(
                filter(None, (reply_id, delivery.reply_id, delivery.status_id))
            ):
                with contextlib.suppress(Gone):  # already deleted: as good
                    self.client.delete_status(status_id)
        except TransientError as exc:
            self._retry_later(delivery, exc, report)
            return
        except AuthError as exc:
            self._retry_later(delivery, exc, report)
            raise _StopTarget(f"the access token was refused: {exc}") from None
        except PermanentError as exc:
            # Recorded as failed, not posted: a posted row would be deleted again every pass.
            self.store.failed(self.name, delivery.article_id, error=f"delete failed: {exc}",
                              retry_at=None, uncertain=False)  # fmt: skip
            report.failed += 1
            return
        self.store.succeeded(
            self.name,
            delivery.article_id,
            state=DeliveryState.DELETED,
            revision=delivery.revision,
            now=self.clock(),
        )
        if kept is not None and kept.reply_state is not None:
            self.related_sets.reply_failed(
                self.name, delivery.article_id, "deleted with its post", None, ReplyState.DELETED
            )
        report.deleted += 1
        log.info(
            "deleted",
            extra={
                "target": self.name,
                "article": delivery.article_id,
                "status_url": delivery.status_url,
            },
        )

    # -- composing ----------------------------------------------------------------

    def _dry_run(self, report: PassReport) -> None:
        """Every article a pass would post, composed exactly as it would be; and the others."""
        now = self.clock()
        horizon = now - timedelta(hours=self.target.backlog_max_age_hours)
        for stored in self.store.new_articles(self.name, now, None):
            article = stored.article
            if not self._wants(article):
                report.dry_run_skipped.append((article, "not for this target"))
                continue
            if article.published < horizon:
                report.dry_run_skipped.append((article, "backlog: older than the target's max age"))
                continue
            try:
                composed = self._compose(article, stored.html)
            except ValueError as exc:
                report.dry_run_skipped.append((article, f"cannot compose a status: {exc}"))
                continue
            report.dry_run.append((article, composed))

    def _compose(
        self,
        article: Article,
        body_html: str,
        url_length: int | None = None,
        kept: RelatedSet | None = None,
    ) -> Composed:
        """The status by the target's rules (``url_length`` is no longer used: the rules say).

        ``kept`` is the related set a post was made with: an edit keeps it, in
        the same place, unless the editors changed their picks since.
        """
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
            "\n\n".join(html.paragraphs(body_html)),
            links,
            policy,
            self.limits.max_characters,
            None,
            rule=self.server.rule,
        )

    def _request(self, composed: Composed, media_ids: Sequence[str]) -> StatusRequest:
        return StatusRequest(
            status=composed.text,
            visibility=self.target.visibility,
            language=composed.language,
            spoiler_text=composed.spoiler_text,
            sensitive=bool(composed.spoiler_text),
            media_ids=tuple(media_ids),
        )

    def _media(self, article: Article) -> tuple[str, ...]:
        """The lead image uploaded with its alt text, or nothing: a post never waits on media."""
        image = article.image
        if not self.target.media or image is None or not image.url or self.media_root is None:
            return ()
        mime = image.type or "application/octet-stream"
        supported = self.limits.supported_mime_types
        if not self.media_prefix or (supported and mime not in supported):
            return ()
        try:
            path = store_path(image.url, self.media_prefix)
            if path is None:
                return ()
            with open_asset(self.media_root, path) as (_, handle):
                data = handle.read()
            name = path.rsplit("/", 1)[-1]
            media_id = self.client.upload_media(data, name, mime, image.alt[:1500])
        except (AssetRefused, OSError, MastodonError) as exc:
            log.warning(
                "posting without the image: %s",
                exc,
                extra={"target": self.name, "article": article.id},
            )
            return ()
        return (media_id,)


_PARAGRAPH_OR_BREAK = re.compile(r"<br\s*/?>|</?p\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""<a\s[^>]*?\bhref\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def links_as_its_own(content: str, url: str) -> bool:
    """Whether a status's HTML ``content`` links to ``url`` as its own article.

    A line (paragraph or line break) must link to exactly ``url`` (an ``href``,
    or the bare URL where a server does not make links) without being one of
    the ``→ Headline URL`` lines that point to a related article: another
    article's post, or the reply holding related links, is not this article's.
    """
    wanted = unquote(url.strip())
    for line in _PARAGRAPH_OR_BREAK.split(content):
        text = unescape(_TAG.sub("", line)).strip()
        if text.startswith(RELATED_MARK):
            continue
        hrefs = [unquote(unescape(href).strip()) for href in _HREF.findall(line)]
        if wanted in hrefs or (not hrefs and wanted in (unquote(w) for w in text.split())):
            return True
    return False


ACCOUNT_CHANGED = "the account changed"
"""How a stop for a token of another account begins (readiness treats it as fatal)."""


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


def _older_than(status: PostedStatus, epoch_seconds: int) -> bool:
    try:
        created = datetime.fromisoformat(status.created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    return created.timestamp() < epoch_seconds
