"""Clocks and instants stored as numbers: one definition of each.

Everything that needs the time takes a :data:`Clock` (tests pass a fixed one);
:func:`utc_now` is the default. The state database stores instants as whole
seconds since the Unix epoch, which SQLite and PostgreSQL compare alike and
which no time zone setting of either can shift.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware datetime (UTC unless said otherwise)."""


def utc_now() -> datetime:
    """The wall clock, in UTC: the default :data:`Clock`."""
    return datetime.now(UTC)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (a naive ``moment`` is taken as local time, as Python does)."""
    return int(moment.astimezone(UTC).timestamp())


def from_epoch(seconds: float) -> datetime:
    """The UTC instant ``seconds`` after the epoch (the inverse of :func:`epoch_seconds`)."""
    return datetime.fromtimestamp(seconds, UTC)
