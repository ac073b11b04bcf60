"""The output folder: files replaced atomically, and only when their bytes change.

A reader fetching a feed while it is rewritten gets the old file or the new
one, never half of one (write to a temporary file in the same folder, then
rename). Unchanged files keep their modification time, so conditional GETs
keep answering 304.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from newsbot.errors import OutputError


class Output:
    """Writes under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        """Fail early, with a clear message, if the folder cannot be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as exc:
            raise OutputError(
                f"the output folder {self.root} is not writable: {exc.strerror}"
            ) from None

    def write(self, rel: str, data: bytes) -> bool:
        """Replace ``rel`` with ``data``; returns whether anything changed."""
        target = self._path(rel)
        try:
            if target.read_bytes() == data:
                return False
        except OSError:
            pass
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                Path(temp).chmod(0o644)
                Path(temp).replace(target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
        return True

    def remove(self, rel: str) -> bool:
        """Delete ``rel`` if it exists; returns whether it did."""
        target = self._path(rel)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise OutputError(f"cannot remove {target}: {exc.strerror}") from None
        return True

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
