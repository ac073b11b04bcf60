"""The output folder: files replaced atomically, and only when their bytes change.

A reader fetching a feed while it is rewritten gets the old file or the new
one, never half of one (write to a temporary file in the same folder, then
rename). Unchanged files keep their modification time, so conditional GETs
keep answering 304. It remembers which files one build wrote (or found
unchanged) and removed, for the build's manifest of its own files.

A file written with a `Retry` (a feed, a navigation file, a copied image) that
cannot be written is logged and noted (`Output.unwritten`) rather than raised:
one file's permission or a stray file in its way costs that file, and the build
lists it for the next one (`newsbot.state.unwritten.files`).

A file that cannot be removed (a withdrawn article's page, an emptied feed set's
file, a stale file) is contained the same way: logged, noted with
`Retry.removal`, and removed by a later build. It stays in the folder's manifest
(only files removed leave it), so it is still the build's own to remove.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from newsbot.errors import OutputError

if TYPE_CHECKING:
    from newsbot.state.unwritten import Retry

log = logging.getLogger(__name__)

COPY_BLOCK = 1 << 20
"""Bytes copied at a time by `Output.copy`."""
FOLDERS_KNOWN = 1024
"""Folders remembered as existing: a page has a folder of its own, so remembering every one
grew with the store (a Path each) while only the folders written to again (feeds, images)
save a ``mkdir``."""


class Output:
    """Writes under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: set[str] = set()
        """Files written, or found already as they should be, since `begin`."""
        self.removed: set[str] = set()
        """Files removed since `begin`."""
        self.failed: set[str] = set()
        """Files that could not be written, or removed, since `begin` (their step went on
        without them)."""
        self.unwritten: dict[str, tuple[Retry, str]] = {}
        """Of `failed`, those written with a `Retry`, and those not removed: what brings (or
        removes) each, and why it was not written or removed."""
        self._folders: set[str] = set()
        """Folders known to exist (one ``mkdir`` each rather than one per file written);
        forgotten past `FOLDERS_KNOWN`."""

    def begin(self) -> None:
        """Start a build: forget which files the last one wrote and removed."""
        self.written = set()
        self.removed = set()
        self.failed = set()
        self.unwritten = {}
        self._folders = set()  # an operator may have removed some between builds

    def keep(self, rel: str) -> None:
        """Note a file put in place by other means (a copied image) as written by this build.

        A name that could leave the folder is not noted: it is never ours to remove.
        """
        try:
            self._path(rel)
        except OutputError:
            return
        self.written.add(rel)
        self.removed.discard(rel)

    def adopt(
        self,
        written: Iterable[str],
        removed: Iterable[str] = (),
        failed: Iterable[str] = (),
        unwritten: Mapping[str, tuple[Retry, str]] | None = None,
    ) -> None:
        """Note files that another process of this build wrote, removed or failed to write
        (see `newsbot.build.parallel`)."""
        for name in written:
            self.keep(name)
        for name in removed:
            self.written.discard(name)
            self.removed.add(name)
        self.failed.update(failed)
        if unwritten:
            self.failed.update(unwritten)
            self.unwritten.update(unwritten)

    def unwritten_since(self, before: Mapping[str, object]) -> dict[str, tuple[Retry, str]]:
        """The files noted unwritten that ``before`` (an earlier copy of `unwritten`) lacks:
        what one process's share of a step adds."""
        return {name: why for name, why in self.unwritten.items() if name not in before}

    def check_writable(self) -> None:
        """Fail early, with a clear message, if the folder cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as exc:
            raise OutputError(
                f"the output folder {self.root} is not writable: {exc.strerror} "
                "(set feeds.output_dir to a folder the service's user can write to)"
            ) from None

    def write(self, rel: str, data: bytes, retry: Retry | None = None) -> bool:
        """Replace ``rel`` with ``data``; returns whether anything changed.

        With ``retry``, a file that cannot be written is noted (`unwritten`), not raised.
        """
        target = self._path(rel)
        self.written.add(rel)
        self.removed.discard(rel)
        try:
            if target.read_bytes() == data:
                return False
        except OSError:
            pass
        return self._put(rel, target, lambda handle: handle.write(data), retry)

    def copy(self, rel: str, source: BinaryIO, retry: Retry | None = None) -> None:
        """Replace ``rel`` with what ``source`` holds, a block at a time: an image of the
        store may be any size, and read whole it would be the build's memory. ``retry``:
        as for `write`."""
        target = self._path(rel)
        self.written.add(rel)
        self.removed.discard(rel)
        self._put(rel, target, lambda handle: shutil.copyfileobj(source, handle, COPY_BLOCK), retry)

    def _put(
        self, rel: str, target: Path, fill: Callable[[BinaryIO], object], retry: Retry | None
    ) -> bool:
        """`_replace`; with ``retry``, a failure is logged and noted, and False returned.

        The file stays among those written: what an earlier build left there is the
        build's still, never stale.
        """
        try:
            self._replace(target, fill)
        except OutputError as exc:
            if retry is None:
                raise
            log.error("output file not written: %s (the next build tries again)", exc)
            self.failed.add(rel)
            self.unwritten[rel] = (retry, str(exc))
            return False
        return True

    def _replace(self, target: Path, fill: Callable[[BinaryIO], object]) -> None:
        """Write ``target`` through a temporary file ``fill`` writes, renamed over it."""
        try:
            folder = target.parent
            if str(folder) not in self._folders:
                folder.mkdir(parents=True, exist_ok=True)
                if len(self._folders) >= FOLDERS_KNOWN:
                    self._folders.clear()
                self._folders.add(str(folder))
            fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(fd, 0o644)
                    fill(handle)
                # No fsync: readers need the rename to be atomic, not the file to be on
                # disk before it; a crash at worst leaves an old or empty file that the
                # next build, finding it different, writes again.
                Path(temp).replace(target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None

    def remove(self, rel: str) -> bool:
        """Delete ``rel`` if it exists, and its folders left empty; returns whether it did.

        A file that cannot be removed (its folder read-only, a folder where the file was)
        is logged and noted (`unwritten`, with `Retry.removal`), not raised: one stuck
        file must not stop every other update. It is not noted as removed, so the
        manifest keeps it as the build's own.
        """
        target = self._path(rel)
        self.written.discard(rel)
        try:
            target.unlink()
        except FileNotFoundError:
            self.removed.add(rel)
            return False
        except OSError as exc:
            from newsbot.state.unwritten import Retry  # only when a removal fails

            why = f"cannot remove {target}: {exc.strerror}"
            log.error("output file not removed: %s (the next build tries again)", why)
            self.failed.add(rel)
            self.unwritten[rel] = (Retry.removal(), why)
            return False
        self.removed.add(rel)
        self._drop_empty_folders(target.parent)
        return True

    def _drop_empty_folders(self, folder: Path) -> None:
        """Remove ``folder`` and its parents up to the root while they are empty.

        A folder holding anything else (a file an operator put there) stays.
        """
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                return
            self._folders.discard(str(folder))
            folder = folder.parent

    def exists(self, rel: str) -> bool:
        return self._path(rel).is_file()

    def _path(self, rel: str) -> Path:
        # Names come from slugs and ids, never from raw input, but an id may hold "/":
        # refuse anything that could climb out of the folder. Checked by name, not by
        # resolving each path, which would cost a system call per file on a cold build.
        parts = rel.split("/")
        if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts[:-1]):
            raise OutputError(f"refusing to write {rel!r} outside the output folder")
        if parts[-1] in ("", ".", ".."):
            raise OutputError(f"refusing to write {rel!r}: not a file name")
        return self.root / rel
