"""What a file is served as: its media type, its freshness lifetime, whether gzip helps.

Decided by name, from a fixed table rather than the machine's
``/etc/mime.types``, so every machine serves the same headers. The feed file
names come from :mod:`newsbot.layout` and their types from
:data:`newsbot.layout.MEDIA_TYPES`, so the builder and the server cannot
disagree. A name without a suffix is an article page (a permalink such as
``articles/{slug}`` is written as an extensionless HTML file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from newsbot.layout import FILES, MEDIA_TYPES

FEED_TYPES = {FILES[fmt]: MEDIA_TYPES[fmt] for fmt in FILES}
"""``rss.xml`` -> ``application/rss+xml``, and so on: feeds are known by their file name."""

PAGE_TYPE = "text/html"
DEFAULT_TYPE = "application/octet-stream"

SUFFIX_TYPES = {
    ".html": PAGE_TYPE,
    ".htm": PAGE_TYPE,
    ".xml": "application/xml",
    ".xsl": "application/xslt+xml",
    ".json": "application/json",
    ".txt": "text/plain",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".pdf": "application/pdf",
    ".woff2": "font/woff2",
}

TEXT_SUFFIXES = ("+xml", "+json", "/xml", "/json", "/javascript")
"""Non-``text/`` types that are text: they get a charset and are worth compressing."""


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """``Cache-Control: max-age`` in seconds, by kind of file.

    Feeds and pages change with each build, so caches may keep them only a
    few minutes (readers revalidate cheaply with a 304); media files are
    rarely replaced under the same name.
    """

    feeds: int = 300
    pages: int = 300
    media: int = 86_400


@dataclass(frozen=True, slots=True)
class MediaType:
    """How one file is served: ``Content-Type``, whether it is text, and its lifetime."""

    essence: str
    textual: bool
    max_age: int

    @property
    def content_type(self) -> str:
        return f"{self.essence}; charset=utf-8" if self.textual else self.essence


def media_type_of(name: str, policy: CachePolicy) -> MediaType:
    """The media type of a file called ``name`` (its last path segment)."""
    essence = _essence(name)
    textual = essence.startswith("text/") or essence.endswith(TEXT_SUFFIXES)
    return MediaType(essence, textual, _max_age(essence, policy))


def _essence(name: str) -> str:
    if name in FEED_TYPES:
        return FEED_TYPES[name]
    suffix = PurePath(name).suffix.lower()
    if not suffix:
        return PAGE_TYPE
    return SUFFIX_TYPES.get(suffix, DEFAULT_TYPE)


def _max_age(essence: str, policy: CachePolicy) -> int:
    if essence in FEED_TYPES.values():
        return policy.feeds
    if essence == PAGE_TYPE:
        return policy.pages
    return policy.media
