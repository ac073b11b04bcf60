"""What the service has done lately, for ``/readyz``: the last build and each target's last pass.

The service's jobs write it (from their own threads) and the web app reads it
(from the server's), so every update replaces one frozen record under a lock
and readers get a consistent :class:`Snapshot`. Readiness is a plain function
of the snapshot: a first build that succeeded. Readiness is about serving
the feeds: a posting token refused by a server, or a token of another
account, must not take the feeds offline. Publishing health is reported
beside it (`Snapshot.publishing`, per target: ok, stopped since when and why,
uncertain deliveries), for a monitor to alert on through its own endpoint.
Nor does a suspect store make the process unready: it is a warning, since
the last good output is still served.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsbot.build.builder import BuildReport
    from newsbot.publish.report import PassReport
    from newsbot.state.suspect import Suspect

Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""


def utc_now() -> datetime:
    """The wall clock, in UTC: the default clock of :class:`Status` and the metrics."""
    return datetime.now(UTC)


def fatal_stop(report: PassReport) -> bool:
    """Whether a pass stopped for a reason no retry will cure (a refused token, another
    account): decided from its `StopReason`, never from the message's wording."""
    return report.needs_a_person


def federation_warnings(health: Mapping[str, Any]) -> list[str]:
    """What ActivityPub gave up, in words for ``/readyz`` (from `Federation.health`)."""
    todo = "`newsbot state` lists them; `newsbot requeue` tries them again once the cause is fixed"
    found = []
    if inbox := health.get("inbox_given_up"):
        found.append(
            f"ActivityPub: {inbox} received activity(ies) given up (a Follow among them is a "
            f"follower never accepted); {todo}"
        )
    if deliveries := health.get("given_up"):
        found.append(f"ActivityPub: {deliveries} delivery(ies) given up; {todo}")
    return found


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """The last build: when it ended, how long it took, and why it failed if it did."""

    at: datetime
    seconds: float | None
    error: str | None
    files: int = 0
    problems: int = 0
    suspect: Suspect | None = None
    """Why the store was not trusted: the last good output is served, nothing removed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "seconds": self.seconds,
            "error": self.error,
            "files": self.files,
            "problems": self.problems,
            "suspect": None if self.suspect is None else self.suspect.to_json(),
        }


@dataclass(frozen=True, slots=True)
class PassRecord:
    """One target's last publish pass, with its counts.

    ``busy`` names the process that held the target's publish lease when the
    pass was skipped for that reason: it did nothing, and failed in nothing.
    """

    at: datetime
    error: str | None
    fatal: bool
    posted: int
    edited: int
    deleted: int
    skipped: int
    failed: int
    retries: int
    pending: int
    busy: str | None = None
    held: int = 0
    uncertain: int = 0
    length_errors: int = 0
    recomposed: int = 0
    rules: str = ""
    stopped_since: datetime | None = None

    @classmethod
    def of(cls, report: PassReport, at: datetime, fatal: bool) -> PassRecord:
        return cls(
            at=at,
            error=report.stopped,
            fatal=fatal,
            posted=report.posted,
            edited=report.edited,
            deleted=report.deleted,
            skipped=report.skipped,
            failed=report.failed,
            retries=report.retries,
            pending=report.waiting,
            busy=report.busy,
            held=report.held,
            uncertain=report.uncertain,
            length_errors=report.length_errors,
            recomposed=report.recomposed,
            rules=report.rules,
            stopped_since=at if report.stopped else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "error": self.error,
            "fatal": self.fatal,
            "posted": self.posted,
            "edited": self.edited,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "failed": self.failed,
            "retries": self.retries,
            "pending": self.pending,
            "busy": self.busy,
            "held": self.held,
            "uncertain": self.uncertain,
            "length_errors": self.length_errors,
            "recomposed": self.recomposed,
            "rules": self.rules,
            "stopped_since": None if self.stopped_since is None else self.stopped_since.isoformat(),
        }

    @property
    def publishing_ok(self) -> bool:
        return not self.fatal and not self.uncertain


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The status at one moment; immutable, so a response never mixes two moments."""

    started_at: datetime
    build: BuildRecord | None
    passes: Mapping[str, PassRecord]
    federation: Mapping[str, Any] | None = None
    """ActivityPub delivery health (followers, pending, dead hosts), when the actor is on."""

    def reasons(self) -> list[str]:
        """Why the service is not ready; empty when it is."""
        reasons = []
        if self.build is None:
            reasons.append("no build yet")
        elif self.build.error is not None:
            reasons.append(f"the last build failed: {self.build.error}")
        return reasons

    def warnings(self) -> list[str]:
        """What needs a person without making the service unready.

        A suspect store is one: the last good output is still served, and
        taking the process out of service would only hide the feeds too.
        ActivityPub work given up is another: a Follow given up is a follower
        who never got an Accept, and nothing happens until someone re-queues it.
        """
        found = []
        if self.build is not None and self.build.suspect is not None:
            found.append(self.build.suspect.message())
        return found + federation_warnings(self.federation or {})

    def publishing_problems(self) -> list[str]:
        """Why publishing needs a person: a target stopped for good, or uncertain deliveries."""
        problems = []
        for name, record in sorted(self.passes.items()):
            if record.fatal:
                problems.append(f"target {name} stopped: {record.error}")
            if record.uncertain:
                problems.append(f"target {name}: {record.uncertain} uncertain delivery(ies)")
        return problems

    def publishing(self) -> dict[str, Any]:
        """Publishing health per target, for ``/healthz/publishing`` and ``/readyz``."""
        return {
            "ok": not self.publishing_problems(),
            "problems": self.publishing_problems(),
            "targets": {
                name: {
                    "ok": record.publishing_ok,
                    "stopped_since": None
                    if record.stopped_since is None
                    else record.stopped_since.isoformat(),
                    "why": record.error,
                    "uncertain": record.uncertain,
                }
                for name, record in sorted(self.passes.items())
            },
        }

    @property
    def ready(self) -> bool:
        return not self.reasons()

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "reasons": self.reasons(),
            "warnings": self.warnings(),
            "started_at": self.started_at.isoformat(),
            "build": None if self.build is None else self.build.to_json(),
            "targets": {name: record.to_json() for name, record in sorted(self.passes.items())},
            "publishing": self.publishing(),
            "activitypub": None if self.federation is None else dict(self.federation),
        }


