"""Image references to store files: the one way from what an editor wrote to a file we read.

An image is named in front matter either relative to its article
(``photos/calais.jpg``) or by its public address under ``<base_url>/media/``.
Reading the file behind it happens three times (when the article is parsed,
when the build copies it to ``media/``, when the publisher uploads it), each
time through :func:`open_asset`, so a check cannot be forgotten in one place,
and a file swapped for a link between parse and use is still refused.

What is refused, and why each matters:

* in the reference: a scheme other than http(s) (``javascript:``, ``file:``),
  an absolute path or a host where a relative path belongs, a query or a
  fragment, an empty segment (``//`` would make ``media//etc/x`` the absolute
  ``/etc/x``), ``..`` in a media URL, ``..`` that climbs out of the store in a
  relative reference, a backslash, NUL or another control character, a
  percent-encoded separator, dot or percent sign (``%2f``, ``%2e``, ``%5c``,
  ``%25`` for double encoding), percent-encoding that is not UTF-8 (overlong
  ``%c0%ae``), a hidden file or folder (``.git/config``) and an article file
  (a draft must not leak as an "image");
* on disk: a path whose real location (symbolic links followed) is outside
  the real store, and anything but a regular file (folders, FIFOs, devices).

The file is opened without following a final symbolic link and checked on the
open descriptor (its type, and on Linux the path the kernel opened), so what
is read is what was checked.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

from newsbot.errors import NewsbotError

ARTICLE_SUFFIXES = (".md", ".markdown", ".txt")
"""The suffixes of article files (``store.scan.SUFFIXES``; the readers import this module)."""
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ENCODED_SPECIAL = re.compile(r"%(?:2e|2f|5c|25|00)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")


class AssetRefused(NewsbotError, ValueError):
    """An image reference that names no usable file of the store; the message says why."""


@dataclass(frozen=True, slots=True)
class Asset:
    """A file of the store named by an image reference: its store path and size when checked."""

    path: str
    """Relative to the store, ``/``-separated, every segment a plain visible name."""
    size: int


def media_url(media_prefix: str, path: str) -> str:
    """The public address of the store file at ``path`` (``<base_url>/media/`` + path)."""
    return media_prefix + quote(path)


def store_path(ref: str, media_prefix: str, article_path: str | None = None) -> str | None:
    """The store path an image reference names, or None for an image on another site.

    ``ref`` is an absolute http(s) URL (a store file when it starts with
    ``media_prefix``) or, when ``article_path`` is given, a reference relative
    to that article. Raises `AssetRefused` for anything that could leave the
    store or is not a plain file name.
    """
    if _CONTROL.search(ref):
        raise AssetRefused("has a control character")
    if "\\" in ref:
        raise AssetRefused("has a backslash")
    if ref.startswith(media_prefix):
        return _checked(ref[len(media_prefix) :], base=[], relative=False)
    parts = urlsplit(ref)
    if parts.scheme:
        if parts.scheme.lower() in ("http", "https") and parts.netloc:
            return None  # an image on another site: nothing of ours to read
        raise AssetRefused(f"scheme {parts.scheme + ':'!r} is not allowed (use http or https)")
    if article_path is None:
        raise AssetRefused("is not an absolute URL")
    if parts.netloc or ref.startswith("/"):
        raise AssetRefused("is an absolute path; give it relative to the article")
    return _checked(ref, base=article_path.split("/")[:-1], relative=True)


def _checked(raw: str, base: list[str], relative: bool) -> str:
    """``raw`` (a URL path, not yet decoded) as a store path, each segment checked."""
    if "?" in raw or "#" in raw:
        raise AssetRefused("has a query or fragment")
    if _BAD_ESCAPE.search(raw):
        raise AssetRefused("has a '%' that is not a percent-encoded byte")
    if _ENCODED_SPECIAL.search(raw):
        raise AssetRefused("has a percent-encoded dot, separator or percent sign")
    resolved = list(base)
    for segment in raw.split("/"):
        name = _decoded(segment)
        if name == "":
            raise AssetRefused("has an empty segment ('//' or a trailing '/')")
        if name == "." and relative:
            continue
        if name == ".." and relative:
            if not resolved:
                raise AssetRefused("climbs out of the store ('..')")
            resolved.pop()
            continue
        if name in (".", ".."):
            raise AssetRefused(f"has a {name!r} segment")
        if name.startswith("."):
            raise AssetRefused(f"names a hidden file or folder ({name!r})")
        resolved.append(name)
    if not resolved:
        raise AssetRefused("names no file")
    if resolved[-1].lower().endswith(ARTICLE_SUFFIXES):
        raise AssetRefused("names an article file, not an image")
    return "/".join(resolved)


def _decoded(segment: str) -> str:
    try:
        name = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise AssetRefused("has percent-encoding that is not UTF-8") from None
    if _CONTROL.search(name):
        raise AssetRefused("has a control character")
    return name


@contextmanager
def open_asset(root: Path, path: str) -> Iterator[tuple[Asset, BinaryIO]]:
    """The store file at ``path`` (from `store_path`), opened for reading once checked.

    Raises `AssetRefused` when it is missing, leaves the store through a
    symbolic link, or is not a regular file.
    """
    try:
        real_root = root.resolve(strict=True)
        real = (real_root / path).resolve(strict=True)
    except FileNotFoundError:
        raise AssetRefused("is not a file of the store") from None
    except (OSError, RuntimeError) as exc:  # a loop of links, a name too long
        raise AssetRefused(f"cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    if not real.is_relative_to(real_root):
        raise AssetRefused("is a symbolic link leading out of the store")
    try:
        fd = os.open(real, OPEN_FLAGS)
    except OSError as exc:
        raise AssetRefused(f"cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AssetRefused("is not a regular file")
        opened = _opened_path(fd)
        if opened is not None and not opened.is_relative_to(real_root):
            raise AssetRefused("is a symbolic link leading out of the store")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield Asset(path, info.st_size), handle


def asset_size(root: Path, path: str) -> int:
    """The size of the store file at ``path``, once it passed the checks of `open_asset`."""
    with open_asset(root, path) as (asset, _):
        return asset.size


def _opened_path(fd: int) -> Path | None:
    """Where the kernel says ``fd`` points (on Linux): catches a folder swapped meanwhile."""
    try:
        return Path(f"/proc/self/fd/{fd}").readlink()
    except OSError:
        return None
