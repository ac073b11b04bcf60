"""``newsbot run``: the long-running service.

It builds the feeds on a schedule and as soon as a file of the store changes,
serves them over HTTP, and runs a publish pass per target on a schedule and
right after a build that changed articles. SIGTERM or SIGINT stop it: no new
work is taken, the pass in flight finishes its current request (each request
is recorded before and after, so an interrupted one is reconciled on the
next start), and the process exits 0 within ``service.shutdown_timeout_seconds``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from newsbot.app import App
from newsbot.build import BuildReport
from newsbot.errors import NewsbotError, OutputError
from newsbot.health import Status
from newsbot.mastodon import make_http_client
from newsbot.metrics import Metrics
from newsbot.publisher import PassReport, Publisher
from newsbot.publishing import Target, publishers, targets
from newsbot.settings import Settings
from newsbot.watch import Watcher
from newsbot.web import create_app
from newsbot.web_server import WebServer
from newsbot.websub import ping

log = logging.getLogger(__name__)

BUILD_JOB = "build"
Clock = Callable[[], datetime]


class Service:
    """The scheduler, the watcher and the web server around one `App`."""

    def __init__(self, app: App, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.app = app
        self.settings: Settings = app.settings
        self.clock = clock
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        self.targets: list[Target] = targets(self.settings)
        self.publishers: dict[str, Publisher] = {}
        self.http = make_http_client()
        self.status = Status()
        self.metrics = Metrics()

    # -- lifecycle ----------------------------------------------------------------

    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        with ExitStack() as stack:
            stack.callback(self.http.close)
            runners = stack.enter_context(
                publishers(self.settings, self.app.engine, self.targets, stop=self.stopping)
            )
            self.publishers = {runner.name: runner for runner in runners}
            self._announce_targets()
            self.build()
            web = self._start_web()
            stack.callback(web.stop)
            self._schedule()
            self.scheduler.start()
            stack.callback(self._stop_scheduler)
            if self.settings.service.watch:
                watcher = Watcher(self.settings.store.content_dir, self._store_changed)
                watcher.start()
                stack.callback(watcher.stop)
            log.info(
                "newsbot is running",
                extra={"url": web.url, "store": str(self.settings.store.content_dir)},
            )
            if on_ready:
                on_ready()
            self.stopping.wait()
            log.info("stopping")
        self.app.close()
        log.info("stopped")
        return 0

    def stop(self) -> None:
        self.stopping.set()

    def _start_web(self) -> WebServer:
        service = self.settings.service
        app = create_app(self.settings.feeds.output_dir, self.status, self.metrics.registry)
        try:
            server = WebServer(app, service.host, service.port)
        except OSError as exc:
            where = f"{service.host}:{service.port}"
            raise OutputError(f"cannot listen on {where}: {exc.strerror}") from None
        server.start()
        return server

    def _observe_build(self, report: BuildReport | None, error: str | None) -> None:
        self.status.record_build(report, error)
        articles = self.app.index.count() if report is not None else None
        self.metrics.observe_build(report, error, articles=articles)

    def _install_signals(self) -> None:
        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.stopping.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handle)
            signal.signal(signal.SIGINT, handle)

    def _stop_scheduler(self) -> None:
        """Stop taking jobs; wait (bounded) for the running ones to finish their request."""
        deadline = self.settings.service.shutdown_timeout_seconds
        waiter = threading.Thread(
            target=self.scheduler.shutdown, kwargs={"wait": True}, name="newsbot-stop", daemon=True
        )
        waiter.start()
        waiter.join(deadline)
        if waiter.is_alive():
            log.warning("a job did not finish within %.0f s; its request stays recorded", deadline)

    # -- jobs ---------------------------------------------------------------------

    def _schedule(self) -> None:
        service = self.settings.service
        self.scheduler.add_job(
            self.build,
            _trigger(service.build_cron, service.build_every_seconds, service.jitter_seconds),
            id=BUILD_JOB,
            name="build the feeds",
        )
        publish_trigger = (
            service.publish_cron,
            service.publish_every_seconds,
            service.jitter_seconds,
        )
        if self.publishers:
            for name in self.publishers:
                self.scheduler.add_job(
                    self.publish,
                    _trigger(*publish_trigger),
                    args=[name],
                    id=_publish_job(name),
                    name=f"publish to {name}",
                    next_run_time=self.clock(),
                )
        else:
            self.scheduler.add_job(
                self.preview, _trigger(*publish_trigger), id="preview", next_run_time=self.clock()
            )

    def build(self) -> BuildReport | None:
        """Rebuild what changed; then, if articles changed, publish without waiting."""
        if self.stopping.is_set():
            return None
        try:
            report = self.app.builder.build(self.clock())
        except NewsbotError as exc:
            log.error("build failed: %s", exc)
            self._observe_build(None, str(exc))
            return None
        self._observe_build(report, None)
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
                    "seconds": round(report.seconds, 3),
                },
            )
            self._publish_soon()
        if report.changed_feeds and self.settings.feeds.hub:
            ping(self.http, str(self.settings.feeds.hub), report.changed_feeds)
        return report

    def publish(self, name: str) -> PassReport | None:
        """One pass for one target (skipped if another process holds its lease)."""
        if self.stopping.is_set():
            return None
        runner = self.publishers[name]
        report = runner.run()
        self.status.record_pass(report)
        self.metrics.observe_pass(report)
        if report.stopped:
            log.error("target stopped: %s", report.stopped, extra={"target": name})
        return report

    def preview(self) -> None:
        """Without a target: log exactly what would be posted, and how to configure one."""
        from newsbot.preview import Preview

        Preview(self.app, self.clock).log_new()

    def _publish_soon(self) -> None:
        now = self.clock()
        for job in self.scheduler.get_jobs():
            if job.id.startswith("publish:") or job.id == "preview":
                job.modify(next_run_time=now)

    def _store_changed(self) -> None:
        """The watcher saw a change: build now rather than at the next tick."""
        if not self.stopping.is_set():
            job = self.scheduler.get_job(BUILD_JOB)
            if job is not None:
                job.modify(next_run_time=self.clock())

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


def _trigger(cron: str | None, every: float, jitter: float) -> BaseTrigger:
    if cron:
        return CronTrigger.from_crontab(cron, timezone=UTC)
    return IntervalTrigger(seconds=every, jitter=int(jitter) or None, timezone=UTC)


def _publish_job(name: str) -> str:
    return f"publish:{name}"
