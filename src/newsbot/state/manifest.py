"""The output manifest: every file the build wrote into each output folder.

Stale files (the page of a removed article, the feed of a tag no article
carries any more, an image nothing refers to) are found by comparing what a
full build wrote with this list, so that only files newsbot wrote are ever
removed; anything an operator put into the folder stays.

Each folder has a list of its own, under the id its mark carries
(`newsbot.build.stamp.Mark`): several copies of newsbot may share one
database, each with its own folder, often at one path (a volume per
container). One list for them all was emptied whenever another copy built,
so a copy never removed the page of an article withdrawn meanwhile. A folder
no build has written for `KEPT_SECONDS` (a replaced container's volume) has
its list dropped, so the lists do not pile up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    exists,
    insert,
    select,
    update,
)

from newsbot.state.database import chunks
from newsbot.state.schema import (
    meta,
    output_files,
    output_folders,
    unwritten_files,
    unwritten_pages,
)

ROOT_KEY = "output_root"
"""Meta key of the one folder whose files the list held before lists were per folder
(rows of folder ``""``): that folder takes them when it is first marked."""

KEPT_SECONDS = 60 * 24 * 3600
"""How long the list of a folder no build writes is kept: a copy of newsbot stopped longer
starts with an empty list (its stale files stay; none of another folder's is removed)."""

CHUNK = 500


class OutputManifest:
    """Reads and writes of one folder's list over one engine."""

    def __init__(self, engine: Engine, folder: str) -> None:
        self.engine = engine
        self.folder = folder

    def belongs_to(self, conn: Connection, root: str, now: int) -> None:
        """Note the folder (at ``root``, resolved) as built ``now`` (epoch seconds); drop the
        lists of folders unbuilt for `KEPT_SECONDS`; hand it the list of before, if that
        was of ``root`` and this folder has none yet."""
        conn.execute(delete(output_folders).where(output_folders.c.folder == self.folder))
        conn.execute(insert(output_folders).values(folder=self.folder, built=now))
        old = select(output_folders.c.folder).where(output_folders.c.built < now - KEPT_SECONDS)
        conn.execute(delete(output_files).where(output_files.c.folder.in_(old)))
        conn.execute(delete(unwritten_pages).where(unwritten_pages.c.folder.in_(old)))
        conn.execute(delete(unwritten_files).where(unwritten_files.c.folder.in_(old)))
        conn.execute(delete(output_folders).where(output_folders.c.built < now - KEPT_SECONDS))
        legacy = conn.execute(select(meta.c.value).where(meta.c.key == ROOT_KEY)).scalar()
        if legacy is None:
            return
        mine = exists().where(output_files.c.folder == self.folder)
        if legacy == root and not conn.execute(select(mine)).scalar():
            adopt = update(output_files).where(output_files.c.folder == "")
            conn.execute(adopt.values(folder=self.folder))
        conn.execute(delete(output_files).where(output_files.c.folder == ""))
        conn.execute(delete(meta).where(meta.c.key == ROOT_KEY))

    def paths(self) -> set[str]:
        with self.engine.connect() as conn:
            query = select(output_files.c.path).where(output_files.c.folder == self.folder)
            return set(conn.execute(query).scalars())

    def paths_among(self, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` that a build wrote."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(paths, CHUNK):
                query = select(output_files.c.path).where(self._these(chunk))
                found.update(conn.execute(query).scalars())
        return found

    def add(self, conn: Connection, paths: Iterable[str]) -> None:
        """Note files as written (whether listed already or not)."""
        for chunk in chunks(sorted(set(paths)), CHUNK):
            conn.execute(delete(output_files).where(self._these(chunk)))
            rows = [{"folder": self.folder, "path": path} for path in chunk]
            conn.execute(insert(output_files), rows)

    def discard(self, conn: Connection, paths: Iterable[str]) -> None:
        for chunk in chunks(sorted(set(paths)), CHUNK):
            conn.execute(delete(output_files).where(self._these(chunk)))

    def _these(self, chunk: Sequence[str]) -> ColumnElement[bool]:
        return and_(output_files.c.folder == self.folder, output_files.c.path.in_(chunk))
