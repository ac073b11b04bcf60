"""Retry delays: pure arithmetic, no clock and no sleeping.

The Mastodon client never retries on its own; the caller decides when to try
again and asks this module how long to wait. Randomness is injected so that a
test (or a replay) gets the same delays from the same seed.
"""

from __future__ import annotations

import random
from datetime import datetime

DEFAULT_BASE = 1.0
"""Ceiling of the first delay, in seconds."""
DEFAULT_CAP = 300.0
"""No delay is longer than this, in seconds, however many attempts failed."""
_MAX_EXPONENT = 64  # 2**64 seconds is beyond any cap; avoids float overflow


def backoff(
    attempt: int, rng: random.Random, *, base: float = DEFAULT_BASE, cap: float = DEFAULT_CAP
) -> float:
    """Seconds to wait before retry number ``attempt`` (0, 1, 2, ...).

    Exponential backoff with *full jitter*: a uniform draw between 0 and
    ``min(cap, base * 2**attempt)``, so that many clients failing together do
    not retry together.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, not {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    ceiling = cap if attempt >= _MAX_EXPONENT else min(cap, base * 2.0**attempt)
    return rng.uniform(0.0, ceiling)


def delay_until(
    moment: datetime, now: datetime, rng: random.Random, *, max_jitter: float = 5.0
) -> float:
    """Seconds from ``now`` until ``moment`` (never negative), plus up to ``max_jitter``.

    For a rate limit that lifts at a known time: clients that were limited
    together should not all come back in the same second.
    """
    if max_jitter < 0:
        raise ValueError("max_jitter must not be negative")
    return max(0.0, (moment - now).total_seconds()) + rng.uniform(0.0, max_jitter)
