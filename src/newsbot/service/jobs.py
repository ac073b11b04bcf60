"""The service's scheduled jobs: their triggers, their names, and how one is asked to run soon."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

BUILD_JOB = "build"
PREVIEW_JOB = "preview"
ACTIVITYPUB_JOB = "activitypub"


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]  # APScheduler 3 is untyped
    """APScheduler's background scheduler, without its traceback at a stop.

    ``shutdown`` marks the scheduler stopped before it takes the job stores'
    lock; a one-off job (`Coalesced.request`) that the scheduler's thread is
    handing out at that moment is then removed from the pending jobs of a
    stopped scheduler, where it is not, and the thread dies with
    ``JobLookupError`` (agronholm/apscheduler#104). The job ran or will not:
    there is nothing left to remove.
    """

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        try:
            super().remove_job(job_id, jobstore)
        except JobLookupError:
            if self.state != STATE_STOPPED:
                raise


def scheduler() -> BackgroundScheduler:
    """One run of each job at a time; a run missed while the process was busy is not repeated."""
    return _Scheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
    )


class Coalesced:
    """A job that runs one at a time, and can be asked to run soon.

    APScheduler skips a run that falls due while the same job still runs, and
    with it a ``modify(next_run_time=now)``: a file dropped during a build, or
    a build that ends during a pass, would wait for the next tick. Here a
    request made while the job runs gives exactly one more run after it, and
    requests made before that run starts add nothing.
    """

    def __init__(self, scheduler: BackgroundScheduler, job: Callable[[], object], name: str):
        self.scheduler = scheduler
        self.job = job
        self.name = name
        self._running = threading.Lock()
        self._asking = threading.Lock()
        self._wanted = threading.Event()

    def run(self) -> None:
        """A scheduled run: it covers every request made before it started."""
        with self._running:
            self._wanted.clear()
            self.job()

    def request(self) -> None:
        """Run soon: now if idle, else once more as soon as the run in flight ends."""
        with self._asking:
            if self._wanted.is_set():
                return  # a run is already waiting to start, and will see what changed
            self._wanted.set()
        self.scheduler.add_job(self._requested, name=self.name)

    def _requested(self) -> None:
        with self._running:
            if self._wanted.is_set():
                self._wanted.clear()
                self.job()


def trigger(cron: str | None, every: float, jitter: float) -> BaseTrigger:
    """A crontab line if one is set, else every ``every`` seconds, give or take ``jitter``."""
    if cron:
        return CronTrigger.from_crontab(cron, timezone=UTC)
    return IntervalTrigger(seconds=every, jitter=int(jitter) or None, timezone=UTC)


def every(seconds: float) -> BaseTrigger:
    return IntervalTrigger(seconds=seconds, timezone=UTC)


def publish_job(name: str) -> str:
    return f"publish:{name}"


def quiet_scheduler_notices() -> None:
    """A pass longer than its interval makes APScheduler warn at every skipped tick.

    Skipping is what the service wants (one pass at a time per target, one
    build at a time), so those notices would only flood the log; errors stay.
    """
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
