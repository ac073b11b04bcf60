"""``newsbot run``: the long-running service.

It serves the output folder, the probes and the metrics from the start (so
``/healthz`` answers while a large store is first built, and ``/readyz`` says
503 until that build is done), builds the feeds at once, then on a schedule
and as soon as a file of the store changes, and runs a publish pass per target
on a schedule and right after a build that changed articles. Services that
share one database share its store index: they take turns to build (a lease
in the database) and must serve one shared output folder.

SIGTERM or SIGINT stop it: no new work is taken, a pass in flight ends after its
current request, whose answer it waits for a few seconds more at most (each
request is recorded before and after, so an unanswered one is reconciled on the
next start: `newsbot.publish.interruptible`), ActivityPub deliveries in flight
get as long before they are dropped and due again (`DeliveryWorker`), and
everything is given at most ``service.shutdown_timeout_seconds`` in all. A job
still running after that is abandoned, as a crash would leave it, and
:attr:`Service.abandoned` tells the command line to exit without waiting for it.

This module holds what the service does and when; the scheduling helpers
are in :mod:`~newsbot.service.jobs`, stopping in :mod:`~newsbot.service.signals`,
and the wiring of what it serves in :mod:`~newsbot.service.serving`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import disable_created_metrics

from newsbot.app import App
from newsbot.build.builder import BuildReport
from newsbot.forked import Child, ChildEnded
from newsbot.mastodon.client import make_http_client
from newsbot.publish.publisher import PassReport, Publisher
from newsbot.publish.report import StopReason
from newsbot.publish.targets import Target, server_root, targets
from newsbot.service import jobs, memory
from newsbot.service.build_job import BuildJob, BuildOutcome
from newsbot.service.health import Status
from newsbot.service.jobs import Coalesced
from newsbot.service.metrics import Metrics
from newsbot.service.serving import start_web, status_page
from newsbot.service.signals import ShutdownBudget, stop_on_signals
from newsbot.service.watch import Watcher
from newsbot.service.websub import ping
from newsbot.settings import Settings
from newsbot.web.early import EarlyProbes
from newsbot.web.server import WebServer

if TYPE_CHECKING:
    from newsbot.activitypub.deliveries import Outcome
    from newsbot.activitypub.federation import Federation
    from newsbot.publish.preview import Preview

log = logging.getLogger(__name__)

ACTIVITYPUB_EVERY_SECONDS = 30.0
"""How often scheduled articles are checked for the outbox and delivery health is measured."""
BUILD_LEASE_POLL_SECONDS = 0.5
STOP_REMINDER = timedelta(hours=1)
"""How often a target stopped for the same reason is said again (each pass would be noise)."""
Clock = Callable[[], datetime]


def _wants_activity(headers: list[tuple[bytes, bytes]]) -> bool:
    """A client asking for ActivityPub JSON: the actor's middleware answers it, never the cache."""
    accepts = [value for name, value in headers if name == b"accept"]
    if not accepts:  # most requests: asked once per request, so no import for them
        return False
    from newsbot.activitypub.routes import wants_activity

    return any(wants_activity(value.decode("latin-1")) for value in accepts)


def _what_to_do(name: str, reason: StopReason | None) -> str:
    """The setting to look at for a stopped target, so that the operator's next step is plain."""
    match reason:
        case StopReason.TOKEN_REFUSED:
            return f" (set a new token in targets.{name}.token or token_file, then restart)"
        case StopReason.SERVER_UNAVAILABLE | StopReason.SERVER_ERROR:
            return f" (check targets.{name}.server; each pass tries again)"
        case _:
            return ""


