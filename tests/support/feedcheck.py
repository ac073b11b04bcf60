"""Feed validity checks: the W3C Feed Validation Service's rules, in Python.

The W3C service is online and cannot run in tests, so the rules that matter
for newsbot's feeds are written here again (from the validator's own documentation):
every error and every warning the validator gives for them is a violation.
JSON Feed is checked against the JSON Feed 1.1 schema, plus the rules a schema
cannot state (unique ids, safe content, where the feed is served).

Each ``check_*`` function takes the bytes of a feed and the URL it is served
at, and returns human-readable violations; an empty list means valid. Tests
on real build output call these too, so they must stay strict: each rule has
a test with a broken feed that must be reported.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from html.entities import name2codepoint
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.etree as etree
import lxml.html
import pytest

REPO = Path(__file__).resolve().parents[2]
JSON_SCHEMA = REPO / ".cache/npm/node_modules/jsonfeed-schema/schema-v1.1.json"
"""The JSON Feed 1.1 schema of the npm package jsonfeed-schema@0.5.0 (tests/setup/tools.sh)."""

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
"""The validator calls earlier dates implausible (a warning), and future ones too."""

# Characters XML 1.0 forbids, and those the validator reports as bad (C1, U+FFFD).
FORBIDDEN_CHARACTERS = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffc\U00010000-\U0010ffff]")
CHARACTER_REFERENCE = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")

RFC822_DATE = re.compile(
    r"^(?:(?P<dow>Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d\d? "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d(?::\d\d)? "
    r"(?:[+-]\d\d[03]0|UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|Z)$"
)
RFC3339_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$")
ABSOLUTE_URI = re.compile(r"^[a-zA-Z][0-9a-zA-Z+\-.]*:(?://)?[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]+$")
TAG_URI = re.compile(  # RFC 4151
    r"^tag:(?:[a-z0-9._-]+@)?[a-z0-9.-]+,\d{4}(?:-\d\d(?:-\d\d)?)?:"
    r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*(?:#[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]*)?$"
)
MEDIA_TYPE = re.compile(r'^[^\s()<>,;:\\"/\[\]?=]+/[^\s()<>,;:\\"/\[\]?=]+(\s*;.*)?$')
EMAIL_WITH_NAME = re.compile(r"^[\w.%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]+ \(.+\)$")
END_TAG = re.compile(r"</(\w+)>")
ENTITY_LIKE = re.compile(r"&(#?\w+)")
MARKUP_LIKE = re.compile(r"&#[x0-9]|<[/a-zA-Z]")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

# Characters that canonical URIs write as themselves, never percent-escaped.
NEEDLESS_ESCAPES = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/"
)
XML_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
ATOM_LINK_RELATIONS = frozenset(
    "alternate current describedby edit edit-media enclosure first hub last license next "
    "next-archive payment prev-archive previous related replies search self service up "
    "via".split()
)
# HTML the validator accepts in content; everything else is a security warning.
SAFE_ELEMENTS = frozenset(
    "a abbr acronym address area article aside audio b bdi big blockquote br button canvas "
    "caption center cite code col colgroup data dd del details dfn dir div dl dt em fieldset "
    "figcaption figure font footer form h1 h2 h3 h4 h5 h6 header hgroup hr i img input ins "
    "kbd label legend li main map mark menu meter nav noscript ol optgroup option output p "
    "picture pre progress q rp rt ruby s samp section select small source span strike strong "
    "sub summary sup table tbody td template textarea tfoot th thead time tr track tt u ul "
    "var video wbr".split()
)
UNSAFE_ELEMENTS = frozenset(
    "applet base basefont bdo body embed frame frameset head html iframe isindex link listing "
    "math meta noframes object param plaintext script style svg title xmp".split()
)
SAFE_ATTRIBUTES = frozenset(
    "abbr accept align alt autoplay axis border cellpadding cellspacing char charoff charset "
    "checked cite class clear color cols colspan compact coords datetime decoding dir disabled "
    "download face for headers height hidden href hreflang hspace id ismap itemprop kind label "
    "lang loading longdesc loop media muted name nohref noshade nowrap open playsinline poster "
    "preload referrerpolicy rel rev reversed rows rowspan rules scope shape size sizes span src "
    "srclang srcset start summary tabindex target title translate type usemap valign value "
    "vspace width".split()
)
URL_ATTRIBUTES = ("href", "src", "poster", "cite", "longdesc", "usemap")
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:text/html")
SIMPLE_STYLE = re.compile(r"^(\s*[-a-zA-Z]+\s*:\s*[-\w\s#%.,!'\"]*(;|$))*\s*$")


# -- shared pieces -----------------------------------------------------------------------


def _now() -> datetime:
    """The clock, for the validator's 'date in the future' rule (checks may read it)."""
    return datetime.now(UTC)


