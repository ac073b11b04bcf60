"""The service's Prometheus metrics: one object that owns them, fed by build and pass reports.

The metrics live in a registry of their own, never prometheus_client's global
one, so that two services (or two tests) in one process do not collide and
nothing is registered at import time. The service calls
:meth:`Metrics.observe_build` and :meth:`Metrics.observe_pass` after each job;
``/metrics`` only renders :attr:`Metrics.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from newsbot.service.health import Clock, fatal_stop, utc_now

if TYPE_CHECKING:
    from newsbot.build.builder import BuildReport
    from newsbot.publish.publisher import PassReport

BUILD_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""From an incremental build of a few changed files to a full rebuild of a large store."""

POST_OUTCOMES = ("sent", "edited", "deleted", "skipped", "failed")
"""The ``outcome`` label of ``newsbot_posts_total``; every one is exported from the first pass."""


class Metrics:
    """Every metric of the service, registered in one registry owned by this object."""

    def __init__(self, registry: CollectorRegistry | None = None, clock: Clock = utc_now) -> None:
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self._clock = clock
        self._define_build_metrics()
        self._define_publish_metrics()
        self._define_activitypub_metrics()

    def _define_build_metrics(self) -> None:
        r = self.registry
        self.articles = Gauge("newsbot_store_articles", "Articles in the store.", registry=r)
        self.store_files = Gauge(
            "newsbot_store_files", "Files found in the store by the last build.", registry=r
        )
        self.build_problems = Gauge(
            "newsbot_build_problems", "Store files the last build could not use.", registry=r
        )
        self.build_seconds = Histogram(
            "newsbot_build_duration_seconds",
            "How long a successful build took.",
            buckets=BUILD_SECONDS_BUCKETS,
            registry=r,
        )
        self.builds = Counter("newsbot_builds", "Builds run, failed or not.", registry=r)
        self.build_failures = Counter(
            "newsbot_build_failures", "Builds that raised instead of finishing.", registry=r
        )
        self.feeds_written = Counter(
            "newsbot_feeds_written", "Feed files rewritten because they changed.", registry=r
        )
        self.pages_written = Counter(
            "newsbot_pages_written", "HTML pages rewritten because they changed.", registry=r
        )
        self.store_suspect = Gauge(
            "newsbot_store_suspect",
            "1 while the store is suspect (missing, unreadable, empty, or lost too many "
            "articles): the last good output is kept, no post is edited or deleted.",
            registry=r,
        )
        self.store_lost = Gauge(
            "newsbot_store_lost_articles",
            "Live articles of the last good build that a suspect store no longer has.",
            registry=r,
        )
        self.stale_removed = Counter(
            "newsbot_stale_files_removed",
            "Files of earlier builds removed from the output because nothing produces them now.",
            registry=r,
        )
        self.build_last_success = Gauge(
            "newsbot_build_last_success_timestamp_seconds",
            "When the last successful build ended (UNIX time).",
            registry=r,
        )

    def _define_publish_metrics(self) -> None:
        r = self.registry
        self.posts = Counter(
            "newsbot_posts",
            "Deliveries to a target by outcome (sent, edited, deleted, skipped, failed).",
            ["target", "outcome"],
            registry=r,
        )
        self.pending = Gauge(
            "newsbot_posts_pending",
            "Posts left waiting by the last pass (pacing, or a retry not yet due).",
            ["target"],
            registry=r,
        )
        self.retries = Counter(
            "newsbot_publish_retries",
            "Requests sent again after a failure.",
            ["target"],
            registry=r,
        )
        self.passes = Counter(
            "newsbot_publish_passes", "Publish passes run.", ["target"], registry=r
        )
        self.busy = Counter(
            "newsbot_publish_busy_passes",
            "Passes skipped because another process held the target's publish lease.",
            ["target"],
            registry=r,
        )
        self.held = Counter(
            "newsbot_posts_held",
            "Edits and deletions left for a later pass (suspect store, per-pass caps).",
            ["target"],
            registry=r,
        )
        self.stopped = Gauge(
            "newsbot_publish_stopped",
            "1 when the target's last pass stopped early (token, server, rate limit).",
            ["target"],
            registry=r,
        )
        self.length_errors = Counter(
            "newsbot_publish_length_errors",
            "Statuses the server refused as too long (each teaches the target its counting).",
            ["target"],
            registry=r,
        )
        self.recomposed = Counter(
            "newsbot_publish_recomposed",
            "Statuses composed again, shorter, after a length error.",
            ["target"],
            registry=r,
        )
        self.replies = Counter(
            "newsbot_publish_replies",
            "Replies holding a post's related links, posted.",
            ["target"],
            registry=r,
        )
        self.uncertain = Gauge(
            "newsbot_publish_uncertain",
            "Deliveries the last pass left uncertain (outcome unknown, nothing to check it in).",
            ["target"],
            registry=r,
        )
        self.publishing_ok = Gauge(
            "newsbot_publishing_ok",
            "0 while the target is stopped for good or has uncertain deliveries, else 1.",
            ["target"],
            registry=r,
        )
        self.pass_last_success = Gauge(
            "newsbot_publish_last_success_timestamp_seconds",
            "When the target's last pass that did not stop ended (UNIX time).",
            ["target"],
            registry=r,
        )

    def _define_activitypub_metrics(self) -> None:
        r = self.registry
        self.ap_followers = Gauge(
            "newsbot_activitypub_followers", "Followers of the site's actor.", registry=r
        )
        self.ap_deliveries = Counter(
            "newsbot_activitypub_deliveries",
            "Deliveries tried by this process, by result (done, retry, failed).",
            ["result"],
            registry=r,
        )
        self.ap_pending = Gauge(
            "newsbot_activitypub_deliveries_pending",
            "Deliveries waiting (pending or in flight) in the database.",
            registry=r,
        )
        self.ap_dead_hosts = Gauge(
            "newsbot_activitypub_dead_hosts", "Hosts given up as dead.", registry=r
        )
        self.ap_given_up = Gauge(
            "newsbot_activitypub_deliveries_given_up",
            "Deliveries given up (tries used up, or their host dead), until re-queued.",
            registry=r,
        )
        self.ap_inbox_waiting = Gauge(
            "newsbot_activitypub_inbox_waiting",
            "Received activities waiting to be tried again after a transient failure.",
            registry=r,
        )
        self.ap_inbox_given_up = Gauge(
            "newsbot_activitypub_inbox_given_up",
            "Received activities given up after their tries (a Follow never accepted), "
            "until re-queued.",
            registry=r,
        )
        self.ap_latency = Histogram(
            "newsbot_activitypub_delivery_seconds",
            "Time of one delivery request, by host class (public, private).",
            ["host_class"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=r,
        )

    def observe_delivery(self, result: str, seconds: float, host_class: str) -> None:
        self.ap_deliveries.labels(result).inc()
        self.ap_latency.labels(host_class).observe(seconds)

    def observe_federation(self, health: Mapping[str, object]) -> None:
        """Set the ActivityPub gauges from `Federation.health`."""
        followers, pending, dead = health["followers"], health["pending"], health["dead_hosts"]
        if isinstance(followers, int) and isinstance(pending, int) and isinstance(dead, list):
            self.ap_followers.set(followers)
            self.ap_pending.set(pending)
            self.ap_dead_hosts.set(len(dead))
        for gauge, key in ((self.ap_given_up, "given_up"), (self.ap_inbox_waiting, "inbox_waiting"),
                           (self.ap_inbox_given_up, "inbox_given_up")):  # fmt: skip
            if isinstance(value := health.get(key), int):
                gauge.set(value)

    def observe_build(
        self, report: BuildReport | None, error: str | None = None, *, articles: int | None = None
    ) -> None:
        """Count a build that ended now; ``report`` is None when it raised.

        ``articles`` is the store's article count after the build, when the
        service knows it (the report counts files, not articles).
        """
        self.builds.inc()
        if articles is not None:
            self.articles.set(articles)
        if report is None or error is not None:
            self.build_failures.inc()
            return
        self.store_suspect.set(0 if report.suspect is None else 1)
        self.store_lost.set(0 if report.suspect is None else report.suspect.lost)
        self.stale_removed.inc(report.stale_removed)
        self.store_files.set(report.files)
        if report.suspect is not None:  # not a good build: its time and counts say nothing
            return
        self.build_problems.set(len(report.problems))
        self.build_seconds.observe(report.seconds)
        self.feeds_written.inc(report.feeds_written)
        self.pages_written.inc(report.pages_written)
        self.build_last_success.set(self._clock().timestamp())

    def observe_pass(self, report: PassReport) -> None:
        """Count one target's pass that ended now (a pass skipped as busy counts only as such)."""
        target = report.target
        if report.busy is not None:
            self.busy.labels(target).inc()
            return
        counts = (report.posted, report.edited, report.deleted, report.skipped, report.failed)
        for outcome, count in zip(POST_OUTCOMES, counts, strict=True):
            self.posts.labels(target, outcome).inc(count)
        self.pending.labels(target).set(report.waiting)
        self.retries.labels(target).inc(report.retries)
        self.held.labels(target).inc(report.held)
        self.passes.labels(target).inc()
        self.stopped.labels(target).set(0 if report.stopped is None else 1)
        self.length_errors.labels(target).inc(report.length_errors)
        self.recomposed.labels(target).inc(report.recomposed)
        self.replies.labels(target).inc(report.replies)
        self.uncertain.labels(target).set(report.uncertain)
        fatal = fatal_stop(report)
        self.publishing_ok.labels(target).set(0 if fatal or report.uncertain else 1)
        if report.stopped is None:
            self.pass_last_success.labels(target).set(self._clock().timestamp())
