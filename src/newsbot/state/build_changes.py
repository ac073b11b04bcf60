"""What each build changed in the output, kept a while, so that a folder a few builds behind
catches up with those changes alone.

Several copies of newsbot on one database each write an output folder of
their own, and take turns to build: after a change in the store, one copy
reads it and the other builds next with nothing to read. A folder whose mark
(`newsbot.build.stamp.Mark`) names an older build than the last must get
what the builds since then changed; without a record of it, it was written
whole, so that with two copies running every build of each was a full one.
Each build records here the feeds, pages, removed pages and images it
changed (whatever folder it wrote); a folder behind by builds that are all
recorded, none of them a full one, writes their union. A full build (new
settings or code, a build that stopped half-way), or one past `KEPT`, has no
record, and a folder behind it is written whole as before.

Kept in the ``meta`` table, one row per build (``changes:<generation>``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, delete, insert, select

from newsbot.state.index import FeedKey
from newsbot.state.schema import meta

KEPT = 100
"""Builds whose changes are kept: a folder further behind is written whole."""
LARGEST = 20_000
"""Pages past which a build's changes are not recorded (a folder behind it is written whole)."""
_PREFIX = "changes:"


@dataclass
class BuildChanges:
    """The output a build changed, whatever folder it wrote."""

    feeds: set[FeedKey] = field(default_factory=set)
    pages: set[str] = field(default_factory=set)
    """Store paths whose article pages were written."""
    gone: set[str] = field(default_factory=set)
    """Output files of pages deleted unless written again."""
    media: set[str] = field(default_factory=set)
    """Image URLs that versions replaced or removed referred to."""
    months: bool = False
    """Every month of the archive was written again (an article left)."""

    def dumps(self) -> str:
        return json.dumps(
            {
                "feeds": sorted(self.feeds),
                "pages": sorted(self.pages),
                "gone": sorted(self.gone),
                "media": sorted(self.media),
                "months": self.months,
            }
        )

    @classmethod
    def loads(cls, text: str) -> BuildChanges | None:
        """The changes in ``text``; None for anything else (another version's, damaged)."""
        try:
            data = json.loads(text)
            return cls(
                {(str(kind), str(slug)) for kind, slug in data["feeds"]},
                set(data["pages"]),
                set(data["gone"]),
                set(data["media"]),
                bool(data["months"]),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def add(self, other: BuildChanges) -> None:
        self.feeds |= other.feeds
        self.pages |= other.pages
        self.gone |= other.gone
        self.media |= other.media
        self.months = self.months or other.months


def record(conn: Connection, generation: int, changes: BuildChanges | None) -> None:
    """Keep what build ``generation`` changed (None: everything, nothing is kept), and forget
    the build `KEPT` before it."""
    conn.execute(delete(meta).where(meta.c.key.in_(_keys([generation, generation - KEPT]))))
    if changes is not None and len(changes.pages) <= LARGEST:
        conn.execute(insert(meta).values(key=_key(generation), value=changes.dumps()))


def since(engine: Engine, built: int, last: int) -> BuildChanges | None:
    """The union of the changes of builds ``built + 1`` to ``last``; None when one of them
    is not known (a full build, one too old, one of an older version)."""
    wanted = range(built + 1, last + 1)
    if not 0 < len(wanted) <= KEPT:
        return None
    with engine.connect() as conn:
        found = conn.execute(select(meta.c.key, meta.c.value).where(meta.c.key.in_(_keys(wanted))))
        rows: dict[str, str] = {row.key: row.value for row in found}
    union = BuildChanges()
    for generation in wanted:
        text = rows.get(_key(generation))
        changes = None if text is None else BuildChanges.loads(text)
        if changes is None:
            return None
        union.add(changes)
    return union


def _key(generation: int) -> str:
    return f"{_PREFIX}{generation}"


def _keys(generations: Iterable[int]) -> list[str]:
    return [_key(generation) for generation in generations]