def _plausibility(where: str, value: datetime) -> Iterator[str]:
    """The validator's implausible-date warning: before 1990 or in the future."""
    if value < EARLIEST_PLAUSIBLE:
        yield f"{where}: implausible date {value.isoformat()} (before 1990)"
    elif value > _now() + timedelta(minutes=10):
        yield f"{where}: implausible date {value.isoformat()} (in the future)"


def rfc822_problems(where: str, text: str | None) -> Iterator[str]:
    """An RSS date must be RFC 822 as the RSS profile writes it, with the right weekday."""
    value = (text or "").strip()
    match = RFC822_DATE.match(value)
    if not match:
        yield f"{where}: {value!r} is not an RFC 822 date (like 'Thu, 20 Aug 2015 00:00:00 +0000')"
        return
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        yield f"{where}: {value!r} is not a real date"
        return
    if match["dow"] and parsed.strftime("%a") != match["dow"]:
        yield f"{where}: {value!r} names the wrong day of the week"
    yield from _plausibility(where, parsed.astimezone(UTC))


def rfc3339_problems(where: str, text: str | None) -> Iterator[str]:
    """An Atom or JSON Feed date must be RFC 3339 with a zone."""
    value = text or ""
    if not RFC3339_DATE.match(value):
        yield f"{where}: {value!r} is not an RFC 3339 date with a zone"
        return
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        yield f"{where}: {value!r} is not a real date"
        return
    yield from _plausibility(where, parsed.astimezone(UTC))


def absolute_url_problems(where: str, value: str | None, *, http: bool = False) -> Iterator[str]:
    """A link must be a full URI (an http(s) URL with a host when ``http``), ASCII only."""
    text = value or ""
    if not ABSOLUTE_URI.match(text):
        yield f"{where}: {text!r} is not an absolute URI in ASCII"
        return
    parts = urlsplit(text)
    if (http or parts.scheme in ("http", "https")) and (
        parts.scheme not in ("http", "https") or not parts.netloc
    ):
        yield f"{where}: {text!r} is not an absolute http(s) URL"


def _canonical_problems(where: str, value: str) -> Iterator[str]:
    """The validator warns about ids that are not in canonical URI form."""
    if value != value.strip():
        yield f"{where}: id {value!r} has surrounding whitespace"
    if re.search(r"%(?![0-9A-F]{2})", value):
        yield f"{where}: id {value!r} has a percent sign that is not an upper-case escape"
    for escape in re.findall(r"%([0-9A-Fa-f]{2})", value):
        if chr(int(escape, 16)) in NEEDLESS_ESCAPES:
            yield f"{where}: id {value!r} escapes %{escape} needlessly (not canonical)"
    scheme = value.split(":", 1)[0]
    if scheme != scheme.lower():
        yield f"{where}: id {value!r} has an upper-case scheme (not canonical)"
    if scheme.lower() == "tag" and not TAG_URI.match(value):
        yield f"{where}: id {value!r} is not a valid tag: URI (RFC 4151)"
    if scheme.lower() in ("http", "https"):
        parts = urlsplit(value)
        default_port = {"http": ":80", "https": ":443"}[scheme.lower()]
        if (
            parts.netloc != parts.netloc.lower()
            or parts.netloc.endswith(default_port)
            or not parts.path
            or re.search(r"/\.\.?(/|$)", parts.path)
        ):
            yield f"{where}: id {value!r} is not in canonical form"


