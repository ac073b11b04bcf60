"""The build stamp in the state database, read without SQLAlchemy.

A build that left nothing to do stores a stamp (`newsbot.build.stamp`) in the
``meta`` table, in the same transaction as everything else it stored. The
next build reads it back before anything else, and when the store has not
changed it ends there: so this read must cost less than importing the state
layer (SQLAlchemy alone is ~0.2 s of a ~0.5 s nothing-changed build). Hence
the standard library's ``sqlite3``, on SQLite files only: PostgreSQL has no
driver in the standard library, and there the build always takes its full
path.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

STAMP = "build_stamp"
"""The ``meta`` key of the stamp."""


def read_stamp(database: Path) -> str | None:
    """The stamp stored in the SQLite file ``database``; None when there is none or no file.

    Opened read-write but never created (``mode=rw``): a missing file is not
    made empty here, and a reader of a WAL database may need to write its
    shared-memory index. A locked, damaged or foreign file reads as no stamp:
    the full build that follows says what is wrong with it.
    """
    if not database.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=rw", uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout=1000")
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (STAMP,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])
