"""JSON Feed 1.1 documents, checked against a closed model of the format.

Plain-text fields stay plain text; the related articles end the item's HTML
content, as JSON Feed has no field for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from newsbot.render.entries import (
    Entry,
    FeedInfo,
    authors_of,
    categories_of,
    content_of,
    feed_author,
    guid,
    rfc3339,
    safe_url,
    summary_of,
    title_of,
)
from newsbot.summaries import one_line

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


class _JsonModel(BaseModel):
    """A closed JSON Feed object: unknown keys are a bug, not an extension."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class _JsonAuthor(_JsonModel):
    name: str


class _JsonHub(_JsonModel):
    type: str
    url: str


class _JsonItem(_JsonModel):
    id: str
    url: str
    title: str
    content_html: str
    summary: str
    image: str | None = None
    date_published: str
    date_modified: str
    authors: tuple[_JsonAuthor, ...] | None = None
    tags: tuple[str, ...] | None = None
    language: str | None = None


class _JsonFeed(_JsonModel):
    version: str = JSON_FEED_VERSION
    title: str
    home_page_url: str
    feed_url: str
    description: str
    language: str
    authors: tuple[_JsonAuthor, ...]
    hubs: tuple[_JsonHub, ...] | None = None
    items: tuple[_JsonItem, ...]


def _json_authors(names: Iterable[str]) -> tuple[_JsonAuthor, ...] | None:
    """JSON Feed authors, or None so that the key is left out."""
    return tuple(_JsonAuthor(name=name) for name in names) or None


def _json_item(entry: Entry) -> _JsonItem:
    """One JSON Feed item; plain-text fields stay plain text here."""
    article = entry.article
    image = article.image.url.strip() if article.image else ""
    return _JsonItem(
        id=guid(entry),
        url=safe_url(article.url),
        title=title_of(entry),
        content_html=content_of(entry, with_related=True),
        summary=summary_of(entry),
        image=safe_url(image) if image else None,
        date_published=rfc3339(article.published),
        date_modified=rfc3339(article.updated),
        authors=_json_authors(authors_of(article)),
        tags=tuple(categories_of(article)) or None,
        language=one_line(article.lang) if article.lang else None,
    )


def render_json(info: FeedInfo, entries: Sequence[Entry]) -> bytes:
    """The JSON Feed 1.1 document of ``entries`` (newest first), served at ``info.urls["json"]``."""
    feed = _JsonFeed(
        title=one_line(info.title),
        home_page_url=safe_url(info.home_url),
        feed_url=safe_url(info.urls["json"]),
        description=one_line(info.description) or one_line(info.title),
        language=one_line(info.language),
        authors=(_JsonAuthor(name=feed_author(info)),),
        hubs=(_JsonHub(type="WebSub", url=safe_url(info.hub)),) if info.hub else None,
        items=tuple(_json_item(entry) for entry in entries),
    )
    document = feed.model_dump(mode="json", exclude_none=True)
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