class Status:
    """The service's recent outcomes; the service records, the web app takes snapshots."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot = Snapshot(clock(), None, MappingProxyType({}))

    def record_build(self, report: BuildReport | None, error: str | None = None) -> None:
        """Remember a build that ended now; ``report`` is None when the build raised."""
        if report is None and error is None:
            error = "the build did not finish"
        record = BuildRecord(
            at=self._clock(),
            seconds=None if report is None else report.seconds,
            error=error,
            files=0 if report is None else report.files,
            problems=0 if report is None else len(report.problems),
            suspect=None if report is None else report.suspect,
        )
        with self._lock:
            self._snapshot = Snapshot(
                self._snapshot.started_at, record, self._snapshot.passes, self._snapshot.federation
            )

    def record_pass(self, report: PassReport, *, fatal: bool | None = None) -> None:
        """Remember a target's pass that ended now; ``fatal`` overrides :func:`fatal_stop`."""
        is_fatal = fatal_stop(report) if fatal is None else fatal
        record = PassRecord.of(report, self._clock(), is_fatal)
        with self._lock:
            before = self._snapshot.passes.get(report.target)
            if record.error and before is not None and before.stopped_since is not None:
                record = replace(record, stopped_since=before.stopped_since)
            passes = {**self._snapshot.passes, report.target: record}
            self._snapshot = Snapshot(
                self._snapshot.started_at,
                self._snapshot.build,
                MappingProxyType(passes),
                self._snapshot.federation,
            )

    def record_federation(self, health: Mapping[str, Any]) -> None:
        """Remember the ActivityPub delivery health measured now."""
        with self._lock:
            snap = self._snapshot
            self._snapshot = Snapshot(
                snap.started_at, snap.build, snap.passes, MappingProxyType(dict(health))
            )

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz``'s verdict: ready or not, and the whole snapshot as the reason."""
        snapshot = self.snapshot()
        return snapshot.ready, snapshot.to_json()

    def publishing(self) -> tuple[bool, dict[str, Any]]:
        """``/healthz/publishing``'s verdict: every target posting, and each one's health."""
        health = self.snapshot().publishing()
        return bool(health["ok"]), health
