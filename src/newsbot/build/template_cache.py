"""Compiled page templates kept in the state folder, so a build does not compile them again.

Jinja turns each template into Python code before its first page; a one-shot
``newsbot build`` paid that (~15 ms for the package's templates) at every run.
Jinja's `FileSystemBytecodeCache` stores the compiled code and checks it
against the template's source, but not against the environment that compiled
it (its options, newsbot's filters) nor against Jinja's own version, both of
which shape the code. So the cache lives in a folder named after the installed
package's digest (`newsbot.build.stamp.code_digest`, the one a build's
fingerprint holds) and Jinja's version: after an upgrade of either, a build
starts a new folder and removes the others, and compiled code of an older
package is never read.

Only for SQLite state: its data folder is newsbot's own. With PostgreSQL the
data folder may not exist (a read-only container), and the templates are
compiled at each start as before.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import jinja2
from jinja2 import BytecodeCache, FileSystemBytecodeCache
from jinja2.bccache import Bucket

__all__ = ["FOLDER", "bytecode_cache", "cache_folder"]

log = logging.getLogger(__name__)

FOLDER = "templates"
"""Under the state's data folder: one folder per package digest and Jinja version."""


def cache_folder(data_dir: Path, code: str) -> Path:
    """Where the templates compiled by the package of digest ``code`` are kept."""
    key = hashlib.sha256(f"{code}\0{jinja2.__version__}".encode()).hexdigest()[:16]
    return data_dir / FOLDER / key


def bytecode_cache(data_dir: Path, code: str) -> BytecodeCache | None:
    """The cache of the package of digest ``code``; the folders of other packages removed.

    None when the folder cannot be made: the templates are then compiled in memory,
    as without a cache.
    """
    folder = cache_folder(data_dir, code)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for other in folder.parent.iterdir():
            if other != folder:
                shutil.rmtree(other, ignore_errors=True)
    except OSError as exc:
        log.debug("templates compiled at each build: %s: %s", folder, exc.strerror)
        return None
    return _KeptIfWritable(str(folder))


class _KeptIfWritable(FileSystemBytecodeCache):
    """Jinja's cache, whose failure to keep a compiled template costs only the keeping: a
    full disk, or another package's build removing this folder (two versions on one data
    folder during an upgrade), must not fail the page."""

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("compiled template not kept: %s", exc.strerror)
