"""Article bodies as HTML that every reader can show and no reader can be harmed by.

Markdown is rendered with cmark-gfm (GitHub's C implementation of CommonMark),
then sanitised with nh3 (the Rust ammonia sanitiser): no script, iframe, style
or event-handler attribute survives, and every link and image address is made
absolute against the article's own URL so it works inside any feed reader.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import nh3

from newsbot import markdown_c

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

    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        attribute_filter=absolute,
        link_rel="noopener",
        strip_comments=True,
    ).strip()


def paragraphs(html: str) -> list[str]:
    """Plain text of each paragraph of sanitised HTML (headings and lists left out).

    Leads and summaries are made of paragraphs: a subheading without a full stop
    would otherwise run into the sentence after it.
    """
    return [text for match in _PARAGRAPH.finditer(html) if (text := to_text(match.group(1)))]


def to_text(html: str) -> str:
    """Plain text of sanitised HTML: tags dropped, entities decoded, spaces collapsed."""
    # Inline tags vanish without a trace ("<em>a</em>." stays "a."); line breaks and
    # block boundaries (newlines in the rendered HTML) become spaces.
    return " ".join(unescape(_TAG.sub("", _BREAK.sub(" ", html))).split())
