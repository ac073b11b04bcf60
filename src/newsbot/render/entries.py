"""One article as a feed item: the values every format writes, cleaned once.

Plain text on one line, URLs in the ASCII form the validator accepts, dates in
UTC to the second, the summary of `newsbot.summaries`, the lead image as an
enclosure when it has a known media type. `newsbot.render.feeds` writes them
as RSS and Atom, `newsbot.render.json_feed` as JSON Feed.
"""

from __future__ import annotations

import contextlib
import html
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from newsbot.articles import Article, Image, ascii_host
from newsbot.summaries import clean_text, one_line, summary_text

EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)
"""The date of a feed with no entries: fixed, so the bytes stay the same."""

URL_SAFE = ";/?:@&=+$!*'()%,~"
"""Characters a URL may keep as they are (and its first ``#``); the rest is percent-encoded."""
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*$")


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a feed says about itself: names, addresses and its stable id."""

    title: str
    description: str
    home_url: str
    language: str
    id: str
    urls: Mapping[str, str]
    hub: str | None = None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One article as a feed item: its stable guid and its rendered, sanitised body."""

    article: Article
    guid: str
    content_html: str
    related: Sequence[Article] = ()
    """The article's related articles, as its page lists them."""


RELATED_LABEL = "Related"


def related_html(related: Sequence[Article], label: str = RELATED_LABEL) -> str:
    """The related articles as an HTML list under a heading, for the end of an item's content.

    A separate section with its own heading and list markup, so that every reader
    shows it as a list apart from the article's text.
    """
    if not related:
        return ""
    items = "".join(
        f'<li><a href="{html.escape(safe_url(a.url))}">'
        f"{html.escape(one_line(a.title), quote=False)}</a></li>"
        for a in related
    )
    return f"<hr><h2>{html.escape(label, quote=False)}</h2><ul>{items}</ul>"


@dataclass(frozen=True, slots=True)
class Enclosure:
    """The lead image as a media attachment; ``length`` is None when unknown."""

    url: str
    type: str
    length: int | None


# -- text, URLs and dates ----------------------------------------------------


def safe_url(url: str) -> str:
    """An absolute URL in the ASCII form the validator accepts (IRIs are errors).

    The store takes any absolute http(s) URL, but a URI has no ``%`` that starts
    no escape (``50%-off``) and no ``#`` inside its fragment: both are encoded.
    An internationalised host is written as its IDNA A-labels (`ascii_host`),
    not percent-encoded.
    """
    url = clean_text(url).strip()
    if not url.isascii():  # most are: spared the context manager, on every link of every feed
        with contextlib.suppress(ValueError):  # the store refuses such a host with a problem
            url = ascii_host(url)
    head, hash_mark, fragment = url.partition("#")
    uri = quote(head, safe=URL_SAFE)
    if hash_mark:
        uri += hash_mark + quote(fragment, safe=URL_SAFE)
    return _STRAY_PERCENT.sub("%25", uri) if "%" in uri else uri


def utc(value: datetime) -> datetime:
    """``value`` in UTC to the second: feeds cannot all carry fractions."""
    return value.astimezone(UTC).replace(microsecond=0)


def rfc3339(value: datetime) -> str:
    """The JSON Feed form of a date."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed_date(entries: Sequence[Entry]) -> datetime:
    """When the feed last changed: its newest revision, or a fixed date if empty."""
    return max((utc(entry.article.updated) for entry in entries), default=EMPTY_FEED_DATE)


def distinct_updates(entries: Sequence[Entry]) -> list[datetime]:
    """Each entry's ``updated``, repeated values moved so none is shared (Atom warns).

    A repeated value moves back by whole seconds, never before the entry's
    ``published`` (an entry revised before it appeared); when that leaves no
    room (articles dated by the day, all at midnight and never revised), it
    moves forward instead. Entries are taken in their order, so the same
    window always gives the same dates.
    """
    taken: set[datetime] = set()
    back: dict[datetime, datetime] = {}
    ahead: dict[datetime, datetime] = {}
    updates = []
    for entry in entries:
        published = utc(entry.article.published)
        wanted = max(utc(entry.article.updated), published)
        value = _free(wanted, -_SECOND, taken, back)
        if value < published:
            value = _free(wanted, _SECOND, taken, ahead)
        taken.add(value)
        updates.append(value)
    return updates


_SECOND = timedelta(seconds=1)


def _free(
    value: datetime, step: timedelta, taken: set[datetime], skip: dict[datetime, datetime]
) -> datetime:
    """The first value from ``value`` on, by ``step``, not in ``taken``.

    ``skip`` remembers, for a taken value, a value further on that every search
    may start from: all between are taken. Without it, many entries sharing one
    value (a window of 10,000 imported the same day) took quadratic time.
    """
    passed = []
    while value in taken:
        passed.append(value)
        value = skip.get(value, value + step)
    for seen in passed:
        skip[seen] = value
    return value


# -- what an entry says --------------------------------------------------------


def summary_of(entry: Entry) -> str:
    """The summary of `summary_text`, else the item id: never blank (see `title_of`)."""
    return summary_text(entry.article, entry.content_html) or item_id(entry.guid)


def title_of(entry: Entry) -> str:
    """The headline on one line; its summary when cleaning leaves it empty.

    The store keeps a headline of only U+FFFD (mis-decoded text), which feeds
    must drop: Atom requires a title and a blank RSS title is an error, and an
    Atom entry without content needs a summary that is not blank.
    """
    return one_line(entry.article.title) or summary_of(entry)


def categories_of(article: Article) -> list[str]:
    """The section, then the tags, without blanks or repeats."""
    names = [article.section or "", *article.tags]
    return list(dict.fromkeys(name for name in map(one_line, names) if name))


def authors_of(article: Article) -> list[str]:
    """The article's author names, without blanks."""
    return [name for name in map(one_line, article.authors) if name]


def feed_author(info: FeedInfo) -> str:
    """The feed-level author that Atom needs for entries without one."""
    return one_line(info.author or "") or one_line(info.title)


def enclosure_of(image: Image | None) -> Enclosure | None:
    """The lead image as an enclosure, if it has an address and a known media type."""
    if image is None or not image.url.strip() or not MEDIA_TYPE.match(image.type or ""):
        return None
    return Enclosure(url=safe_url(image.url), type=image.type or "", length=image.length)


def guid(entry: Entry) -> str:
    return item_id(entry.guid)


def item_id(guid: str) -> str:
    """An entry's id as readers see it: a URI, the same in all three formats.

    Atom ids must be URIs in canonical form: an id holding non-ASCII letters
    (an IRI) is percent-encoded from its NFC form, and stray whitespace is
    dropped. ASCII ids pass unchanged, so the mapping never moves an id twice.
    U+FFFD, which text of feeds drops, is kept encoded: ``a\ufffdb`` and
    ``ab`` are two articles (an id holds no ``%``, so no id is written so).
    """
    kept = guid.replace("\ufffd", REPLACEMENT_ESCAPE)
    return safe_url(unicodedata.normalize("NFC", clean_text(kept).strip()))


REPLACEMENT_ESCAPE = quote("\ufffd")


def content_of(entry: Entry, with_related: bool = False) -> str:
    """The full body HTML, cleaned of characters XML cannot carry; with the related list
    at the end for formats that have no element for it (RSS, JSON Feed)."""
    body = clean_text(entry.content_html).strip()
    if with_related and entry.related:
        return body + clean_text(related_html(entry.related))
    return body
