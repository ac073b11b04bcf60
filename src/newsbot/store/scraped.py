"""Scraped news pages: the plain text a scraper saved of a news site's article page.

Such a page has no markup, only the fixed words the site prints around the
article, in the page's language: a promo block (``Don't miss``, then headlines
each followed by ``Read more``), the section line (``france 24 Europe``), the
headline, a photo credit and caption, the byline, ``Latest update :``, the
body, ``Date created :`` and the editors' related headlines, each followed by
``Read more``.

The parser looks for those landmarks through the keyword tables of
`newsbot.store.landmarks` (one per language) and reads whatever
lies between them, so a page lacking a part (no promo, no photo, no related
block) still reads. A page whose headline, date or body text cannot be found
is refused with the line and field where they were expected: an article page
with nothing to read is not worth publishing.

What was found goes through `fields.build` like the front matter of a
Markdown article, so both readers give the same kind of `Article`. The body is
Markdown whose text is escaped: what the page says is shown, never interpreted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from newsbot.articles import Article
from newsbot.errors import ArticleError, Problem
from newsbot.store import landmarks
from newsbot.store.fields import Site, Source, build
from newsbot.store.scan import SCRAPED_SUFFIXES

SUFFIXES = SCRAPED_SUFFIXES


# The section line is "<outlet> <section>"; an outlet not listed here still reads,
# its whole short line is then taken as the section.
OUTLETS = ("France 24", "RFI", "Monte Carlo Doualiya")

MAX_TITLE_BLOCKS = 3  # section line, headline and standfirst may precede the photo or byline
MAX_SECTION_WORDS = 3  # a short first line before the headline is a section line
MAX_BYLINE = 120  # characters; longer lines opening with "By" are body text
MAX_SUBHEADING = 100  # characters
MAX_CREDIT = 80  # characters of a closing "(FRANCE 24 with AFP)"
SENTENCE_ENDS = ".!?…:;,。！？؟"
CLOSERS = "\"'”’»)]"
# Every character that can start emphasis, code, a link, raw HTML, strikethrough, a
# table cell or a heading; an "&" that would read as an entity; and the ":" of "://"
# and the "." of "www." that would make GFM turn a bare address into a link.
_INLINE = re.compile(r"[\\`*_\[\]<>~|#]|&(?=#?\w+;)|:(?=//)|(?<=[Ww]{3})\.")
_LIST_NUMBER = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_CREDIT_LINE = re.compile(r"^\(.+\)$")
_PHOTO_CREDIT = re.compile(r"^(?:©|\(c\)\s)", re.IGNORECASE)
# How a saved HTML document opens; the text of a page never does.
_HTML_START = re.compile(
    r"<(?:!doctype\s|html[\s>]|head[\s>]|body[\s>]|\?xml\s|!--)", re.IGNORECASE
)
# What `str.strip` takes for spaces, and the invisible characters a page's HTML leaves at the
# ends of lines (zero-width space, joiners, word joiner, byte-order mark, soft hyphen): a line
# of nothing else is blank. One `strip` with them all (a regex would be quadratic in spaces).
EDGES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
    "\u200b\u200c\u200d\u2060\ufeff\u00ad"
)


@dataclass(frozen=True, slots=True)
class _Block:
    """Consecutive non-blank lines, joined; a landmark line is always a block of its own."""

    line: int
    text: str
    single: bool
    mark: landmarks.Mark | None = None


@dataclass(slots=True)
class _Page:
    """What has been found so far, as front-matter fields with the line each came from."""

    fields: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    langs: Counter[str] = field(default_factory=Counter)
    outlet: str | None = None

    def set(self, name: str, value: Any, line: int) -> None:
        """Record a field; the first occurrence wins, as the page shows it first."""
        if value and name not in self.fields:
            self.fields[name] = value
            self.lines[name] = line

    def add(self, name: str, values: list[str], line: int) -> None:
        """Append to a list field (authors, related)."""
        self.fields.setdefault(name, []).extend(values)
        self.lines.setdefault(name, line)

    def note(self, mark: landmarks.Mark, line: int) -> None:
        """Count a landmark's language and keep its date, if it has one."""
        self.langs[mark.lang] += 1
        if mark.kind == "created":
            self.set("date", landmarks.iso(mark.value), line)
        elif mark.kind == "updated":
            self.set("updated", landmarks.iso(mark.value), line)


