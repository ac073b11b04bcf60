"""Where a URL path lands in the output folder: a file, a redirect to a folder's URL, or nowhere.

This is the only place that turns request paths into file paths, so it is
the one place that keeps requests inside the folder. The path arrives
percent-decoded (``%2e%2e`` is already ``..``), and every segment is checked
before any is joined: no empty segment (``//etc``), no ``.`` or ``..``, no
hidden name (the builder's temporary files start with a dot), no NUL or
backslash. The result is then resolved, symlinks included, and must still be
inside the resolved folder, so a link pointing out of it is not followed.

A folder is served through its ``index.html`` when its URL ends with ``/``;
without the slash it is redirected to it, so that relative links in the page
resolve against the folder. A folder without an index is not found, with or
without the slash: nothing ever lists a folder, or says that one is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsbot.layout import INDEX

FORBIDDEN_IN_SEGMENT = ("\x00", "\\")


@dataclass(frozen=True, slots=True)
class FileAt:
    """A request that lands on a file (not yet opened: it may be gone by then)."""

    path: Path


@dataclass(frozen=True, slots=True)
class FolderAt:
    """A request for a folder without its trailing slash."""


Place = FileAt | FolderAt | None
"""Where a request path lands; None is not found."""


def locate(root: Path, url_path: str) -> Place:
    """Where ``url_path`` (decoded, without its leading ``/``) lands under ``root``."""
    segments = url_path.split("/")
    as_folder = segments[-1] == ""
    names = segments[:-1] if as_folder else segments
    if not all(_safe_segment(name) for name in names):
        return None
    try:
        return _land(root.resolve(), names, as_folder)
    except (OSError, RuntimeError):  # a name too long, a symlink loop: nothing to serve
        return None


def _land(base: Path, names: list[str], as_folder: bool) -> Place:
    target = _inside(base, base.joinpath(*names))
    if target is None:
        return None
    if target.is_dir():
        index = _inside(base, target / INDEX)
        if index is None or not index.is_file():
            return None
        return FileAt(index) if as_folder else FolderAt()
    if as_folder and names:
        return None
    return FileAt(target)


def _safe_segment(name: str) -> bool:
    """A name that can only mean a child of the current folder, and not a hidden one."""
    return (
        bool(name) and not name.startswith(".") and not any(c in name for c in FORBIDDEN_IN_SEGMENT)
    )


def _inside(base: Path, path: Path) -> Path | None:
    """``path`` with every symlink resolved, if that is still inside ``base``."""
    resolved = path.resolve()
    return resolved if resolved.is_relative_to(base) else None
