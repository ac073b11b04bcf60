"""Walking the store: which article files exist, how big, how recent.

Only metadata is read here (one ``stat`` per file), which is what lets a
rebuild with nothing changed finish without opening a single article.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from newsbot.errors import Problem, StoreError

MARKDOWN_SUFFIXES = (".md", ".markdown")
SCRAPED_SUFFIXES = (".txt",)
SUFFIXES = MARKDOWN_SUFFIXES + SCRAPED_SUFFIXES
"""What a store file is named like; here, not with the parsers, so that a scan (all a build
with nothing changed does) does not load them."""
UNREADABLE = "cannot read folder"
"""How a folder of the store that could not be listed is reported (its articles are unseen)."""


class FileStat(NamedTuple):
    """A file of the store as ``stat`` sees it; ``path`` is relative, with ``/``.

    A tuple: every build makes one per file of the store, and a frozen dataclass
    costs several times as much to make.
    """

    path: str
    size: int
    mtime_ns: int


Scanned = tuple[list[FileStat], list[Problem]]
"""What `walk` returns: the article files, and the ones refused."""


def walk(root: Path) -> Scanned:
    """Every article file under ``root`` (hidden files skipped), and the ones refused."""
    if not root.is_dir():
        raise StoreError(
            f"the article store {root} does not exist or is not a folder: "
            "set store.content_dir to the articles' folder"
        )
    if not os.access(root, os.R_OK | os.X_OK):
        raise StoreError(
            f"the article store {root} is not readable: let the service's user read it "
            "(store.content_dir)"
        )
    real_root = root.resolve()
    files: list[FileStat] = []
    problems: list[Problem] = []
    # Real folders first, linked ones after, each real folder once: a link to a folder
    # already read (its parent, say) would list its files again, or loop.
    stack = [(root, "")]
    links: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    while stack or links:
        folder, prefix = stack.pop() if stack else links.pop(0)
        real = folder.resolve()
        if real in seen:
            problems.append(
                Problem(prefix.rstrip("/"), "symbolic link to a folder already read; ignored")
            )
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            problems.append(Problem(prefix.rstrip("/") or ".", f"{UNREADABLE}: {exc.strerror}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            if not _is_utf8(entry.name):  # the path could not be stored, printed or linked to
                if entry.name.lower().endswith(SUFFIXES) or entry.is_dir():
                    problems.append(Problem(_printable(rel), "name is not UTF-8; rename it"))
                continue
            if entry.is_symlink() and not _inside(Path(entry.path), real_root):
                problems.append(Problem(rel, "symbolic link pointing outside the store; ignored"))
                continue
            try:
                if entry.is_dir():
                    (links if entry.is_symlink() else stack).append((Path(entry.path), rel + "/"))
                elif entry.name.lower().endswith(SUFFIXES) and entry.is_file():
                    info = entry.stat()
                    files.append(FileStat(rel, info.st_size, info.st_mtime_ns))
            except OSError as exc:
                problems.append(Problem(rel, f"cannot read: {exc.strerror}"))
    files.sort(key=lambda f: f.path)
    return files, problems


def _is_utf8(name: str) -> bool:
    """Whether a name from the file system was valid UTF-8 (undecodable bytes become surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _inside(path: Path, real_root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a loop of links
        return False
