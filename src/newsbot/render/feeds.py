"""RSS 2.0, Atom 1.0 and JSON Feed 1.1 documents for a window of articles.

Rendering is pure: no file, network or clock access, and the same input always
gives the same bytes, because the web server derives ETags from file content.
The bar is the W3C Feed Validation Service with no error and no warning, and
the JSON Feed 1.1 schema.

RSS and Atom are built with feedgen 1.0.0, whose output is then parsed back and
repaired where feedgen falls short:

- Atom entry links lose ``rel``, ``type`` and ``length``, so an image
  enclosure would become a second alternate link; we write entry links
  ourselves.
- RSS gets only the first ``atom:link``; the WebSub hub link is added.
- feedgen stamps the current time on feeds and entries; every date is set
  from the articles instead.

Decisions that readers and the validator can see:

- Dates are UTC without fractions of a second. An empty feed is dated
  ``EMPTY_FEED_DATE`` (the validator calls dates before 1990 implausible, so
  the Unix epoch would be a warning); otherwise the feed date is the newest
  ``updated`` of its entries.
- RSS ``<author>`` must be an e-mail address, which articles do not have, so
  authors go to ``dc:creator``. Atom entries without authors inherit a feed
  author: ``FeedInfo.author`` or else the feed's title (the newsroom).
- An enclosure is written only when the image has a URL and a known media
  type. An unknown length is ``0`` in RSS (the validator's rule: ``0`` means
  unknown) and is left out in Atom, where length is only an advisory hint.
- ``&`` and ``<`` in plain text (titles, categories, summaries) are written as
  hexadecimal character references, as the RSS Advisory Board's profile asks:
  the validator then accepts text that merely looks like an entity or a tag.
  Atom text holding what looks like an HTML end tag is declared
  ``type="html"`` and escaped; RSS has no such declaration, so an RSS title
  with a literal end tag (``</b>``) still draws a warning.
- Atom calls two entries with the same ``updated`` a warning, so within one
  Atom document repeated values are moved back by whole seconds, but never
  before the entry's ``published``: forward then (the feed's date follows).
- Characters XML cannot carry, C1 controls and U+FFFD are removed from all
  text: lxml refuses the former and the validator warns about the latter.
  Bidirectional controls are balanced within each title, name and summary
  (an excerpt cut from the body included), so none runs on into the text a
  reader shows next to it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from feedgen.feed import FeedGenerator
from lxml import etree

from newsbot.layout import MEDIA_TYPES
from newsbot.render.entries import (
    EMPTY_FEED_DATE,
    Entry,
    FeedInfo,
    authors_of,
    categories_of,
    content_of,
    distinct_updates,
    enclosure_of,
    feed_author,
    feed_date,
    guid,
    item_id,
    safe_url,
    summary_of,
    title_of,
    utc,
)
from newsbot.render.json_feed import render_json
from newsbot.summaries import one_line

__all__ = [
    "EMPTY_FEED_DATE",
    "RENDERERS",
    "Entry",
    "FeedInfo",
    "item_id",
    "render_atom",
    "render_json",
    "render_rss",
]

GENERATOR = "newsbot"

_ATOM = "http://www.w3.org/2005/Atom"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_END_TAG = re.compile(r"</\w+>")
# Plain-text elements as lxml writes them; Atom ones with a type attribute hold HTML.
_RSS_PLAIN_TEXT = re.compile(rb"<(title|category)(?:\s[^>]*)?>(?P<text>[^<]*)</\1>")
_RSS_CHANNEL_DESCRIPTION = re.compile(rb"<description>(?P<text>[^<]*)</description>")
_ATOM_PLAIN_TEXT = re.compile(rb"<(title|subtitle|summary|name)>(?P<text>[^<]*)</\1>")


# -- the parts feedgen does right -----------------------------------------------


def _generator(info: FeedInfo, kind: str, updated: datetime) -> Any:
    """A feedgen generator with the channel or feed metadata of one format.

    Links go in this order because feedgen's RSS channel link is the last link
    added: self first, the alternate (the site) last.
    """
    generator = FeedGenerator()
    generator.id(item_id(info.id))  # a tag feed's slug may hold non-ASCII letters
    generator.title(one_line(info.title))
    generator.description(one_line(info.description) or one_line(info.title))
    generator.language(one_line(info.language))
    generator.generator(GENERATOR)
    generator.link(href=safe_url(info.urls[kind]), rel="self", type=MEDIA_TYPES[kind])
    if info.hub:
        generator.link(href=safe_url(info.hub), rel="hub")
    generator.link(href=safe_url(info.home_url), rel="alternate", type="text/html")
    generator.updated(updated)
    generator.lastBuildDate(updated)
    return generator


def _add_rss_item(generator: Any, entry: Entry) -> None:
    """One RSS item; the summary is HTML in RSS, so it is escaped."""
    article = entry.article
    item = generator.add_entry(order="append")
    item.guid(guid(entry), permalink=False)
    item.title(title_of(entry))
    item.link(href=safe_url(article.url))
    item.description(html.escape(summary_of(entry), quote=False))
    if content := content_of(entry, with_related=True):
        item.content(content)
    item.pubDate(utc(article.published))
    for term in categories_of(article):
        item.category(term=term)
    if enclosure := enclosure_of(article.image):
        item.enclosure(enclosure.url, str(enclosure.length or 0), enclosure.type)
    if authors := authors_of(article):
        item.dc.dc_creator(authors)


def _add_atom_entry(generator: Any, entry: Entry, updated: datetime) -> None:
    """One Atom entry; its links are placeholders that ``_repair_atom`` replaces."""
    article = entry.article
    item = generator.add_entry(order="append")
    item.id(guid(entry))
    item.title(title_of(entry))
    item.updated(updated)
    item.published(utc(article.published))
    item.link(href=safe_url(article.url), rel="alternate")
    item.summary(summary_of(entry))
    if content := content_of(entry):
        item.content(content, type="html")
    for name in authors_of(article):
        item.author(name=name)
    for term in categories_of(article):
        item.category(term=term)


# -- repairs on the parsed document --------------------------------------------


def _parse(document: bytes) -> etree._Element:
    """feedgen's output as a tree, parsed without entity expansion or network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    return etree.fromstring(document, parser)  # noqa: S320 - our own output, entities off