def _character_problems(text: str) -> Iterator[str]:
    """Characters XML forbids or the validator flags, written raw or as references."""
    for line_number, line in enumerate(text.split("\n"), start=1):
        if match := FORBIDDEN_CHARACTERS.search(line):
            yield f"line {line_number}: forbidden or bad character U+{ord(match[0]):04X}"
        for reference in CHARACTER_REFERENCE.findall(line):
            code = int(reference[1:], 16) if reference.startswith("x") else int(reference)
            if code > 0x10FFFF or FORBIDDEN_CHARACTERS.match(chr(code)):
                yield f"line {line_number}: reference to forbidden character &#{reference};"


def _parse_xml(data: bytes) -> tuple[etree._Element | None, list[str]]:
    """The document tree, or the reasons there is none (encoding, well-formedness)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, [f"not UTF-8: {error}"]
    problems = list(_character_problems(text))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)  # entities and network are off
    except etree.XMLSyntaxError as error:
        return None, [*problems, f"not well-formed XML: {error}"]
    declaration = re.match(rb"<\?xml[^>]*encoding=['\"]([^'\"]+)", data)
    if declaration and declaration[1].decode().lower() not in ("utf-8", "utf8"):
        problems.append(f"declared encoding {declaration[1].decode()!r} is not UTF-8")
    return root, problems


def _duplicate_children(where: str, element: etree._Element, names: Iterable[str]) -> Iterator[str]:
    """Elements that may appear only once per parent."""
    counts = Counter(child.tag for child in element)
    for name in names:
        if counts[name] > 1:
            yield f"{where}: {_short(name)} appears {counts[name]} times"


def _short(tag: Any) -> str:
    """A readable name for a qualified tag."""
    text = str(tag)
    for namespace, prefix in ((ATOM, "atom:"), (CONTENT, "content:"), (DC, "dc:")):
        text = text.replace(f"{{{namespace}}}", prefix)
    return text


def _raw_lines(element: etree._Element, lines: list[str]) -> list[str]:
    """The source lines an element spans, to see how its text was written."""
    start: int = getattr(element, "sourceline", None) or 1
    return lines[start - 1 : start + (element.text or "").count("\n")]


def plain_text_problems(where: str, element: etree._Element, lines: list[str]) -> Iterator[str]:
    """Text that readers could take for HTML (the validator's 'contains HTML' rules).

    An end tag of an HTML element always counts; entity-like text and ``<``
    before a letter count unless written with hexadecimal references (RSS Profile).
    """
    text = element.text or ""
    if len(element):
        yield f"{where}: holds child elements where plain text belongs"
    if any(tag.lower() in SAFE_ELEMENTS | UNSAFE_ELEMENTS for tag in END_TAG.findall(text)):
        yield f"{where}: plain text contains an HTML end tag: {text!r}"
        return
    hex_written = any("&#x" in line for line in _raw_lines(element, lines))
    entity = any(
        name in name2codepoint or name == "apos" or not name.isalpha()
        for name in ENTITY_LIKE.findall(text)
    )
    if (entity or MARKUP_LIKE.search(text)) and not hex_written:
        yield f"{where}: plain text looks like HTML; write & and < as &#x26; and &#x3C;: {text!r}"


def _html_element_problems(where: str, element: etree._Element) -> Iterator[str]:
    """One element of content HTML: allowed tag, safe attributes, absolute URLs."""
    tag = str(element.tag).lower()
    if tag not in SAFE_ELEMENTS:
        yield f"{where}: unsafe or non-HTML element <{tag}> in content"
    for name, value in element.attrib.items():
        yield from _html_attribute_problems(where, tag, str(name).lower(), str(value))


def _html_attribute_problems(where: str, tag: str, name: str, value: str) -> Iterator[str]:
    """One attribute of content HTML: no event handlers, scripts, odd styles or relative URLs."""
    if name.startswith("on"):
        yield f"{where}: event handler attribute {name}= on <{tag}>"
    elif name == "style":
        if not SIMPLE_STYLE.match(value) or "url" in value.lower():
            yield f"{where}: dangerous style attribute on <{tag}>: {value!r}"
    elif name not in SAFE_ATTRIBUTES and not name.startswith("data-"):
        yield f"{where}: attribute {name}= on <{tag}> is not safe HTML for feeds"
    if name in URL_ATTRIBUTES or name == "srcset":
        urls = (
            [c.split()[0] for c in value.split(",") if c.strip()] if name == "srcset" else [value]
        )
        for url in urls:
            yield from _content_url_problems(where, tag, name, url.strip())


def _content_url_problems(where: str, tag: str, name: str, url: str) -> Iterator[str]:
    """URLs in content must be absolute (relative ones are warnings) and not scripts."""
    if url.lower().replace(" ", "").startswith(DANGEROUS_SCHEMES):
        yield f"{where}: script URL in <{tag} {name}=>: {url!r}"
    elif not SCHEME.match(url):
        yield f"{where}: relative URL in <{tag} {name}=>: {url!r}"


def html_problems(where: str, markup: str) -> Iterator[str]:
    """Escaped HTML content (description, content:encoded, Atom html, content_html)."""
    if not markup.strip():
        return
    if "<?import" in markup.lower():
        yield f"{where}: <?import in content"
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError) as error:
        yield f"{where}: content is not HTML: {error}"
        return
    for element in root.iterdescendants():
        if isinstance(element.tag, str):
            yield from _html_element_problems(where, element)


def _escaped_html_problems(where: str, element: etree._Element) -> Iterator[str]:
    """HTML must be escaped (a text node), not raw child elements, and be safe."""
    if len(element):
        names = ", ".join(sorted({_short(child.tag) for child in element}))
        yield f"{where}: raw markup (child elements {names}); HTML must be escaped"
    yield from html_problems(where, element.text or "")


# -- RSS 2.0 -------------------------------------------------------------------------------


def check_rss(data: bytes, served_at: str) -> list[str]:
    """Violations of the validator's RSS 2.0 rules in ``data``, served at ``served_at``."""
    root, problems = _parse_xml(data)
    if root is None:
        return problems
    lines = data.decode("utf-8").split("\n")
    return problems + list(_rss_problems(root, served_at, lines))


def _rss_problems(root: etree._Element, served_at: str, lines: list[str]) -> Iterator[str]:
    """The whole RSS document: root, channel, items."""
    if root.tag != "rss" or root.get("version") != "2.0":
        yield f"root is <{_short(root.tag)} version={root.get('version')!r}>, not RSS 2.0"
        return
    channels = root.findall("channel")
    if len(channels) != 1:
        yield f"rss has {len(channels)} channel elements, not one"
        return
    channel = channels[0]
    yield from _channel_problems(channel, served_at, lines)
    guids: Counter[str] = Counter()
    for number, item in enumerate(channel.iterfind("item"), start=1):
        yield from _item_problems(f"item {number}", item, lines)
        guid = item.findtext("guid")
        if guid is not None:
            guids[guid.strip()] += 1
    for guid, count in guids.items():
        if count > 1:
            yield f"guid {guid!r} is used by {count} items (guids must be unique)"


def _channel_problems(channel: etree._Element, served_at: str, lines: list[str]) -> Iterator[str]:
    """Channel metadata: required elements, self link, dates, plain text, order."""
    for name in ("title", "link", "description"):
        if channel.find(name) is None:
            yield f"channel: missing <{name}>"
    if channel.find("language") is None:
        yield "channel: missing <language>"
    yield from _duplicate_children(
        "channel",
        channel,
        ("title", "link", "description", "language", "lastBuildDate", "pubDate", "ttl", "docs"),
    )
    yield from absolute_url_problems("channel link", channel.findtext("link"))
    for name in ("title", "description"):
        if (element := channel.find(name)) is not None:
            yield from plain_text_problems(f"channel {name}", element, lines)
    for name in ("lastBuildDate", "pubDate"):
        if (element := channel.find(name)) is not None:
            yield from rfc822_problems(f"channel {name}", element.text)
    if (ttl := channel.findtext("ttl")) is not None and not ttl.strip().isdigit():
        yield f"channel ttl: {ttl!r} is not a positive integer"
    yield from _rss_atom_link_problems(channel, served_at)
    yield from _misplaced_metadata("channel", channel, "item")


def _misplaced_metadata(where: str, parent: etree._Element, item_tag: str) -> Iterator[str]:
    """Feed metadata after the first item is reported by the validator."""
    seen_item = False
    for child in parent:
        if child.tag == item_tag:
            seen_item = True
        elif seen_item and isinstance(child.tag, str):
            yield f"{where}: <{_short(child.tag)}> comes after the items"


def _rss_atom_link_problems(channel: etree._Element, served_at: str) -> Iterator[str]:
    """The RSS channel's atom:link elements: one self link where the feed is served."""
    links = channel.findall(f"{{{ATOM}}}link")
    yield from _link_relation_problems("channel", links)
    selves = [link for link in links if link.get("rel") == "self"]
    if not selves:
        yield 'channel: missing <atom:link rel="self">'
    yield from _self_link_problems("channel", selves, served_at)


def _self_link_problems(where: str, selves: list[etree._Element], served_at: str) -> Iterator[str]:
    """A self link must say where the feed is served, with an XML feed type."""
    if len(selves) > 1:
        yield f"{where}: {len(selves)} self links"
    for link in selves:
        if link.get("href") != served_at:
            yield f"{where}: self link {link.get('href')!r} is not where it is served ({served_at})"
        if link.get("type") and link.get("type") not in XML_FEED_TYPES:
            yield f"{where}: self link type {link.get('type')!r} is not a feed type"


def _link_relation_problems(where: str, links: list[etree._Element]) -> Iterator[str]:
    """Atom links: registered relations, absolute hrefs, valid lengths and types."""
    for link in links:
        rel = link.get("rel", "alternate")
        if rel not in ATOM_LINK_RELATIONS and not ABSOLUTE_URI.match(rel):
            yield f"{where}: unregistered link relation {rel!r}"
        yield from absolute_url_problems(f"{where} link rel={rel}", link.get("href"))
        if (kind := link.get("type")) is not None and not MEDIA_TYPE.match(kind):
            yield f"{where}: link rel={rel} has invalid type {kind!r}"
        if (length := link.get("length")) is not None and not length.isdigit():
            yield f"{where}: link rel={rel} length {length!r} is not a non-negative integer"
        if (link.text or "").strip():
            yield f"{where}: link rel={rel} has text; links carry data in attributes"


def _item_problems(where: str, item: etree._Element, lines: list[str]) -> Iterator[str]:
    """One RSS item: guid, link, dates, text, HTML, enclosure, author."""
    if item.find("title") is None and item.find("description") is None:
        yield f"{where}: has neither title nor description"
    yield from _duplicate_children(
        where,
        item,
        ("title", "link", "description", f"{{{CONTENT}}}encoded", "pubDate", "guid", "author"),
    )
    yield from _guid_problems(where, item.find("guid"))
    if (link := item.find("link")) is not None:
        yield from absolute_url_problems(f"{where} link", link.text)
    if (title := item.find("title")) is not None:
        if not (title.text or "").strip():
            yield f"{where}: blank title"
        yield from plain_text_problems(f"{where} title", title, lines)
    for category in item.iterfind("category"):
        if not (category.text or "").strip():
            yield f"{where}: blank category"
        yield from plain_text_problems(f"{where} category", category, lines)
    if (pub_date := item.find("pubDate")) is not None:
        yield from rfc822_problems(f"{where} pubDate", pub_date.text)
    yield from _item_html_problems(where, item)
    yield from _enclosure_problems(where, item.findall("enclosure"))
    yield from _author_problems(where, item)


def _guid_problems(where: str, guid: etree._Element | None) -> Iterator[str]:
    """Every item needs a guid; a guid that is not a URL needs isPermaLink="false"."""
    if guid is None:
        yield f"{where}: missing guid"
        return
    value = (guid.text or "").strip()
    if not value:
        yield f"{where}: blank guid"
        return
    permalink = guid.get("isPermaLink", "true")
    if permalink not in ("true", "false"):
        yield f"{where}: guid isPermaLink={permalink!r} is not true or false"
    elif permalink == "true":
        if value.lower().startswith(("tag:", "urn:uuid:")):
            yield f'{where}: guid {value!r} is not a URL but lacks isPermaLink="false"'
        else:
            yield from absolute_url_problems(f"{where} guid (a permalink)", value, http=True)
    elif len(value) < 9 and value.isdigit():
        yield f"{where}: guid {value!r} is not sufficiently unique"


def _item_html_problems(where: str, item: etree._Element) -> Iterator[str]:
    """description and content:encoded hold escaped, safe HTML; description comes first."""
    description = item.find("description")
    content = item.find(f"{{{CONTENT}}}encoded")
    if description is not None:
        yield from _escaped_html_problems(f"{where} description", description)
    if content is not None:
        if description is None or item.index(description) > item.index(content):
            yield f"{where}: content:encoded without a description before it"
        yield from _escaped_html_problems(f"{where} content:encoded", content)


def _enclosure_problems(where: str, enclosures: list[etree._Element]) -> Iterator[str]:
    """An enclosure needs url (http), type and length (0 when unknown); one per item."""
    if len(enclosures) > 1:
        yield f"{where}: {len(enclosures)} enclosures (readers take one)"
    for enclosure in enclosures:
        yield from absolute_url_problems(f"{where} enclosure url", enclosure.get("url"), http=True)
        length = enclosure.get("length")
        if length is None:
            yield f"{where}: enclosure without length"
        elif not length.isdigit():
            yield f"{where}: enclosure length {length!r} is not a non-negative integer"
        kind = enclosure.get("type")
        if kind is None:
            yield f"{where}: enclosure without type"
        elif not MEDIA_TYPE.match(kind):
            yield f"{where}: enclosure type {kind!r} is not a media type"


def _author_problems(where: str, item: etree._Element) -> Iterator[str]:
    """RSS author must be 'email (Name)'; names alone belong in dc:creator, not both."""
    author = item.find("author")
    if author is None:
        return
    if item.find(f"{{{DC}}}creator") is not None:
        yield f"{where}: both author and dc:creator"
    if not EMAIL_WITH_NAME.match((author.text or "").strip()):
        yield f"{where}: author {author.text!r} is not 'email (Name)'; use dc:creator for names"


# -- Atom 1.0 --------------------------------------------------------------------------------


def _atom(name: str) -> str:
    """The qualified name of an Atom element."""
    return f"{{{ATOM}}}{name}"


def check_atom(data: bytes, served_at: str) -> list[str]:
    """Violations of the validator's Atom 1.0 rules in ``data``, served at ``served_at``."""
    root, problems = _parse_xml(data)
    if root is None:
        return problems
    if root.tag != _atom("feed"):
        return [*problems, f"root is <{_short(root.tag)}>, not an Atom feed"]
    lines = data.decode("utf-8").split("\n")
    return problems + list(_feed_problems(root, served_at, lines))


def _feed_problems(feed: etree._Element, served_at: str, lines: list[str]) -> Iterator[str]:
    """The Atom feed element and its entries."""
    yield from _atom_metadata_problems("feed", feed, lines)
    yield from _atom_links_problems("feed", feed)
    selves = [link for link in feed.iterfind(_atom("link")) if link.get("rel") == "self"]
    if not selves:
        yield 'feed: missing <link rel="self">'
    yield from _self_link_problems("feed", selves, served_at)
    yield from _misplaced_metadata("feed", feed, _atom("entry"))
    feed_has_author = feed.find(_atom("author")) is not None
    entries = feed.findall(_atom("entry"))
    for number, entry in enumerate(entries, start=1):
        where = f"entry {number}"
        yield from _atom_metadata_problems(where, entry, lines)
        yield from _atom_links_problems(where, entry)
        yield from _entry_problems(where, entry, lines, feed_has_author)
    yield from _repeated_values("entry id", entries, "id")
    yield from _repeated_values("entry updated", entries, "updated")


def _repeated_values(what: str, entries: list[etree._Element], name: str) -> Iterator[str]:
    """Entries sharing an id (duplicates) or an updated date (both warnings)."""
    counts = Counter((entry.findtext(_atom(name)) or "").strip() for entry in entries)
    for value, count in counts.items():
        if value and count > 1:
            yield f"{what} {value!r} is shared by {count} entries"


def _atom_metadata_problems(where: str, element: etree._Element, lines: list[str]) -> Iterator[str]:
    """What feeds and entries share: id, title, updated, text constructs, categories."""
    for name in ("id", "title", "updated"):
        if element.find(_atom(name)) is None:
            yield f"{where}: missing <{name}>"
    yield from _duplicate_children(
        where,
        element,
        [
            _atom(n)
            for n in ("id", "title", "updated", "published", "summary", "content", "subtitle")
        ],
    )
    if (identifier := element.find(_atom("id"))) is not None:
        value = identifier.text or ""
        yield from absolute_url_problems(f"{where} id", value.strip())
        yield from _canonical_problems(f"{where} id", value)
    for name in ("updated", "published"):
        if (date := element.find(_atom(name))) is not None:
            yield from rfc3339_problems(f"{where} {name}", date.text)
    for name in ("title", "subtitle", "summary", "rights", "content"):
        if (construct := element.find(_atom(name))) is not None:
            yield from _text_construct_problems(f"{where} {name}", construct, lines)
    for category in element.iterfind(_atom("category")):
        if not (category.get("term") or "").strip():
            yield f"{where}: category without term"


def _text_construct_problems(
    where: str, element: etree._Element, lines: list[str]
) -> Iterator[str]:
    """Atom text: declared type, escaped HTML, no undeclared markup, not blank."""
    kind = element.get("type", "text")
    if element.get("src") is None and not (element.text or "").strip() and not len(element):
        yield f"{where}: blank"
    if kind == "html":
        yield from _escaped_html_problems(where, element)
    elif kind == "text":
        yield from plain_text_problems(where, element, lines)
    elif kind != "xhtml" and not (where.endswith("content") and MEDIA_TYPE.match(kind)):
        yield f"{where}: unknown type {kind!r}"


def _atom_links_problems(where: str, element: etree._Element) -> Iterator[str]:
    """Links of a feed or entry: relations, one alternate per type, proper enclosures."""
    links = element.findall(_atom("link"))
    yield from _link_relation_problems(where, links)
    alternates = Counter(
        (link.get("type"), link.get("hreflang"))
        for link in links
        if link.get("rel", "alternate") == "alternate"
    )
    for (kind, language), count in alternates.items():
        if count > 1:
            yield f"{where}: {count} rel=alternate links with type {kind!r}, hreflang {language!r}"
    for link in links:
        if link.get("rel") == "enclosure" and not link.get("type"):
            yield f"{where}: enclosure link without type"


def _entry_problems(
    where: str, entry: etree._Element, lines: list[str], feed_has_author: bool
) -> Iterator[str]:
    """What only entries need: an author, and content or a summary with an alternate link."""
    if entry.find(_atom("author")) is None and not feed_has_author:
        yield f"{where}: no author (and no feed author to inherit)"
    for author in entry.iterfind(_atom("author")):
        if not (author.findtext(_atom("name")) or "").strip():
            yield f"{where}: author without name"
    links = entry.findall(_atom("link"))
    has_alternate = any(link.get("rel", "alternate") == "alternate" for link in links)
    if entry.find(_atom("content")) is None:
        if entry.find(_atom("summary")) is None:
            yield f"{where}: neither content nor summary"
        if not has_alternate:
            yield f"{where}: no content and no alternate link"
    if not has_alternate:
        yield f"{where}: no rel=alternate link to the article"


# -- JSON Feed 1.1 ---------------------------------------------------------------------------


class SchemaMissing(FileNotFoundError):
    """The JSON Feed schema is not installed; tests/setup/tools.sh installs it."""


@cache
def json_feed_schema() -> dict[str, Any]:
    """The JSON Feed 1.1 schema from the npm package, or SchemaMissing."""
    if not JSON_SCHEMA.exists():
        raise SchemaMissing(
            f"{JSON_SCHEMA} is missing: run tests/setup/tools.sh "
            "(npm install --prefix .cache/npm jsonfeed-schema@0.5.0)"
        )
    schema: dict[str, Any] = json.loads(JSON_SCHEMA.read_text("utf-8"))
    return schema


def require_json_schema() -> None:
    """Make sure the schema is there: fail under CI (``CI`` set), skip elsewhere."""
    try:
        json_feed_schema()
    except SchemaMissing as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


def check_json(data: bytes, served_at: str) -> list[str]:
    """Violations of the JSON Feed 1.1 schema and rules in ``data``, served at ``served_at``.

    Raises SchemaMissing when the schema is not installed: a check that
    cannot run must not pass.
    """
    from jsonschema import Draft7Validator

    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"not UTF-8 JSON: {error}"]
    validator = Draft7Validator(json_feed_schema(), format_checker=Draft7Validator.FORMAT_CHECKER)
    problems = [
        f"schema: {'/'.join(map(str, error.absolute_path)) or '(feed)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]
    if isinstance(document, dict):
        problems += list(_json_rules(document, served_at))
    return problems


def _json_rules(feed: dict[str, Any], served_at: str) -> Iterator[str]:
    """What the schema cannot say: version 1.1, served URL, unique ids, safe content."""
    if feed.get("version") != JSON_FEED_VERSION:
        yield f"version is {feed.get('version')!r}, not {JSON_FEED_VERSION}"
    if feed.get("feed_url") != served_at:
        yield f"feed_url {feed.get('feed_url')!r} is not where it is served ({served_at})"
    items = [item for item in feed.get("items", []) if isinstance(item, dict)]
    ids = Counter(str(item.get("id")) for item in items)
    for value, count in ids.items():
        if count > 1:
            yield f"item id {value!r} is used by {count} items"
    for number, item in enumerate(items, start=1):
        yield from _json_item_rules(f"item {number}", item)


def _json_item_rules(where: str, item: dict[str, Any]) -> Iterator[str]:
    """One JSON Feed item: a real id, safe absolute HTML, plausible dates, http links."""
    if not str(item.get("id", "")).strip():
        yield f"{where}: blank id"
    if isinstance(html := item.get("content_html"), str):
        yield from html_problems(f"{where} content_html", html)
    for name in ("url", "image"):
        if name in item:
            yield from absolute_url_problems(f"{where} {name}", item[name], http=True)
    for name in ("date_published", "date_modified"):
        if isinstance(item.get(name), str):
            yield from rfc3339_problems(f"{where} {name}", item[name])
    for name in ("title", "summary"):
        if isinstance(item.get(name), str) and FORBIDDEN_CHARACTERS.search(item[name]):
            yield f"{where} {name}: forbidden or bad characters"
