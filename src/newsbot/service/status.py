"""The status page's content: the last build with its problems and the pages it could not
write, each target's deliveries, and the ActivityPub actor's work that waits or was given up.

One read-only view for operators, composed on request from what the service
already keeps: the :class:`~newsbot.service.health.Status` of its jobs, the problems
the store index recorded per file, the deliveries table, and the actor's
inbox and delivery rows (when the actor is on). Nothing here
writes, and nothing secret leaves: tokens and the database URL are not part
of the view, and every text that came from a server (an error message) is
passed through the same masking as the logs, should a server echo a token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from newsbot.logs import MASK
from newsbot.publish.targets import Target
from newsbot.service.health import Clock, Status, utc_now
from newsbot.state import unwritten
from newsbot.state.ap_deliveries import DeliveryRows, GivenUp
from newsbot.state.deliveries import ACTIVE, Delivery, DeliveryState, DeliveryStore
from newsbot.state.inbox import GIVEN_UP, WAITING, Entry, InboxRows
from newsbot.state.index import StoreIndex

if TYPE_CHECKING:
    from jinja2 import Template

PROBLEMS_SHOWN = 200
"""Problems listed on the page; the count is always complete."""

ROWS_SHOWN = 50
"""Rows per list of a target (waiting, failed, posted)."""

Profile = Callable[[str], Mapping[str, Any] | None]
"""What is known of a target's server (its limits, the account), None before its first pass."""

NextPass = Callable[[str], datetime | None]
"""When a target's next scheduled pass is due, None when none is scheduled."""


@dataclass(frozen=True, slots=True)
class Fediverse:
    """Where the actor's work is kept: the activities received, the deliveries."""

    inbox: InboxRows
    deliveries: DeliveryRows


