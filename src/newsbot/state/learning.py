"""What a target has learned about its server: its software and its counting rule.

A length error teaches a target that its server counts more than its profile
said. What was learned is stored with the target, so that a restart, another
process or the dry run compose with it: each target pays at most one length
error, ever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from newsbot.mastodon.profiles import Unit
from newsbot.state.schema import targets
from newsbot.times import epoch_seconds, from_epoch

ALL_UNITS: tuple[Unit, ...] = ("graphemes", "code_points", "utf16")


@dataclass(frozen=True, slots=True)
class Learned:
    """A counting rule taught by a length error: every unit, URLs in full too, one in hand."""

    units: tuple[Unit, ...] = ALL_UNITS
    urls_in_full: bool = True
    margin: int = 1

    def to_json(self) -> str:
        return json.dumps(
            {"units": list(self.units), "urls_in_full": self.urls_in_full, "margin": self.margin}
        )

    @classmethod
    def from_json(cls, text: str) -> Learned | None:
        try:
            data = json.loads(text)
            units = tuple(u for u in data["units"] if u in ALL_UNITS)
            return cls(units or ALL_UNITS, bool(data["urls_in_full"]), int(data["margin"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class Knowledge:
    """A target's stored knowledge of its server."""

    software: str | None
    learned: Learned | None
    length_errors: int
    stopped_since: datetime | None = None


class TargetKnowledge:
    """Reads and writes of what targets learned, over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, target: str) -> Knowledge:
        query = select(
            targets.c.software, targets.c.learned, targets.c.length_errors, targets.c.stopped_since
        ).where(targets.c.name == target)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return Knowledge(None, None, 0)
        learned = Learned.from_json(row.learned) if row.learned else None
        stopped = None if row.stopped_since is None else from_epoch(row.stopped_since)
        return Knowledge(row.software, learned, int(row.length_errors or 0), stopped)

    def record_software(self, target: str, software: str) -> None:
        self._set(target, software=software)

    def learn(self, target: str, learned: Learned) -> None:
        """Keep ``learned`` and count the length error that taught it."""
        errors = self.get(target).length_errors
        self._set(target, learned=learned.to_json(), length_errors=errors + 1)

    def record_stop(self, target: str, now: datetime | None) -> bool:
        """Remember since when the target is stopped (``None``: it runs); whether that changed."""
        before = self.get(target).stopped_since
        if (before is None) == (now is None):
            return False
        self._set(target, stopped_since=None if now is None else epoch_seconds(now))
        return True

    def _set(self, target: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(targets).where(targets.c.name == target).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(targets).values(name=target, **values))
