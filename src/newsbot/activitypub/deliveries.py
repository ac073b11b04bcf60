"""Delivering the actor's activities: Mastodon's retry schedule and the order rows are queued.

The rows themselves (one per (activity, inbox), claimed under a lease,
finished in batches, each host's breaker) live in
:mod:`newsbot.state.ap_deliveries`; this module adds what ActivityPub asks
of them. Retries follow Mastodon's own schedule (Sidekiq's): try ``n`` waits
``n**4 + 15 + rand(10)*(n+1)`` seconds, so 16 tries span about two days; a
``Retry-After`` is honoured when later. At-least-once: a receiver may see a
request twice, and de-duplicates by the activity's id, which never changes.
The inbox retries the handling of a received activity on the same schedule
(:mod:`newsbot.activitypub.inbox`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from newsbot.activitypub.followers import host_of
from newsbot.state.ap_deliveries import Claimed, DeliveryRows, Outcome
from newsbot.state.database import Engine
from newsbot.state.owner_files import OwnerFiles

__all__ = ["Claimed", "DeliveryStore", "Outcome", "next_try", "retry_after", "retry_delay"]


def retry_delay(tries: int, rng: random.Random) -> float:
    """Seconds before the next try after ``tries`` failed ones (Mastodon's Sidekiq schedule)."""
    return float(tries**4 + 15 + rng.randrange(10) * (tries + 1))


def next_try(tries: int, now: datetime, rng: random.Random, later: datetime | None) -> datetime:
    """When to try again after ``tries`` failed tries: Mastodon's delay, or ``later`` if later."""
    at = now + timedelta(seconds=retry_delay(tries, rng))
    return later if later is not None and later > at else at


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """The moment a ``Retry-After`` header names (seconds, or an HTTP date), if it names one."""
    if not value:
        return None
    if value.strip().isdigit():
        return now + timedelta(seconds=int(value.strip()))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class DeliveryStore(DeliveryRows):
    def __init__(self, engine: Engine, *, breaker_failures: int = 5,
                 dead_after: timedelta = timedelta(days=7), max_tries: int = 16,
                 rng: random.Random | None = None,
                 files: OwnerFiles | None = None) -> None:  # fmt: skip
        super().__init__(engine, breaker_failures=breaker_failures, dead_after=dead_after,
                         max_tries=max_tries, files=files)  # fmt: skip
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    def finish(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Record a batch of outcomes; a retried row is due after Mastodon's delay."""
        self.record(outcomes, now, lambda outcome: self._next_try(outcome, now))

    def _next_try(self, outcome: Outcome, now: datetime) -> datetime:
        return next_try(outcome.claimed.tries, now, self.rng, outcome.retry_after)

    @staticmethod
    def enqueue(conn: Any, activity_id: str, inboxes: Iterable[str], now: datetime) -> int:
        """Add one row per inbox (inside the caller's transaction, with the activity)."""
        ordered = _round_robin(dict.fromkeys(inboxes))
        return DeliveryRows.add(conn, activity_id, [(i, host_of(i)) for i in ordered], now)


def _round_robin(inboxes: Iterable[str]) -> list[str]:
    """The inboxes host by host in turn, so that rows claimed in id order span many hosts.

    Claimed in the order followers were stored, a batch would hold mostly one
    host's inboxes, all waiting for that host's few connections (and a slow
    host would hold up the batch).
    """
    by_host: dict[str, list[str]] = {}
    for inbox in inboxes:
        by_host.setdefault(host_of(inbox), []).append(inbox)
    queues = list(by_host.values())
    ordered: list[str] = []
    for turn in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[turn] for q in queues if turn < len(q))
    return ordered