class Service:
    """The scheduler, the watcher and the web server around one `App`."""

    def __init__(
        self,
        app: App,
        clock: Clock = lambda: datetime.now(UTC),
        *,
        stopping: threading.Event | None = None,
        early: EarlyProbes | None = None,
    ) -> None:
        """``early``: the probes answered on the bound port while the service loaded."""
        self.app = app
        self.early = early
        self.settings: Settings = app.settings
        self.clock = clock
        self.stopping = stopping if stopping is not None else threading.Event()
        self.scheduler = jobs.scheduler()
        self.targets: list[Target] = targets(self.settings)
        self.publishers: dict[str, Publisher] = {}
        self.http = make_http_client()
        self.status = Status()
        disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` samples are noise
        self.metrics = Metrics()
        self.abandoned = False
        """Set when a job was still running once the shutdown time was up."""
        self._scheduling = threading.Lock()
        """Held while a job or the watcher changes the schedule (see `_while_running`)."""
        self._builds = Coalesced(self.scheduler, self.build, "build after a change")
        self._passes: dict[str, Coalesced] = {}
        self._first_build_done = False
        self._change_waiting = False
        """A file changed: the next build does only what changed, no related backlog."""
        self._preview: Preview | None = None
        self.federation: Federation | None = None
        self._budget = ShutdownBudget(self.settings.service.shutdown_timeout_seconds)
        self._build_lease = app.build_lease(self.clock)
        self._build_child: Child[BuildOutcome] = Child("build")
        self._stops_said: dict[str, tuple[str, datetime]] = {}
        """Per stopped target: why, as last logged, and when (see `_log_stop`)."""

    # -- lifecycle ----------------------------------------------------------------

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        stop_on_signals(self.stopping)
        jobs.quiet_scheduler_notices()
        with ExitStack() as stack:
            stack.callback(self.http.close)
            runners = stack.enter_context(self.app.publishers(self.targets, stop=self.stopping))
            for runner in runners:
                runner.sleep = self._pause
            self.publishers = {runner.name: runner for runner in runners}
            self._announce_targets()
            if self.settings.activitypub.enabled:
                self.federation = self._federation()
                self.federation.start()
                stack.callback(self._stop_federation)
            web = self._start_web()
            stack.callback(lambda: web.stop(self._time_left()))
            self._schedule()
            stack.callback(lambda: self._build_child.stop(self._time_left()))  # one over time
            self.scheduler.start()
            stack.callback(self._stop_scheduler)
            if self.settings.service.watch:
                watcher = Watcher(self.settings.store.content_dir, self._store_changed)
                watcher.start()
                stack.callback(lambda: watcher.stop(self._time_left()))
            log.info("newsbot is running", extra={"url": web.url, **self._where()})
            if on_ready:
                on_ready()
            self.stopping.wait()
            self._time_left()  # the shutdown budget starts now
            log.info("stopping")
            if self.federation is not None:  # deliveries' grace runs while the rest stops
                self.federation.stop(0)
        self.app.close()
        log.info("stopped")
        return 0

    def stop(self) -> None:
        self.stopping.set()

    def _where(self) -> dict[str, str]:
        """What the start line names besides the address: the store, the state, the targets.

        No secret: the database URL without its password, each server without
        any user or password in its address.
        """
        from newsbot.state.database import shown_url

        state = self.settings.state
        return {
            "store": str(self.settings.store.content_dir),
            "output": str(self.settings.feeds.output_dir),
            "state": shown_url(state),
            "targets": ", ".join(
                f"{target.name}={server_root(target.settings)}" for target in self.targets
            )
            or "none",
        }

    def _start_web(self) -> WebServer:
        page = status_page(
            self.app, self.status, self.targets, self.publishers.get, self._next_pass, self.clock
        )
        if self.federation is None:
            return start_web(self.app, self.status, self.metrics, page, early=self.early)
        return start_web(
            self.app,
            self.status,
            self.metrics,
            page,
            routes=self.federation.routes(),
            middleware=self.federation.middleware(),
            declines=_wants_activity,
            early=self.early,
            on_shutdown=[self.federation.close_routes],
        )

    def _next_pass(self, name: str) -> datetime | None:
        job = self.scheduler.get_job(jobs.publish_job(name))
        return None if job is None else job.next_run_time

    def _federation(self) -> Federation:
        from newsbot.activitypub.addresses import is_public
        from newsbot.activitypub.federation import Federation

        def observe(outcome: Outcome) -> None:
            host = outcome.claimed.host.rsplit(":", 1)[0].strip("[]")
            try:
                host_class = "public" if is_public(host) else "private"
            except ValueError:
                host_class = "named"
            self.metrics.observe_delivery(outcome.result, outcome.seconds, host_class)

        return Federation(
            self.settings, self.app.engine, owner=self.app.owner(), clock=self.clock,
            observe=observe, files=self.app.owner_files,
        )  # fmt: skip

    def _stop_federation(self) -> None:
        if self.federation is not None:
            self.federation.stop(self._time_left())

    def federate(self) -> None:
        """Queue activities for what changed (scheduled articles too); record delivery health."""
        if self.federation is None or self.stopping.is_set():
            return
        try:
            self.federation.sync()
            self.federation.process_leftovers()
            health = self.federation.health()
        except Exception:  # the database went away, say: the next run tries again
            log.exception("ActivityPub sync failed")
            return
        self.status.record_federation(health)
        self.metrics.observe_federation(health)

    def _observe_build(self, report: BuildReport | None, error: str | None) -> None:
        self.status.record_build(report, error)
        articles = self.app.index.count() if report is not None else None
        self.metrics.observe_build(report, error, articles=articles)

    def _time_left(self) -> float:
        """Seconds left of the shutdown budget, which starts running at the first call."""
        return self._budget.left()

    def _pause(self, seconds: float) -> None:
        """The publishers' wait before a retry, cut short when the service stops."""
        self.stopping.wait(seconds)

    def _stop_scheduler(self) -> None:
        """Stop taking jobs; wait (bounded) for the running ones to finish their request."""
        self.stopping.set()
        with self._scheduling:
            pass  # a change of the schedule under way ends first; later ones see `stopping`
        waiter = threading.Thread(
            target=self.scheduler.shutdown, kwargs={"wait": True}, name="newsbot-stop", daemon=True
        )
        waiter.start()
        waiter.join(self._time_left())
        if waiter.is_alive():
            self.abandoned = True
            log.warning(
                "a job did not finish within %.0f s; its request stays recorded",
                self.settings.service.shutdown_timeout_seconds,
            )

    # -- jobs ---------------------------------------------------------------------

    def _schedule(self) -> None:
        """The first build now; the passes and ActivityPub (paused until that build is done)."""
        service = self.settings.service
        self.scheduler.add_job(
            self._builds.run,
            jobs.trigger(service.build_cron, service.build_every_seconds, service.jitter_seconds),
            id=jobs.BUILD_JOB,
            name="build the feeds",
            next_run_time=self.clock(),
        )
        if self.federation is not None:
            self.scheduler.add_job(
                self.federate,
                jobs.every(ACTIVITYPUB_EVERY_SECONDS),
                id=jobs.ACTIVITYPUB_JOB,
                name="ActivityPub outbox and delivery health",
                next_run_time=None,  # paused until the first build: the index is being filled
            )
        passes: dict[str, Callable[[], object]] = {
            jobs.publish_job(name): partial(self.publish, name) for name in self.publishers
        }
        if not self.targets:
            passes[jobs.PREVIEW_JOB] = self.preview
        for job_id, job in passes.items():
            self._passes[job_id] = Coalesced(self.scheduler, job, f"{job_id} after a build")
            self.scheduler.add_job(
                self._passes[job_id].run,
                jobs.trigger(
                    service.publish_cron, service.publish_every_seconds, service.jitter_seconds
                ),
                id=job_id,
                name=job_id,
                next_run_time=None,
            )

    def build(self) -> BuildReport | None:
        """Rebuild what changed; then, if articles changed, publish without waiting.

        The first build, changes or not, starts the passes: until it is done
        they would publish from an index still being filled.
        """
        if self.stopping.is_set():
            return None
        backlog, self._change_waiting = not self._change_waiting, False
        report, error = self._build_once(backlog)
        if report is None and error is None:
            return None  # stopped while waiting for another process's build
        self._observe_build(report, error)
        changed = report is not None and bool(report.read or report.removed)
        if report is not None:
            self._log_build(report)
        if not self._first_build_done:
            if report is not None:
                self.federate()  # the whole store's activities, before the first pass
            self._first_build_done = True
            self._start_passes()
        elif changed:
            self._publish_soon()  # first: the pass runs on its own thread during the sync
            self.federate()
        if report is not None and report.changed_feeds and self.settings.feeds.hub:
            ping(self.http, str(self.settings.feeds.hub), report.changed_feeds)
        if report is not None and (changed or report.pages_written or report.feeds_written):
            memory.release()  # what the build and the sync used, back to the system
        return report

    def _build_once(self, backlog: bool) -> BuildOutcome:
        """One build under the build lease; (None, None) when stopped while waiting for it.

        ``backlog``: also compute related lists still missing, for up to
        ``site.related_seconds`` (scheduled builds; a build a changed file asked
        for leaves them, so that the new article is posted without that wait).
        The build runs in a child process (`newsbot.forked`), so that what it
        loads and allocates is not kept by the service at rest; this process
        keeps the build lease meanwhile.
        """
        try:
            if not self._hold_build_lease():
                return None, None
            try:
                job = BuildJob(self.settings, self.clock(), backlog)
                return self._build_child.run(job, meanwhile=self._lease_keeper())
            finally:
                self._build_lease.release()
        except ChildEnded as exc:
            if self.stopping.is_set():
                log.info("build stopped with the service: %s", exc)
            else:
                log.error("build failed: %s", exc)
            return None, str(exc)
        except Exception as exc:  # the database went away, say: the next build tries again
            log.exception("build failed")
            return None, f"{type(exc).__name__}: {exc}"

    def _hold_build_lease(self) -> bool:
        """Wait for our turn to build; False if the service stops meanwhile.

        Services sharing a database share its store index, and so must share one
        output folder and build it one at a time: two builders at once would
        both insert the same files into the index.
        """
        return self._build_lease.wait(
            self.stopping,
            BUILD_LEASE_POLL_SECONDS,
            lambda holder: log.info(
                "waiting for another process to finish its build", extra={"holder": holder}
            ),
        )

    def _lease_keeper(self) -> Callable[[], None]:
        """Renews the build lease while a build runs; says once if it was lost."""
        kept = True

        def keep() -> None:
            nonlocal kept
            if not kept:
                return
            try:
                kept = self._build_lease.keep()
            except Exception as exc:  # the database busy with the build's own writes, say
                log.warning("the build lease not renewed (%s); trying again", type(exc).__name__)
                return
            if not kept:
                log.warning("the build lease ran out; another process may build at the same time")

        return keep

    def _log_build(self, report: BuildReport) -> None:
        if report.suspect is not None:
            log.error(report.suspect.message(), extra={"lost": report.suspect.lost})
            return
        if report.stale_removed:
            log.info("stale files removed from the output", extra={"files": report.stale_removed})
        for problem in report.problems[:20]:
            log.warning(
                "problem: %s", problem.message, extra={"path": problem.path, "line": problem.line}
            )
        if report.read or report.removed:
            log.info(
                "feeds rebuilt",
                extra={
                    "read": report.read,
                    "removed": report.removed,
                    "pages_removed": report.pages_removed,
                    "seconds": round(report.seconds, 3),
                },
            )

    def publish(self, name: str) -> PassReport | None:
        """One pass for one target (skipped if another process holds its lease)."""
        if self.stopping.is_set():
            return None
        runner = self.publishers[name]
        try:
            report = runner.run()
        except Exception as exc:  # the database went away, say: the next pass tries again
            log.exception("publish pass failed", extra={"target": name})
            report = PassReport(name, stopped=f"the pass failed: {type(exc).__name__}: {exc}")
        self.status.record_pass(report)
        self.metrics.observe_pass(report)
        if report.posted or report.edited or report.deleted or report.skipped:
            memory.release()
        self._log_stop(name, report)
        return report

    def _log_stop(self, name: str, report: PassReport) -> None:
        """Say a target stopped once, not at every pass; again when why changes, hourly, or cured.

        A refused token or an unreachable server stops every pass until someone
        acts, and a pass runs every minute: an error line each time buries the
        rest of the log. `/healthz/publishing`, `/status` and the metrics show
        the state at any time.
        """
        said = self._stops_said.get(name)
        if report.stopped is None:
            if said is not None and report.busy is None and not report.interrupted:
                del self._stops_said[name]
                log.info("target publishing again", extra={"target": name})
            return
        now = self.clock()
        if said is not None and said[0] == report.stopped and now - said[1] < STOP_REMINDER:
            log.debug("target still stopped: %s", report.stopped, extra={"target": name})
            return
        self._stops_said[name] = (report.stopped, now)
        hint = _what_to_do(name, report.stop)
        log.error("target stopped: %s%s", report.stopped, hint, extra={"target": name})

    def preview(self) -> None:
        """Without a target: log exactly what would be posted, and how to configure one."""
        if self.stopping.is_set():
            return
        if self._preview is None:
            from newsbot.publish.preview import Preview
            from newsbot.state.related import RelatedFinder
            from newsbot.state.related_lists import RelatedLists

            lists = RelatedLists(RelatedFinder(self.app.engine))
            policy = self.app.settings.site.related_policy
            self._preview = Preview(self.app.index, lists, policy, self.clock)
        self._preview.log_new()

    def _start_passes(self) -> None:
        """After the first build: passes and ActivityPub on their schedule, and a pass at once.

        (The first build has just synced ActivityPub itself.)
        """
        self._while_running(self._resume_passes)

    def _resume_passes(self) -> None:
        if self.federation is not None:
            self.scheduler.resume_job(jobs.ACTIVITYPUB_JOB)
        for job_id, passes in self._passes.items():
            self.scheduler.resume_job(job_id)
            passes.request()

    def _publish_soon(self) -> None:
        self._while_running(self._request_passes)

    def _request_passes(self) -> None:
        for passes in self._passes.values():
            passes.request()

    def _while_running(self, change: Callable[[], object]) -> None:
        """``change`` the schedule from a job or the watcher, unless the service stops.

        APScheduler's ``shutdown`` holds the job stores' lock while it waits for
        the running jobs, and every change of the schedule takes that lock: a
        job that asked for a pass then would wait for the shutdown, and the
        shutdown for it, until the process is killed. Changes are made under
        `_scheduling`, which the stop takes once (after ``stopping`` is set)
        before the shutdown: a change under way ends first, a later one is dropped.
        """
        with self._scheduling:
            if not self.stopping.is_set():
                change()

    def _store_changed(self) -> None:
        """The watcher saw a change: build now rather than at the next tick."""
        self._change_waiting = True
        self._while_running(self._builds.request)

    def _announce_targets(self) -> None:
        for target in self.targets:
            if target.problem:
                log.error("target not usable: %s", target.problem, extra={"target": target.name})
        if not self.targets:
            log.info(
                "no target configured, so nothing is posted; to post, set "
                "NEWSBOT_TARGETS__MAIN__SERVER=https://your.server/ and "
                "NEWSBOT_TARGETS__MAIN__TOKEN (or a [targets.main] table in the config file)"
            )
