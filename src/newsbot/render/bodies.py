"""Article bodies as HTML that every reader can show and no reader can be harmed by.

Markdown is rendered with cmark-gfm (GitHub's C implementation of CommonMark),
then sanitised with nh3 (the Rust ammonia sanitiser): no script, iframe, style
or event-handler attribute survives, and every link and image address is made
absolute against the article's own URL so it works inside any feed reader.

Character references are decoded by the sanitiser's HTML parser, so ``&#x1b;``
becomes a raw control character; what XML forbids is removed after it, and
bidirectional controls are closed at the end of each block (a paragraph, a
list item, a cell) and of each attribute value, so none reaches the page
around the body.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import nh3

from newsbot.articles import strip_forbidden
from newsbot.bidi import CONTROLS, Balancer, balance
from newsbot.render import cmark as markdown_c

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl",
    "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "ol": {"start"},
}
_URL_ATTRIBUTES = {"href", "src"}
_SCHEMES = {"http", "https", "mailto"}
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</(?:p|h[1-6]|li|td|th|div|blockquote|figcaption)>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"<p(?:\s[^>]*)?>(.*?)</p>", re.DOTALL)
# The sanitiser writes attribute values in double quotes with "<", ">" and '"' escaped.
_MARKUP = re.compile(r"(<[^>]*>)")
_TAG_NAME = re.compile(r"</?([a-z0-9]+)")
_ATTRIBUTE_VALUE = re.compile(r'"([^"]*)"')
# Where a browser starts a new bidirectional paragraph: the edges of block elements.
_BLOCKS = frozenset(
    "blockquote caption dd div dl dt figcaption figure h1 h2 h3 h4 h5 h6 hr li ol p pre "
    "table tbody td tfoot th thead tr ul".split()
)


def render(markdown: str, base_url: str) -> str:
    """Sanitised HTML for a Markdown body whose relative links are relative to ``base_url``."""
    # GFM without its tag filter: nh3 removes dangerous elements with their content,
    # where the tag filter would leave "<script>" visible as text.
    raw = markdown_c.to_html(markdown)
    return sanitise(raw, base_url)


def sanitise(html: str, base_url: str) -> str:
    """``html`` with only harmless elements, and every address absolute."""

    def absolute(element: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES:
            return value
        resolved = urljoin(base_url, value.strip())
        return resolved if urlsplit(resolved).scheme in _SCHEMES else None

    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        attribute_filter=absolute,
        link_rel="noopener",
        strip_comments=True,
    )
    return _balance_blocks(strip_forbidden(clean)).strip()


def _balance_blocks(html: str) -> str:
    """Sanitised ``html`` with bidirectional controls balanced per block and per attribute."""
    if not CONTROLS.search(html):
        return html
    balancer = Balancer()
    pieces: list[str] = []
    for index, piece in enumerate(_MARKUP.split(html)):
        if index % 2 == 0:  # text between tags
            pieces.append(balancer.feed(piece))
            continue
        name = _TAG_NAME.match(piece)
        if name is not None and name.group(1) in _BLOCKS:
            pieces.append(balancer.close())
        pieces.append(_ATTRIBUTE_VALUE.sub(lambda value: f'"{balance(value.group(1))}"', piece))
    pieces.append(balancer.close())
    return "".join(pieces)


def paragraphs(html: str) -> list[str]:
    """Plain text of each paragraph of sanitised HTML (headings and lists left out).

    Leads and summaries are made of paragraphs: a subheading without a full stop
    would otherwise run into the sentence after it.
    """
    return [text for match in _PARAGRAPH.finditer(html) if (text := to_text(match.group(1)))]


def lead_text(html: str) -> str:
    """The text a post's lead is cut from: the `paragraphs`, a blank line apart."""
    return "\n\n".join(paragraphs(html))


def to_text(html: str) -> str:
    """Plain text of sanitised HTML: tags dropped, entities decoded, spaces collapsed."""
    # Inline tags vanish without a trace ("<em>a</em>." stays "a."); line breaks and
    # block boundaries (newlines in the rendered HTML) become spaces.
    return " ".join(unescape(_TAG.sub("", _BREAK.sub(" ", html))).split())
