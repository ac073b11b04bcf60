"""A suspect store: when the build and the publisher refuse to remove anything.

A store that is missing, unreadable, empty, or that lost more of its live
articles since the last good build than an editor plausibly removes at once,
is far more often a mistyped bind mount, a network share that is not mounted
or a swapped symlink than an intended mass withdrawal. Trusting it would wipe
the site and delete every post of the account. So the build keeps the last
good output and index, the publisher makes no edit and no delete, and the
verdict is kept in the state database (``meta``) for ``newsbot state``,
``/readyz`` and ``/metrics`` until a build finds the store healthy again, or
an operator confirms the removal (``newsbot build --confirm-removals``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, delete, insert, select

from newsbot.settings import StoreSettings
from newsbot.state.schema import meta

META_KEY = "store_suspect"

Kind = Literal["missing", "unreadable", "empty", "lost"]

CONFIRMABLE: tuple[Kind, ...] = ("empty", "lost")
"""A store that is there and readable may really have lost its articles; the others may not."""


@dataclass(frozen=True, slots=True)
class Suspect:
    """Why the store is not trusted, and since when (ISO 8601, UTC)."""

    kind: Kind
    detail: str
    live: int
    lost: int
    since: str

    @property
    def confirmable(self) -> bool:
        return self.kind in CONFIRMABLE

    def message(self) -> str:
        """What happened and what to do, in one line for the log and the command line."""
        kept = "the last good output is kept and no post is edited or deleted"
        if self.confirmable:
            todo = (
                "if the store is not where it should be, fix the mount or "
                "store.content_dir; if the articles were removed on purpose, run "
                "`newsbot build --confirm-removals`"
            )
        else:
            todo = "fix the mount, the path (store.content_dir) or the permissions"
        return f"the article store is suspect: {self.detail}; {kept}; {todo}"

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "confirmable": self.confirmable, "message": self.message()}


def allowed_removals(live: int, settings: StoreSettings) -> int:
    """How many live articles one build may lose without the store becoming suspect."""
    return max(settings.removals_allowed_min, math.floor(live * settings.removals_allowed_share))


def judge(
    *,
    live: int,
    gone: Collection[str],
    present: int,
    unreadable: Collection[str],
    settings: StoreSettings,
    since: str,
) -> Suspect | None:
    """The verdict on a store that could be walked.

    ``live`` articles at the last good build, of which the paths ``gone`` have
    no file any more; ``present`` article files now; ``unreadable`` folders of
    the store that could not be listed. A store whose last good build had no
    live article is never suspect: there is nothing to lose.
    """
    if not live:
        return None
    hidden = [p for p in gone if any(p.startswith(f"{u}/") or u == "." for u in unreadable)]
    if hidden:
        folders = ", ".join(sorted(unreadable)[:3])
        detail = f"cannot read {folders}, which held {len(hidden)} live article(s)"
        return Suspect("unreadable", detail, live, len(gone), since)
    if not present:
        detail = f"it holds no article, where the last good build had {live} live"
        return Suspect("empty", detail, live, len(gone), since)
    allowed = allowed_removals(live, settings)
    if len(gone) > allowed:
        share = 100 * len(gone) / live
        detail = (
            f"{len(gone)} of {live} live articles ({share:.0f} %) are gone since the last "
            f"good build (at most {allowed} may go at once)"
        )
        return Suspect("lost", detail, live, len(gone), since)
    return None


def missing(error: str, live: int, since: str) -> Suspect:
    """The store folder itself cannot be used (gone, not a folder, not readable)."""
    return Suspect("missing", error, live, live, since)


def load(engine: Engine) -> Suspect | None:
    """The verdict of the last build, or None when the store was healthy."""
    with engine.connect() as conn:
        text = conn.execute(select(meta.c.value).where(meta.c.key == META_KEY)).scalar()
    if not text:
        return None
    data = json.loads(text)
    return Suspect(data["kind"], data["detail"], data["live"], data["lost"], data["since"])


def save(conn: Connection, suspect: Suspect | None) -> None:
    """Remember the verdict of this build (None: the store is healthy)."""
    conn.execute(delete(meta).where(meta.c.key == META_KEY))
    if suspect is not None:
        conn.execute(insert(meta).values(key=META_KEY, value=json.dumps(asdict(suspect))))
