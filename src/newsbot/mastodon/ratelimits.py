"""When a rate limit lifts, read from a 429's headers.

Servers say it three ways: ``Retry-After`` (seconds or an HTTP date),
``X-RateLimit-Reset`` as an ISO 8601 time (Mastodon, with microseconds), or
``X-RateLimit-Reset`` as a Unix time or a number of seconds. Whatever they
say, the answer lies between now and a cap, so that a wrong header can
neither hammer the server nor stop a target for days.
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


def retry_at_from_headers(
    headers: Mapping[str, str], now: datetime, *, cap: timedelta = MAX_RATE_LIMIT_WAIT
) -> datetime:
    """When a rate limit lifts, from a 429's headers, between ``now`` and ``now + cap``.

    ``Retry-After`` (seconds or an HTTP date) wins where present; otherwise
    ``X-RateLimit-Reset``: an ISO 8601 time (Mastodon, with microseconds) or a
    Unix time in seconds (a small number is taken as seconds from now, as
    some servers send it); otherwise a minute from now.
    """
    retry_at = _retry_after(headers.get("Retry-After"), now) or _reset(
        headers.get("X-RateLimit-Reset"), now
    )
    if retry_at is None:
        retry_at = now + DEFAULT_RATE_LIMIT_WAIT
    return min(max(retry_at, now), now + cap)


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    seconds = _number(value)
    if seconds is not None:
        return now + timedelta(seconds=seconds)
    try:
        moment = parsedate_to_datetime(value)
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
