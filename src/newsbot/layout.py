"""Where everything lives in the output folder and at which URL it is served.

One place decides the names, so the build, the web server and the tests agree:
the site's feeds at the root, each tag's under ``tags/<slug>/``, each
section's under ``sections/<slug>/``, each with an ``index.html`` that lists
its articles and points readers to the feeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

FILES = {"rss": "rss.xml", "atom": "atom.xml", "json": "feed.json"}
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


def page_file(base_url: str, url: str) -> str | None:
    """The output file of an article page served at ``url``, or None if it lives elsewhere."""
    if not url.startswith(base_url):
        return None
    rel = unquote(url[len(base_url) :].split("?")[0].split("#")[0])
    if any(part in (".", "..") or "\\" in part for part in rel.split("/")) or rel.startswith("/"):
        return None  # an article's own `url` pointing oddly: no page, rather than a bad path
    if not rel or rel.endswith("/"):
        return rel + INDEX
    return rel