def _serialise(root: etree._Element) -> bytes:
    """The final document: UTF-8, declared, indented for people reading it."""
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)


def _atom(name: str) -> str:
    """The qualified name of an Atom element."""
    return f"{{{_ATOM}}}{name}"


def _add_rss_hub(root: etree._Element, hub: str) -> None:
    """The WebSub hub link, right after the self link (feedgen writes only the first)."""
    channel = root.find("channel")
    self_link = root.find(f"channel/{_atom('link')}")
    if channel is None or self_link is None:
        raise ValueError("feedgen wrote an RSS channel without a self link")
    hub_link = etree.Element(_atom("link"), {"href": safe_url(hub), "rel": "hub"})
    channel.insert(channel.index(self_link) + 1, hub_link)


def _hex_references(match: re.Match[bytes]) -> bytes:
    """A plain-text element with ``&`` and ``<`` as hexadecimal character references."""
    text = match.group("text").replace(b"&amp;", b"&#x26;").replace(b"&lt;", b"&#x3C;")
    before = match.string[match.start() : match.start("text")]
    after = match.string[match.end("text") : match.end()]
    return before + text + after


def _rss_plain_text(document: bytes) -> bytes:
    """RSS titles, categories and the channel description in the RSS Profile's encoding."""
    document = _RSS_PLAIN_TEXT.sub(_hex_references, document)
    return _RSS_CHANNEL_DESCRIPTION.sub(_hex_references, document, count=1)


