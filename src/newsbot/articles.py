"""Articles as the rest of newsbot sees them, whatever file they came from.

Everything here is pure: ids, slugs and links are derived from the article and
the site settings, dates are timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any


@dataclass(frozen=True, slots=True)
class Image:
    """The lead image: its address, what it shows (alt text) and who made it."""

    url: str
    alt: str = ""
    credit: str = ""
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One article of the store, validated and normalised.

    ``id`` never changes when the article is edited: it is either given in the
    front matter or derived from the file's path. ``body`` is Markdown.
    ``related`` holds the editors' references as written (ids, paths, URLs or
    headlines); resolving them needs the whole store.
    """

    id: str
    path: str
    title: str
    published: datetime
    updated: datetime
    body: str
    url: str
    authors: tuple[str, ...] = ()
    summary: str = ""
    tags: tuple[str, ...] = ()
    section: str | None = None
    lang: str | None = None
    image: Image | None = None
    related: tuple[str, ...] = ()
    draft: bool = False
    withdrawn: bool = False
    content_warning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def is_live(self, now: datetime) -> bool:
        """Whether readers may see it: not a draft, not withdrawn, not scheduled for later."""
        return not self.draft and not self.withdrawn and self.published <= now


def id_from_path(path: str) -> str:
    """A stable id from a path in the store: ``2015/Calais deal.md`` -> ``2015/calais-deal``."""
    stem = PurePosixPath(path).with_suffix("")
    return "/".join(slugify(part) or "_" for part in stem.parts)


def slugify(text: str, max_length: int = 80) -> str:
    """Lower-case ASCII words joined by ``-``; accents folded, everything else dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def slug_of(article_id: str) -> str:
    """The URL slug of an id; ids may hold ``/`` to mirror folders, links keep it."""
    return "/".join(slugify(part) or "_" for part in article_id.split("/"))


def permalink(base_url: str, pattern: str, article_id: str, published: datetime) -> str:
    """The absolute link of an article built from the site's permalink pattern."""
    path = pattern.format(
        slug=slug_of(article_id),
        id=article_id,
        year=f"{published.year:04d}",
        month=f"{published.month:02d}",
        day=f"{published.day:02d}",
    )
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; naive values must have been given a zone before."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(UTC)


def tag_slug(name: str) -> str:
    """The folder name of a tag or section feed: lower case, word characters joined by ``-``.

    Unlike `slugify` it keeps non-Latin letters, so a tag written in Cyrillic still
    gets a feed of its own.
    """
    return re.sub(r"[\W_]+", "-", name.casefold()).strip("-") or "-"


def revision_of(article: Article) -> str:
    """A fingerprint of what readers and followers see of an article.

    It changes when the article is revised (text, headline, link, tags, image),
    not when only its file is touched or moved, so a post is edited only for a
    real revision.
    """
    image = None if article.image is None else [article.image.url, article.image.alt]
    seen = [
        article.title, article.summary, article.body, article.url, list(article.tags),
        article.lang, article.content_warning, image,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(seen, ensure_ascii=False).encode()).hexdigest()[:32]
