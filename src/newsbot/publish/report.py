"""What one publish pass did for one target, and why it stopped if it did.

The service decides readiness and alerts from `StopReason`, never from the
wording of ``PassReport.stopped`` (which is for people, and may change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsbot.articles import Article
    from newsbot.publish.compose import Composed


class StopReason(StrEnum):
    """Why a pass ended before its work was done."""

    TOKEN_REFUSED = "token refused"  # noqa: S105 - a reason, not a secret
    """The server refused the access token (or a scope it needs)."""
    ACCOUNT_CHANGED = "account changed"
    """The token now belongs to another account than the one the target posted to."""
    UNSUPPORTED = "unsupported"
    """The server's software cannot post with the target's settings (its visibility)."""
    SERVER_UNAVAILABLE = "server unavailable"
    RATE_LIMITED = "rate limited"
    LEASE_LOST = "lease lost"
    """Another process took over the target's publish lease."""
    SERVER_ERROR = "server error"
    """Any other answer of the server that ends the pass."""

    @property
    def needs_a_person(self) -> bool:
        """Whether no retry will cure it: someone must change the token or the target."""
        return self in (StopReason.TOKEN_REFUSED, StopReason.ACCOUNT_CHANGED)


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
    """Why the pass stopped, in words (for logs and the status page)."""
    stop: StopReason | None = None
    """Why the pass stopped, as a reason the service decides from."""
    held: int = 0
    """Edits and deletions left for a later pass: a suspect store, or the per-pass caps."""
    busy: str | None = None
    """The pass did not run: this other process holds the target's publish lease."""
    interrupted: bool = False
    """The pass ended early because newsbot is shutting down."""
    dry_run: list[tuple[Article, Composed]] = field(default_factory=list)
    dry_run_skipped: list[tuple[Article, str]] = field(default_factory=list)
    """Articles the dry run would not post, with why (backlog, filters, cannot compose)."""

    def stopped_by(self, reason: StopReason, message: str) -> None:
        self.stop, self.stopped = reason, message

    @property
    def needs_a_person(self) -> bool:
        """Whether the pass stopped for a reason no retry will cure (a refused token)."""
        return self.stop is not None and self.stop.needs_a_person


class StopTarget(Exception):
    """The target cannot go on in this pass (token, rate limit, server down, lease lost)."""

    def __init__(self, reason: StopReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Interrupted(Exception):
    """newsbot is shutting down: send nothing more."""