def _atom_plain_text(document: bytes) -> bytes:
    """Atom plain text (untyped text constructs, names) encoded as RSS plain text is."""
    return _ATOM_PLAIN_TEXT.sub(_hex_references, document)


def _atom_links(entry: Entry) -> Iterator[dict[str, str]]:
    """The attributes of an Atom entry's links: the article, then its image."""
    yield {"rel": "alternate", "type": "text/html", "href": safe_url(entry.article.url)}
    if enclosure := enclosure_of(entry.article.image):
        link = {"rel": "enclosure", "type": enclosure.type, "href": enclosure.url}
        if enclosure.length is not None:
            link["length"] = str(enclosure.length)
        yield link
    seen = {safe_url(entry.article.url)}
    for other in entry.related:
        href = safe_url(other.url)
        if href and href not in seen:
            seen.add(href)
            yield {
                "rel": "related",
                "type": "text/html",
                "href": href,
                "title": one_line(other.title),
            }


def _replace_links(element: etree._Element, entry: Entry) -> None:
    """Swap feedgen's broken entry links for correct ones, in the same place."""
    old = element.findall(_atom("link"))
    position = element.index(old[0]) if old else len(element)
    for link in old:
        element.remove(link)
    for offset, attributes in enumerate(_atom_links(entry)):
        element.insert(position + offset, etree.Element(_atom("link"), attributes))


def _mark_html_text(element: etree._Element | None) -> None:
    """Declare a text construct as escaped HTML when its text holds an end tag.

    Readers would take such text for markup, and character references do not
    appease the validator there, unlike for ``&`` and ``<`` alone.
    """
    if element is None or not element.text or element.get("type"):
        return
    if _END_TAG.search(element.text):
        element.set("type", "html")
        element.text = html.escape(element.text, quote=False)


def _set_language(element: etree._Element, language: str | None, default: str) -> None:
    """Mark an entry written in another language than the feed."""
    if language and one_line(language) != one_line(default):
        element.set(_XML_LANG, one_line(language))


def _repair_atom(root: etree._Element, info: FeedInfo, entries: Sequence[Entry]) -> None:
    """Fix feedgen's Atom: entry links, HTML-looking text, per-entry languages."""
    for name in ("title", "subtitle"):
        _mark_html_text(root.find(_atom(name)))
    for element, entry in zip(root.iterfind(_atom("entry")), entries, strict=True):
        _replace_links(element, entry)
        _mark_html_text(element.find(_atom("title")))
        _mark_html_text(element.find(_atom("summary")))
        _set_language(element, entry.article.lang, info.language)


# -- the three formats -----------------------------------------------------------


def render_rss(info: FeedInfo, entries: Sequence[Entry]) -> bytes:
    """The RSS 2.0 document of ``entries`` (newest first), served at ``info.urls["rss"]``."""
    generator = _generator(info, "rss", feed_date(entries))
    generator.load_extension("dc", atom=False, rss=True)
    for entry in entries:
        _add_rss_item(generator, entry)
    root = _parse(generator.rss_str(pretty=False))
    if info.hub:
        _add_rss_hub(root, info.hub)
    return _rss_plain_text(_serialise(root))


def render_atom(info: FeedInfo, entries: Sequence[Entry]) -> bytes:
    """The Atom 1.0 document of ``entries`` (newest first), served at ``info.urls["atom"]``."""
    updates = distinct_updates(entries)
    generator = _generator(info, "atom", max([feed_date(entries), *updates]))
    generator.author(name=feed_author(info))
    for entry, updated in zip(entries, updates, strict=True):
        _add_atom_entry(generator, entry, updated)
    root = _parse(generator.atom_str(pretty=False))
    _repair_atom(root, info, entries)
    return _atom_plain_text(_serialise(root))


RENDERERS: Mapping[str, Callable[[FeedInfo, Sequence[Entry]], bytes]] = MappingProxyType(
    {"rss": render_rss, "atom": render_atom, "json": render_json}
)