class StatusPage:
    """Composes the status as plain data (the JSON of ``/status.json``, the HTML's model)."""

    def __init__(
        self,
        index: StoreIndex,
        deliveries: DeliveryStore,
        status: Status,
        targets: Sequence[Target],
        *,
        secrets: Sequence[str] = (),
        profile: Profile = lambda _name: None,
        next_pass: NextPass = lambda _name: None,
        clock: Clock = utc_now,
        fediverse: Fediverse | None = None,
    ) -> None:
        self.index = index
        self.deliveries = deliveries
        self.status = status
        self.targets = list(targets)
        self.secrets = [secret for secret in secrets if len(secret) >= 4]
        self.profile = profile
        self.next_pass = next_pass
        self.clock = clock
        self.fediverse = fediverse
        self._template: Template | None = None

    def compose(self) -> dict[str, Any]:
        """The whole page as JSON-ready data; reads the database, so call it off the event loop."""
        snapshot = self.status.snapshot()
        problems = self.index.problems()
        build = None if snapshot.build is None else snapshot.build.to_json()
        return {
            "generated_at": self.clock().isoformat(),
            "ready": snapshot.ready,
            "reasons": [self._clean(reason) for reason in snapshot.reasons()],
            "started_at": snapshot.started_at.isoformat(),
            "build": build,
            "problems": {
                "count": len(problems),
                "shown": [
                    {k: self._clean(v) for k, v in asdict(problem).items()}
                    for problem in problems[:PROBLEMS_SHOWN]
                ],
            },
            # Articles no target posts until a build writes their page.
            "unwritten": [
                {"article": article_id, "why": self._clean(error)}
                for article_id, error in unwritten.listing(self.index.engine)[:PROBLEMS_SHOWN]
            ],
            # Feed, navigation and image files a build could not write (nothing waits for them).
            "unwritten_files": [
                {"file": name, "why": self._clean(error)}
                for name, _, error in unwritten.file_listing(self.index.engine)[:PROBLEMS_SHOWN]
            ],
            "targets": [
                self._target(target, snapshot.passes.get(target.name)) for target in self.targets
            ],
            "activitypub": None if self.fediverse is None else self._activitypub(self.fediverse),
        }

    def render(self, status: dict[str, Any]) -> str:
        """The page as HTML, from what :meth:`compose` returned (the template loads once)."""
        if self._template is None:
            from jinja2 import Environment, PackageLoader, select_autoescape  # first page: ~2 MB

            env = Environment(
                loader=PackageLoader("newsbot.render", "templates"),
                autoescape=select_autoescape(["html"]),
            )
            self._template = env.get_template("status.html")
        return self._template.render(status=status)

    def _target(self, target: Target, last_pass: Any) -> dict[str, Any]:
        name = target.name
        counts = self.deliveries.report(name)
        waiting = self.deliveries.listing(name, ACTIVE, ROWS_SHOWN)
        failed = self.deliveries.listing(name, (DeliveryState.FAILED,), ROWS_SHOWN)
        posted = self.deliveries.listing(name, (DeliveryState.POSTED,), 1)
        stored_error = self.deliveries.last_pass_error(name)
        next_pass = self.next_pass(name)
        return {
            "name": name,
            "server": str(target.settings.server),
            "profile": self.profile(name),
            "state": _state(target, last_pass, stored_error),
            "problem": target.problem,
            "last_pass": None if last_pass is None else self._clean_json(last_pass.to_json()),
            "last_pass_error": self._clean(stored_error),
            "next_pass_at": None if next_pass is None else next_pass.isoformat(),
            "counts": counts,
            "last_post": None if not posted else self._row(posted[0]),
            "waiting": [self._row(row) for row in waiting],
            "failed": [self._row(row) for row in failed],
        }

    def _activitypub(self, fediverse: Fediverse) -> dict[str, Any]:
        """The actor's deliveries and received activities by state; those that wait for a
        retry and those given up (a Follow given up is a follower never accepted), each with why.
        """
        inbox = fediverse.inbox
        return {
            "deliveries": fediverse.deliveries.counts(),
            "inbox": inbox.counts(),
            "inbox_waiting": [self._received(e, True) for e in inbox.listing(WAITING, ROWS_SHOWN)],
            "inbox_given_up": [
                self._received(e, False) for e in inbox.listing(GIVEN_UP, ROWS_SHOWN)
            ],
            "deliveries_given_up": [
                self._given_up(row) for row in fediverse.deliveries.given_up(ROWS_SHOWN)
            ],
        }

    def _received(self, entry: Entry, waiting: bool) -> dict[str, Any]:
        return {
            "type": entry.type,
            "actor": entry.actor,
            "received_at": _when(entry.received),
            "tries": entry.tries,
            "due_at": _when(entry.next_try) if waiting else None,
            "why": self._clean(entry.last_error),
        }

    def _given_up(self, row: GivenUp) -> dict[str, Any]:
        return {
            "activity": row.activity_id,
            "type": row.type,
            "inbox": row.inbox,
            "state": row.state,
            "tries": row.tries,
            "finished_at": _when(row.finished),
            "status": row.last_status,
            "why": self._clean(row.last_error),
        }

    def _row(self, row: Delivery) -> dict[str, Any]:
        return {
            "article": row.article_id,
            "state": row.state,
            "action": row.action,
            "tries": row.tries,
            "due_at": _when(row.next_try) if row.state == DeliveryState.RETRY else None,
            "last_attempt_at": _when(row.last_attempt),
            "posted_at": _when(row.posted_at),
            "status_url": row.status_url,
            "outcome_unknown": row.outcome_unknown,
            "why": self._clean(row.last_error),
        }

    def _clean(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def _clean_json(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {key: self._clean(value) for key, value in data.items()}


def _state(target: Target, last_pass: Any, stored_error: str | None) -> str:
    """One word for the target: not usable, stopped, busy, posting, or waiting for a first pass."""
    if target.problem:
        return "not usable"
    if last_pass is None:
        return "stopped" if stored_error else "no pass yet"
    if last_pass.fatal or last_pass.error:
        return "stopped"
    if last_pass.busy:
        return "busy elsewhere"
    return "posting"


def _when(seconds: int | None) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat()
