"""Where everything lives in the output folder and at which URL it is served.

One place decides the names, so the build, the web server and the tests agree:
the site's feeds at the root, each tag's under ``tags/<slug>/``, each
section's under ``sections/<slug>/``, each with an ``index.html`` that lists
its articles and points readers to the feeds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote

FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
MEDIA_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "rss": "application/rss+xml",
        "atom": "application/atom+xml",
        "json": "application/feed+json",
    }
)
"""The media type of each feed format: what the pages link with and the server sends."""
INDEX = "index.html"
FOLDERS = {"site": "", "tag": "tags/", "section": "sections/"}


@dataclass(frozen=True, slots=True)
class FeedPlace:
    """The folder of one feed set, relative to the output root (``""`` or ``tags/x/``)."""

    kind: str
    slug: str

    @property
    def folder(self) -> str:
        prefix = FOLDERS[self.kind]
        return prefix if not self.slug else f"{prefix}{self.slug}/"

    def file(self, fmt: str) -> str:
        return self.folder + FILES[fmt]

    @property
    def index(self) -> str:
        return self.folder + INDEX

    def url(self, base_url: str, fmt: str | None = None) -> str:
        """Absolute URL of the folder (its index page) or of one format's feed."""
        return base_url + (self.folder if fmt is None else self.file(fmt))


NAME_MAX = 255
"""Longest file name, in bytes, on the file systems newsbot writes to."""
RESERVED = ("tags", "sections", "media")
"""First segments that belong to the feeds and the images, never to an article page."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def page_file(base_url: str, url: str) -> str | None:
    """The output file of an article page served at ``url``, or None if it lives elsewhere.

    None too when no page can be written there (see `page_problem`): such an
    article gets no page rather than a bad path.
    """
    try:
        return page_path(base_url, url)
    except ValueError:
        return None


def page_problem(base_url: str, url: str) -> str | None:
    """Why no article page can be written for ``url`` on this site, or None."""
    try:
        page_path(base_url, url)
    except ValueError as exc:
        return str(exc)
    return None


def page_path(base_url: str, url: str) -> str | None:
    """The output file of a page at ``url``; None elsewhere; `ValueError` when it cannot be.

    Every segment must be a plain, visible name that fits a file system, and
    the page must not land on the feeds, their folders, the images or the
    site's own index: an article's ``url`` or id could otherwise overwrite them.
    """
    if not url.startswith(base_url):
        return None
    rel = unquote(url[len(base_url) :].split("?")[0].split("#")[0])
    if "\\" in rel or _CONTROL.search(rel):
        raise ValueError("its path has a backslash or a control character")
    parts = rel.split("/")
    folder, name = parts[:-1], parts[-1]
    for part in [*folder, name] if name else folder:
        if part in ("", ".", "..") or part.startswith("."):
            raise ValueError("its path has an empty, '.', '..' or hidden segment")
        if len(part.encode()) > NAME_MAX:
            raise ValueError(f"its path has a segment longer than {NAME_MAX} bytes")
    if rel in ("", INDEX) or parts[0] in RESERVED or name in FILES.values():
        raise ValueError("it would replace the site's index, a feed or an image")
    return rel + INDEX if not name else rel