def parse(text: str, source: Source, site: Site) -> tuple[Article, list[Problem]]:
    """The article in a scraped page; raises `ArticleError` when its headline or date is missing."""
    blocks = _blocks(text.removeprefix("\ufeff"))
    _refuse_html(blocks)
    page = _Page()
    start = _skip_promo(blocks, page)
    body_start = _read_header(blocks, start, page)
    body_end = _body_end(blocks, body_start)
    paragraphs = _read_rest(blocks[body_start:body_end], page)
    leftovers = _read_rest(blocks[body_end:], page)
    warnings = _require_date(page, blocks, source)
    warnings += [_ignored(source, block) for block in leftovers]
    if not paragraphs:
        raise ArticleError(
            "no body text found: expected paragraphs after the headline, byline and dates",
            line=_line_of(blocks, body_start),
            field="body",
        )
    if page.langs:
        page.fields["lang"] = page.langs.most_common(1)[0][0]
    article, problems = build(page.fields, page.lines, _markdown(paragraphs), source, site)
    if page.outlet:
        article = replace(article, extra={"outlet": page.outlet})
    return article, warnings + problems


# --- lines to blocks ---------------------------------------------------------------------


def _blocks(text: str) -> list[_Block]:
    """The page as blocks separated by blank lines (lines of spaces, no-break spaces or
    zero-width characters too)."""
    blocks: list[_Block] = []
    pending: list[tuple[int, str]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(EDGES)
        mark = landmarks.mark(line) if line else None
        if line and mark is None:
            pending.append((number, line))
            continue
        blocks.extend(_joined(pending))
        pending = []
        if mark is not None:
            blocks.append(_Block(number, line, single=True, mark=mark))
    blocks.extend(_joined(pending))
    return blocks


def _joined(lines: list[tuple[int, str]]) -> list[_Block]:
    """One block of ``lines`` joined by spaces, or none; a paragraph may be hard-wrapped."""
    if not lines:
        return []
    return [_Block(lines[0][0], " ".join(text for _, text in lines), single=len(lines) == 1)]


def _refuse_html(blocks: list[_Block]) -> None:
    """Refuse a page saved as HTML: its markup would be published as its headline and text."""
    if blocks and _HTML_START.match(blocks[0].text):
        raise ArticleError(
            "an HTML document, not the text of a page: save the page as text",
            line=blocks[0].line,
        )


# --- the parts of the page ---------------------------------------------------------------


def _is_link(blocks: list[_Block], index: int) -> bool:
    """Whether ``blocks[index]`` is a headline followed by "Read more" (a link on the site)."""
    following = blocks[index + 1] if index + 1 < len(blocks) else None
    return (
        blocks[index].mark is None
        and following is not None
        and following.mark is not None
        and following.mark.kind == "read_more"
    )


def _link_mark(blocks: list[_Block], index: int) -> landmarks.Mark:
    """The "Read more" of the link at ``index``; it tells the page's language."""
    mark = blocks[index + 1].mark
    assert mark is not None  # _is_link checked it
    return mark


def _skip_promo(blocks: list[_Block], page: _Page) -> int:
    """Where the article starts: after the promo title and the linked headlines at the top."""
    index = 0
    while index < len(blocks):
        mark = blocks[index].mark
        if _is_link(blocks, index):
            page.note(_link_mark(blocks, index), blocks[index + 1].line)
            index += 2
        elif mark is not None and mark.kind in ("promo", "read_more"):
            page.note(mark, blocks[index].line)
            index += 1
        else:
            break
    return index


def _read_header(blocks: list[_Block], start: int, page: _Page) -> int:
    """Read section, headline, standfirst, photo, byline and dates; where the body starts."""
    anchor = _header_anchor(blocks, start)
    titles = _leading_titles(blocks, start) if anchor is None else blocks[start:anchor]
    expected = blocks[start].line if start < len(blocks) else (blocks[-1].line if blocks else 1)
    _read_titles(titles, page, expected)
    index = start + len(titles)
    while index < len(blocks) and _read_header_part(blocks[index], page):
        index += 1
    return index


def _is_anchor(block: _Block) -> bool:
    """A photo, byline or update line: what follows the headline on every page that has them.

    ``Date created`` is no anchor: most pages print it after the body.
    """
    if block.mark is not None:
        return block.mark.kind == "updated"
    return _photo(block) is not None or _byline(block) is not None


def _header_anchor(blocks: list[_Block], start: int) -> int | None:
    """The first photo, byline or update line right after the titles, if the page has one."""
    for index in range(start, min(start + MAX_TITLE_BLOCKS + 1, len(blocks))):
        if _is_anchor(blocks[index]):
            return index
        if blocks[index].mark is not None:
            return None
    return None


def _leading_titles(blocks: list[_Block], start: int) -> list[_Block]:
    """Without photo, byline or update to lean on: a section line naming an outlet, a headline."""
    titles = [block for block in blocks[start : start + 2] if block.mark is None]
    if len(titles) == 2 and _outlet(titles[0]) is not None:
        return titles
    return titles[:1]


def _read_titles(titles: list[_Block], page: _Page, expected: int) -> None:
    """The section line (if any), the headline and a standfirst (as the summary)."""
    section = _section(titles[0], len(titles)) if titles else None
    if section is not None:
        page.set("section", section[0], titles[0].line)
        page.outlet = section[1]
        titles = titles[1:]
    if not titles:
        raise ArticleError(
            "no headline found: expected at the top of the page, after any promo block",
            line=expected,
            field="title",
        )
    headline, *standfirst = titles
    page.set("title", _single(headline.text), headline.line)
    if standfirst:
        summary = " ".join(_single(block.text) for block in standfirst)
        page.set("summary", summary, standfirst[0].line)


def _outlet(block: _Block) -> tuple[str, str] | None:
    """The outlet a section line opens with, and the rest of the line."""
    words = block.text.split()
    for outlet in OUTLETS:
        wanted = landmarks.key(outlet).replace(" ", "")
        for size in range(1, min(len(words), len(outlet.split())) + 1):
            if landmarks.key(" ".join(words[:size])).replace(" ", "") == wanted:
                return outlet, " ".join(words[size:])
    return None


def _section(block: _Block, count: int) -> tuple[str, str | None] | None:
    """(section, outlet) when the first of ``count`` title blocks is a section line."""
    if count < 2 or not block.single:
        return None
    named = _outlet(block)
    if named is not None:
        return named[1], named[0]
    if len(block.text.split()) <= MAX_SECTION_WORDS:
        return _single(block.text), None
    return None


def _read_header_part(block: _Block, page: _Page) -> bool:
    """Record ``block`` if it is a photo, byline or date line; whether it was."""
    if block.mark is not None:
        if block.mark.kind not in ("updated", "created"):
            return False
        page.note(block.mark, block.line)
        return True
    photo = _photo(block)
    if photo is not None and "image" not in page.fields:
        page.set("image", photo, block.line)
        return True
    byline = _byline(block)
    if byline is None:
        return False
    page.add("author", byline[0], block.line)
    page.langs[byline[1]] += 1
    return True


def _photo(block: _Block) -> dict[str, str] | None:
    """``© Philippe Huguen, AFP | caption`` as an image without address: credit and caption."""
    text = _single(block.text)
    if not _PHOTO_CREDIT.match(text):
        return None
    credit, _, caption = text.partition("|")
    return {"credit": credit.strip(), "caption": caption.strip()}


def _byline(block: _Block) -> tuple[list[str], str] | None:
    """(names, language) of ``Text by A | B`` and its kin; long lines are body text."""
    if not block.single or len(block.text) > MAX_BYLINE or block.text[-1] in SENTENCE_ENDS:
        return None
    words = block.text.split()
    for table in landmarks.LANDMARKS:
        for phrase in table.bylines:
            size = len(phrase.split())
            if len(words) > size and landmarks.key(" ".join(words[:size])).rstrip(
                ":"
            ) == landmarks.key(phrase):
                names = " ".join(words[size:]).lstrip(": ")
                return _names(names, table.conjunctions), table.lang
    return None


def _names(text: str, conjunctions: tuple[str, ...]) -> list[str]:
    words = "|".join(re.escape(word) for word in conjunctions)
    parts = re.split(rf"\s*[|,;/&]\s*|\s+(?:{words})\s+", text, flags=re.IGNORECASE)
    return [part.strip() for part in parts if part.strip()]


def _body_end(blocks: list[_Block], start: int) -> int:
    """Where the body stops: at ``Date created :``, or the end of the page."""
    for index in range(start, len(blocks)):
        mark = blocks[index].mark
        if mark is not None and mark.kind == "created":
            return index
    return len(blocks)


def _read_rest(blocks: list[_Block], page: _Page) -> list[_Block]:
    """The text blocks of ``blocks``; dates and linked headlines go to ``page``.

    A headline followed by "Read more" is a related article chosen by the
    editors, unless it comes after a promo title: then it is site navigation.
    """
    texts: list[_Block] = []
    in_promo = False
    index = 0
    while index < len(blocks):
        block = blocks[index]
        if _is_link(blocks, index):
            if not in_promo:
                page.add("related", [_single(block.text)], block.line)
            page.note(_link_mark(blocks, index), blocks[index + 1].line)
            index += 2
            continue
        in_promo = block.mark is not None and block.mark.kind == "promo"
        if block.mark is None:
            texts.append(block)
        else:
            page.note(block.mark, block.line)
        index += 1
    return texts


def _require_date(page: _Page, blocks: list[_Block], source: Source) -> list[Problem]:
    """Fall back on the update date when the creation date is missing; refuse a dateless page."""
    if "date" in page.fields:
        return []
    if "updated" not in page.fields:
        labels = " or ".join(f"'{table.created[0]} :'" for table in landmarks.LANDMARKS)
        raise ArticleError(
            f"no date found: expected a line such as {labels} before the related headlines",
            line=blocks[-1].line if blocks else 1,
            field="date",
        )
    page.set("date", page.fields["updated"], page.lines["updated"])
    message = "no creation date; the latest update is used as the date"
    return [Problem(source.path, message, line=page.lines["updated"], field="date")]


def _line_of(blocks: list[_Block], index: int) -> int:
    """The line of ``blocks[index]``, or of the last block when ``index`` is past the end."""
    if index < len(blocks):
        return blocks[index].line
    return blocks[-1].line if blocks else 1


def _ignored(source: Source, block: _Block) -> Problem:
    excerpt = block.text if len(block.text) <= 60 else block.text[:57] + "..."
    return Problem(source.path, f"text after the article ignored: {excerpt!r}", line=block.line)


def _single(text: str) -> str:
    """A one-line value (title, name, headline): each run of spaces, no-break ones too, as one."""
    return " ".join(text.split())


# --- the body as Markdown ----------------------------------------------------------------


def _markdown(paragraphs: list[_Block]) -> str:
    """Paragraphs, subheadings as ``##`` headings, and the agency credit emphasised last."""
    credit = paragraphs[-1] if paragraphs and _is_credit(paragraphs[-1]) else None
    texts = paragraphs[:-1] if credit is not None else paragraphs
    parts = [
        f"## {escape(_single(block.text))}"
        if 0 < index < len(texts) - 1 and _is_subheading(block)
        else escape(block.text)
        for index, block in enumerate(texts)
    ]
    if credit is not None:
        parts.append(f"*{escape(_single(credit.text))}*")
    return "\n\n".join(parts)


def _is_subheading(block: _Block) -> bool:
    """A short single line that does not end a sentence, between two paragraphs."""
    text = block.text.rstrip(CLOSERS + " ")
    return block.single and len(block.text) <= MAX_SUBHEADING and text[-1:] not in SENTENCE_ENDS


def _is_credit(block: _Block) -> bool:
    """The closing ``(FRANCE 24 with AFP)``: a short line wholly in brackets."""
    return block.single and len(block.text) <= MAX_CREDIT and bool(_CREDIT_LINE.match(block.text))


def escape(text: str) -> str:
    """``text`` as Markdown that renders as exactly ``text``, on one line of a paragraph.

    A backslash goes before each character Markdown could read as markup
    (see `_INLINE`) and before what would open a list. Bare web addresses
    therefore stay text, not links: the page showed them as text, and a link
    made by GFM from the raw text would swallow the escapes next to it.
    """
    escaped = _INLINE.sub(lambda match: "\\" + match.group(), text)
    escaped = _LIST_NUMBER.sub(r"\1\\\2", escaped)
    if escaped.startswith(("-", "+")):
        escaped = "\\" + escaped
    return escaped
