"""The output manifest: every file the build wrote into the output folder.

Stale files (the page of a removed article, the feed of a tag no article
carries any more, an image nothing refers to) are found by comparing what a
full build wrote with this list, so that only files newsbot wrote are ever
removed; anything an operator put into the folder stays. The list belongs to
one folder: pointed at another, newsbot knows none of its files as its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, delete, insert, select

from newsbot.state.database import chunks
from newsbot.state.schema import meta, output_files

ROOT_KEY = "output_root"

CHUNK = 500


class OutputManifest:
    """Reads and writes of the manifest over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def belongs_to(self, conn: Connection, root: str) -> None:
        """Make the list that of the folder ``root``: emptied if it was another folder's."""
        known = conn.execute(select(meta.c.value).where(meta.c.key == ROOT_KEY)).scalar()
        if known == root:
            return
        conn.execute(delete(output_files))
        conn.execute(delete(meta).where(meta.c.key == ROOT_KEY))
        conn.execute(insert(meta).values(key=ROOT_KEY, value=root))

    def paths(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(output_files.c.path)).scalars())

    def paths_among(self, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` that a build wrote."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(paths, CHUNK):
                query = select(output_files.c.path).where(output_files.c.path.in_(chunk))
                found.update(conn.execute(query).scalars())
        return found

    def add(self, conn: Connection, paths: Iterable[str]) -> None:
        """Note files as written (whether listed already or not)."""
        for chunk in chunks(sorted(set(paths)), CHUNK):
            conn.execute(delete(output_files).where(output_files.c.path.in_(chunk)))
            conn.execute(insert(output_files), [{"path": path} for path in chunk])

    def discard(self, conn: Connection, paths: Iterable[str]) -> None:
        for chunk in chunks(sorted(set(paths)), CHUNK):
            conn.execute(delete(output_files).where(output_files.c.path.in_(chunk)))
