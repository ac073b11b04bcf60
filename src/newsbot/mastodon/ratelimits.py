"""When a rate limit lifts, read from a 429's headers.

Servers say it three ways: ``Retry-After`` (seconds or an HTTP date),
``X-RateLimit-Reset`` as an ISO 8601 time (Mastodon, with microseconds), or
``X-RateLimit-Reset`` as a Unix time or a number of seconds. Whatever they
say, the answer lies between now and a cap, so that a wrong header can
neither hammer the server nor stop a target for days.

A time in those headers is read on the server's clock, which may be off by
minutes or hours: it is measured from the answer's own ``Date`` header (the
same clock), and only without one from ours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Final

DEFAULT_RATE_LIMIT_WAIT: Final = timedelta(seconds=60)
"""How long to wait after a 429 that says nothing about when the limit lifts."""
MAX_RATE_LIMIT_WAIT: Final = timedelta(hours=1)
"""A 429 never makes the caller wait longer than this, whatever the headers say."""
_DELTA_THRESHOLD = 1_000_000_000  # a "Reset" below this is seconds from now, not a Unix time
_DATE_RESOLUTION = timedelta(seconds=2)
"""``Date`` has whole seconds: a server clock closer to ours than this is taken as ours,
which is finer."""


def retry_at_from_headers(
    headers: Mapping[str, str], now: datetime, *, cap: timedelta = MAX_RATE_LIMIT_WAIT
) -> datetime:
    """When a rate limit lifts, from a 429's headers, between ``now`` and ``now + cap``.

    ``Retry-After`` (seconds or an HTTP date) wins where present; otherwise
    ``X-RateLimit-Reset``: an ISO 8601 time (Mastodon, with microseconds) or a
    Unix time in seconds (a small number is taken as seconds from now, as
    some servers send it); otherwise a minute from now. A time is the
    server's: the wait is its distance from the server's ``Date``, where the
    answer has one, so that a server clock hours off neither stops the
    target for the cap nor has it asked again at once.
    """
    server_now = _server_now(headers.get("Date"), now)
    lifts = _retry_after(headers.get("Retry-After"), server_now) or _reset(
        headers.get("X-RateLimit-Reset"), server_now
    )
    wait = DEFAULT_RATE_LIMIT_WAIT if lifts is None else lifts - server_now
    return now + min(max(wait, timedelta(0)), cap)


def _server_now(date: str | None, now: datetime) -> datetime:
    """The time by the server's clock, from its ``Date`` header; ``now`` without one."""
    moment = _http_date(date)
    if moment is None or abs(moment - now) < _DATE_RESOLUTION:
        return now
    return moment


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    seconds = _number(value)
    if seconds is not None:
        return now + timedelta(seconds=seconds)
    return _http_date(value)


def _http_date(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return _aware(moment)


def _reset(value: str | None, now: datetime) -> datetime | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    number = _number(value)
    if number is not None:
        if number < _DELTA_THRESHOLD:
            return now + timedelta(seconds=number)
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        return _aware(datetime.fromisoformat(value))
    except ValueError:
        return None


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
