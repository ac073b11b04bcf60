"""What a complete build leaves behind, so that the next one sees at a glance that nothing changed.

A build with nothing changed must still find out that nothing changed. The
state database knows, but opening it through the state layer costs most of
such a build: importing SQLAlchemy and the state modules takes longer than
scanning 10,000 files. So a build that ended with nothing left to do (no
problem in the store, every related list stored) stores a `Stamp` of what
its output was made from: the settings' fingerprint, the output folder, a
digest of the store's listing (each file's path, size and modification time,
the same facts a build compares) and the moment the next scheduled article
comes due (or a revision date still to come passes). `compare` checks a fresh
scan with it, reading it with the standard library (`newsbot.state.stamp`);
when everything matches, the output is already what a build would write, and
the build ends there.

Any doubt takes the full path: no stamp, a stamp of other settings or another
output folder, a problem in the scan, a changed listing, a missing site index,
an output folder whose `mark` is not the stamp's, a PostgreSQL state.

The output folder carries a `Mark` of its own: its id, and the state and the
build it was last written from completely. Several copies of newsbot may share one
database, each with its own output folder (a volume per container, often at
the same path): the database then knows an article that another copy read,
and only the mark tells a folder that it has not been written since.

A full build drops the stamp in its first transaction and stores a new one in
its last, only if it ended complete; so a build that fails half-way leaves
none.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from newsbot import quiet
from newsbot.errors import StoreError
from newsbot.layout import INDEX
from newsbot.settings import Settings
from newsbot.state.stamp import read_stamp
from newsbot.store.scan import FileStat, Scanned, walk
from newsbot.times import epoch_seconds

__all__ = ["MARK", "Mark", "Stamp", "compare", "fingerprint", "listing", "read_mark", "write_mark"]

MARK = ".newsbot-build"
"""The output folder's mark (`read_mark`): hidden, so the web server never serves it."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a complete build's output was made from."""

    fingerprint: str
    """Of the settings that shape the output (`fingerprint`)."""
    output: str
    """The output folder, resolved."""
    store: str
    """Digest of the store's listing (`listing`)."""
    due: int | None
    """Epoch seconds at which the next scheduled article appears or revision date passes;
    None when none waits."""
    mark: str
    """The output folder's mark once that build ended (`Mark.dumps`)."""

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Stamp | None:
        """The stamp in ``text``; None for anything else (another version's, a damaged one)."""
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None


PACKAGE = Path(quiet.PACKAGE)
"""The installed code, which shapes the output as much as the settings do."""


def fingerprint(settings: Settings, code: Path = PACKAGE) -> str:
    """What the output depends on besides the articles: any change means a full rebuild.

    The code counts by its content (`code_digest`), not by its version number:
    an upgrade that reads or renders articles differently (a date form now
    understood, an id rule, a feed fix) must reach the articles already
    stored, and a version number is not bumped for each such change.
    """
    shape = {
        "code": code_digest(code),
        "site": settings.site.model_dump(mode="json"),
        "feeds": settings.feeds.model_dump(mode="json", exclude={"output_dir"}),
        "max_file_bytes": settings.store.max_file_bytes,
        "root": str(settings.store.content_dir.resolve()),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


code_digest = functools.cache(quiet.code_digest)
"""`newsbot.quiet.code_digest`, kept for the process: installed code does not change under
a running one."""


def listing(files: Sequence[FileStat]) -> str:
    """Digest of the store as a scan sees it: a file added, removed, resized or touched
    changes it."""
    digest = hashlib.sha256()
    for stat in files:
        digest.update(f"{stat.path}\0{stat.size}\0{stat.mtime_ns}\n".encode())
    return digest.hexdigest()


def output_folder(settings: Settings) -> str:
    return str(settings.feeds.output_dir.resolve())


def compare(settings: Settings, now: datetime) -> tuple[int | None, Scanned | None]:
    """How many files the store holds, when the output is already what a build would write
    ``now`` (None means: build), and the scan of the store it made (None when it made none).

    Reads the stamp and scans the store; imports nothing of the state layer
    beyond `newsbot.state.stamp`.

    The build that follows a "build" answer takes that scan rather than
    scanning again: a second scan cost as much as the first (50-100 ms for
    10,000 files), a tenth of a build that adds one article.
    """
    if settings.state.database_url is not None:
        return None, None
    text = read_stamp(settings.state.sqlite_file)
    stamp = None if text is None else Stamp.loads(text)
    if stamp is None or stamp.fingerprint != fingerprint(settings):
        return None, None
    root = Path(stamp.output)
    if stamp.output != output_folder(settings) or not (root / INDEX).is_file():
        return None, None
    mark = read_mark(root)
    if mark is None or mark.dumps() != stamp.mark:
        return None, None
    if stamp.due is not None and epoch_seconds(now) >= stamp.due:
        return None, None
    try:
        scanned = walk(settings.store.content_dir)
    except StoreError:
        return None, None
    files, problems = scanned
    if problems or listing(files) != stamp.store:
        return None, scanned
    return len(files), scanned


@dataclass(frozen=True, slots=True)
class Mark:
    """The output folder's mark: which folder it is, and what it was last written from."""

    folder: str
    """The folder's own id, made when newsbot first writes it: its list of files in the
    state (`newsbot.state.manifest`) goes by it, whatever path the folder is mounted at."""
    state: str | None = None
    """The database that last wrote the folder whole (`newsbot.state.index.IDENTITY`);
    None before any build did."""
    generation: int = 0
    """That build (the ``generation`` meta key it left)."""

    def built_by(self, state: str, generation: int) -> bool:
        """Whether build ``generation`` of database ``state`` wrote the folder last."""
        return self.state == state and self.generation == generation

    def dumps(self) -> str:
        return (
            self.folder if self.state is None else f"{self.folder} {self.state} {self.generation}"
        )

    @classmethod
    def loads(cls, text: str) -> Mark | None:
        """The mark in ``text``; None for anything else (damaged, or not newsbot's)."""
        folder, *built = text.split()
        if not folder.isalnum() or not folder.isascii() or len(folder) > 32:
            return None
        if len(built) != 2 or not built[1].isdigit():
            return cls(folder)  # the folder is known; what wrote it is not
        return cls(folder, built[0], int(built[1]))


def read_mark(root: Path) -> Mark | None:
    """The mark of the output folder ``root`` (`write_mark`); None when it has none (never
    written by this version) or it cannot be read.

    A build compares it with its database: a folder whose mark names another database
    or an older build may lag behind what the database knows, and the build writes all
    of it (unchanged bytes are left alone).
    """
    try:
        return Mark.loads((root / MARK).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def write_mark(root: Path, mark: Mark) -> None:
    """Replace the folder's mark atomically (a copy reading it meanwhile sees the old one).

    Raises OSError: the caller counts the folder as unfinished.
    """
    fd, temp = tempfile.mkstemp(dir=root, prefix=f"{MARK}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{mark.dumps()}\n")
        Path(temp).replace(root / MARK)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
