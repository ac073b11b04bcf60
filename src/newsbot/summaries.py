"""The one summary stage: what feeds, pages and posts show as an article's summary.

Two summaries, because their readers differ, and both are made here:

* `summary_text`, for feeds and article pages (and link previews): the
  editors' summary, else `excerpt`, the first sentences of the body within
  `EXCERPT_LIMIT` characters, else the title; plain text that XML can carry.
* `lead`, for posts: the opening sentences of the text within a budget of
  grapheme clusters, as Mastodon counts a status.

They are not merged: the excerpt is cut from the rendered body (HTML) at
``.``, ``!``, ``?`` or ``…`` followed by a space, the lead from the Markdown
text with pysbd, and published feeds and pages keep the words they have.

A status is measured in grapheme clusters (what a reader sees as one
character: a flag or an emoji with a skin tone is one), so a lead's budget is too.

Sentences come from pysbd, which knows the abbreviations, initials, decimals,
currencies and numbered lists of news text in many languages. It has blind
spots and, in rare cases, drops text from its output; both are handled around
it rather than by a splitter of our own:

* pysbd's pieces are used only to find *where* sentences start; the sentences
  themselves are always cut from the original paragraph, so no text is lost;
* a few typographic cases it misses (see `_extra_cuts`, `_is_false_cut`) are
  added or undone by a small post-pass.

A quotation of several sentences stays one sentence, as pysbd has it: it is
one reported-speech sentence (``"It exploded. I mean, a ball of flames," he
said.``), and cutting it would leave a quote without its speaker.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import lxml.html
import pysbd  # type: ignore[import-untyped]
import regex  # type: ignore[import-untyped]

from newsbot.articles import Article, primary_language
from newsbot.bidi import balance

ELLIPSIS = "…"
FALLBACK_LANGUAGE = "en"

_GRAPHEME = regex.compile(r"\X")
# What can join code points into one cluster (UAX #29): CR LF, and the break properties
# of every rule that does not break. Text without any is one cluster per code point.
# None of these properties has an ASCII character, so only the text's other characters
# are looked at (`_ASCII_RUNS` removed): the property test costs ~50 ns a character.
_JOINING = regex.compile(
    r"[\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=ZWJ}"
    r"\p{Grapheme_Cluster_Break=Regional_Indicator}\p{Grapheme_Cluster_Break=Prepend}"
    r"\p{Grapheme_Cluster_Break=SpacingMark}\p{Grapheme_Cluster_Break=L}"
    r"\p{Grapheme_Cluster_Break=V}\p{Grapheme_Cluster_Break=T}"
    r"\p{Grapheme_Cluster_Break=LV}\p{Grapheme_Cluster_Break=LVT}]"
)
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")
_PARAGRAPH_BREAK = regex.compile(r"\n[ \t\r\f\v]*\n")
# Only ASCII whitespace is collapsed: the no-break spaces of French typography
# ("fini !") must keep the punctuation on the same line.
_SPACES = regex.compile(r"[ \t\r\n\f\v]+")

# A closing quotation mark after the sentence's last punctuation. pysbd knows
# ” and ", but not the French » (often after a no-break space) nor ’.
_CLOSER_CUT = regex.compile(r"(?<=[.!?…][ \u00a0\u202f]?[»’])\s+(?=[^\p{Ll}\s])")
# German closes quotations with “ and «: „Es ist vorbei.“ / »Es ist vorbei.«
_GERMAN_CLOSER_CUT = regex.compile(r"(?<=[.!?…][“«])\s+(?=[^\p{Ll}\s])")
# A straight double quote after the last punctuation, when it closes (an even
# number of them so far): pysbd misses it in German.
_STRAIGHT_CLOSER_CUT = regex.compile(r'(?<=[.!?…]")\s+(?=[^\p{Ll}\s])')
# pysbd ends a sentence after "..." followed by a capital, but not after the
# single character "…"; treat both alike.
_ELLIPSIS_CUT = regex.compile(r"(?<=\S…)\s+(?=[«“‘\"„(\[]?\p{Lu})")
# A sentence that is only the marker of a list item ("i.", "2)", "(b)").
_LIST_MARKER = regex.compile(r"\(?(?:\d{1,3}|[ivxlcdm]{1,6}|\p{L})[.)]", regex.IGNORECASE)
# A single initial, possibly hyphenated as in French (J.-P.): pysbd keeps
# "J. R. R. Tolkien" together in English but cuts after "J.-P." in French.
_INITIAL_END = regex.compile(r"(?:^|\s)\p{Lu}\.(?:-\p{Lu}\.)?$")
_QUOTE_PAIRS = {
    "de": (("„", "“"), ("»", "«")),
}
_DEFAULT_QUOTE_PAIRS = (("“", "”"), ("«", "»"))
# Characters that read badly right before an ellipsis: "the deal, …", "said: …".
_DANGLING = " \t\n,;:.–—-/([{“‘«„\"'\u00a0\u202f"


EXCERPT_LIMIT = 300
"""Characters in a summary made from the body when the article has none."""

# Everything XML 1.0 forbids, plus DEL, C1 controls and U+FFFD, which the feed
# validator reports as bad characters.
_UNSAFE_CHARACTERS = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffc\U00010000-\U0010ffff]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+")
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 "
    "h6 header hr li main nav ol p pre section table td th tr ul".split()
)
_TEXT_TAGS = _BLOCK_TAGS | frozenset(
    "a abbr b caption cite code del em i img ins kbd mark q s small span strong sub sup tbody "
    "tfoot thead time u".split()
)
"""Elements whose content the HTML parser reads as text and markup (no raw text, such as a
script's), and whose end tag it takes as written: a body of these can be cut after a tag."""
_TAG = re.compile(r"<(/?)([a-z][a-z0-9]*)\b([^<>]*)>|<")
_PARAGRAPH_END = "</p>"


class _Processor(Protocol):
    def process(self) -> list[str]: ...


class _Segmenter(Protocol):
    def processor(self, text: str) -> _Processor: ...


def grapheme_length(text: str) -> int:
    """The number of grapheme clusters of ``text``: its length as Mastodon counts it.

    Fitting a status measures many candidates, so the common cases are counted
    without splitting: ASCII, and text with nothing that joins code points.
    """
    if text.isascii():
        return len(text) - text.count("\r\n")
    if "\r\n" not in text and _JOINING.search(_ASCII_RUNS.sub("", text)) is None:
        return len(text)
    return len(_graphemes(text))


def sentences(text: str, language: str | None) -> list[str]:
    """The sentences of ``text``, each stripped, with runs of whitespace made one space.

    Paragraphs (separated by a blank line) always end a sentence; a single line
    break is a soft wrap, as in Markdown. ``language`` is an ISO 639-1 code or a
    tag such as ``fr-CA``; languages pysbd does not know are split as English.
    """
    return list(_iter_sentences(text, segmenter_language(language)))


LEAD_WINDOW_MARGIN = 400
LEAD_LENGTH = 240
"""Grapheme clusters of a post's lead (`newsbot.publish.compose.PostPolicy.lead_length`)."""


def lead(article_text: str, budget: int, language: str | None) -> str:
    """The opening sentences of ``article_text`` that fit ``budget`` grapheme clusters.

    Whole sentences only; when even the first one is too long it is shortened on
    a word boundary and ends with an ellipsis. A lead of whole sentences has no
    ellipsis: it is a complete thought, not a cut one.
    """
    return " ".join(lead_sentences(article_text, budget, language))


def lead_sentences(article_text: str, budget: int, language: str | None) -> list[str]:
    """The sentences `lead` joins (one space apart); a shortened first one alone, or none.

    A post's summary may shrink to its first sentence: this is it, as the lead
    cut it, without splitting the lead again.
    """
    if budget <= 0:
        return []
    # Lazily, and on a window of the text: pysbd is slow (~1 ms a sentence) and a lead
    # needs the first few only. A sentence cut by the window ends past it, so it is
    # never whole within the budget: the window changes no lead.
    window = article_text[: 2 * budget + LEAD_WINDOW_MARGIN]
    found = _iter_sentences(window, segmenter_language(language))
    first = next(found, "")
    if grapheme_length(first) > budget:
        return [shorten(first, budget)]
    return _whole_sentences(first, found, budget)


@dataclass(frozen=True, slots=True)
class Leads:
    """An article's `lead_sentences`, worked out when a build reads it, for its posts.

    Splitting sentences (pysbd) was most of a post's CPU; the build reads every
    new article anyway. Kept for one budget and by the language pysbd splits in
    (`segmenter_language`): a post by another budget or language splits the text
    itself, so what is kept only saves work and never changes a lead.
    """

    budget: int
    by_language: Mapping[str, tuple[str, ...]]

    @classmethod
    def of(cls, article_text: str, budget: int, languages: Iterable[str | None]) -> Leads:
        """The leads of ``article_text`` (see `lead_sentences`) in each of ``languages``."""
        by_language: dict[str, tuple[str, ...]] = {}
        for language in languages:
            code = segmenter_language(language)
            if code not in by_language:
                by_language[code] = tuple(lead_sentences(article_text, budget, code))
        return cls(budget, by_language)

    def sentences(self, budget: int, language: str | None) -> list[str] | None:
        """`lead_sentences` of the text for ``budget`` and ``language``; None if not kept."""
        if budget != self.budget:
            return None
        kept = self.by_language.get(segmenter_language(language))
        return None if kept is None else list(kept)

    def encode(self) -> str:
        """The stored form: JSON."""
        shape = {"budget": self.budget, "sentences": dict(self.by_language)}
        return json.dumps(shape, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, stored: str | None) -> Leads | None:
        """What `encode` gave; None for nothing stored or a form not understood."""
        if not stored:
            return None
        try:
            shape = json.loads(stored)
            budget, by_language = shape["budget"], shape["sentences"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(budget, int) or not isinstance(by_language, dict):
            return None
        for kept in by_language.values():
            if not isinstance(kept, list) or not all(isinstance(s, str) for s in kept):
                return None
        return cls(budget, {code: tuple(kept) for code, kept in by_language.items()})


def shorten(text: str, budget: int) -> str:
    """``text`` if it fits ``budget`` grapheme clusters, else a word-boundary prefix and "…".

    The ellipsis counts toward the budget. Only a first word longer than the
    whole budget is cut inside (there is no boundary to cut at, and some text
    says more than none); the result is empty only when ``budget`` < 1.
    """
    if grapheme_length(text) <= budget:
        return text
    if budget < 1:
        return ""
    clusters = _graphemes(text)
    room = budget - 1
    prefix = _word_prefix(clusters, room)
    if not prefix:
        prefix = "".join(clusters[:room]).rstrip(_DANGLING)
    return prefix + ELLIPSIS


def summary_text(article: Article, content_html: str) -> str:
    """The summary feeds and pages show: the editors', else an excerpt, else the title.

    The article page's description uses it too, so a link preview and a feed
    reader show the same words.
    """
    return one_line(article.summary) or excerpt(content_html) or one_line(article.title)


def clean_text(text: str) -> str:
    """``text`` without the characters XML (or the feed validator) rejects."""
    return _UNSAFE_CHARACTERS.sub("", text)


def one_line(text: str) -> str:
    """``text`` cleaned, on one line and bidi-balanced, for titles, names and tags."""
    return balance(" ".join(clean_text(text).split()))


@functools.lru_cache(maxsize=4096)
def excerpt(content_html: str, limit: int = EXCERPT_LIMIT) -> str:
    """The first sentences of the body (HTML) that fit in ``limit`` characters.

    Cached: one article appears in the site feed, its section's and its tags',
    in three formats each, and on its page. Only the text of the body's first
    paragraphs is made (`_leading_text`): the excerpt never reads further.
    """
    return excerpt_of_text(_leading_text(content_html, limit + 2), limit)


def excerpt_of_text(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """`excerpt` of the body's plain text (or of its first ``limit + 2`` characters or more)."""
    if len(text) <= limit:
        return balance(text)
    kept = ""
    for sentence in _SENTENCE_BREAK.split(text):
        longer = f"{kept} {sentence}".strip()
        if len(longer) > limit:
            break
        kept = longer
    return balance(kept or _cut_words(text, limit))


def _leading_text(content_html: str, wanted: int) -> str:
    """`_plain_text` of the cleaned body, or its start when that has ``wanted`` characters.

    An excerpt of ``limit`` characters depends on the first ``limit + 2`` of the
    text only: within them are its sentences and the cut of a long one, and a
    sentence running past them is too long whatever its true end. The text of
    the body up to the end of a paragraph is the start of the whole body's
    text, when that part is plain markup (`_plain_markup`): the parser has read
    nothing of what follows when it closes the paragraph. The rest of the body
    (most of it) is then neither parsed nor scanned.
    """
    cut = content_html.find(_PARAGRAPH_END, wanted)
    if cut >= 0:
        head = clean_text(content_html[: cut + len(_PARAGRAPH_END)])
        if _plain_markup(head):
            text = _plain_text(head)
            if len(text) >= wanted:
                return text
    return _plain_text(clean_text(content_html))


def _plain_markup(html: str) -> bool:
    """Whether every ``<`` of ``html`` opens a whole tag of `_TEXT_TAGS` with its quotes paired.

    No comment, declaration or raw-text element, and no ``>`` or ``<`` inside an
    attribute value, so the tag the text ends with is a tag (the sanitiser
    writes bodies so; other HTML takes the long way).
    """
    for tag in _TAG.finditer(html):
        name, attributes = tag.group(2), tag.group(3)
        if name not in _TEXT_TAGS:  # None: a "<" that opens no tag
            return False
        if attributes and (attributes.count('"') % 2 or attributes.count("'") % 2):
            return False
    return True


def _plain_text(content_html: str) -> str:
    """The words of an HTML fragment, blocks separated by spaces."""
    if not content_html.strip():
        return ""
    root = lxml.html.fragment_fromstring(content_html, create_parent="div")
    for element in root.iter():
        if element.tag in _BLOCK_TAGS:
            element.tail = " " + (element.tail or "")
    return " ".join(root.text_content().split())


def _cut_words(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters on a word boundary, marked with an ellipsis."""
    head = text[: limit - 1]
    if not text[limit - 1].isspace():
        head = head.rpartition(" ")[0] or head
    return head.rstrip(" ,;:-–—") + "…"


def segmenter_language(language: str | None) -> str:
    """The pysbd language for an ISO 639-1 code or language tag (``fr-CA`` -> ``fr``)."""
    code = primary_language(language)
    return code if code in pysbd.languages.LANGUAGE_CODES else FALLBACK_LANGUAGE


def _graphemes(text: str) -> list[str]:
    clusters: list[str] = _GRAPHEME.findall(text)
    return clusters


def _whole_sentences(first: str, rest: Iterator[str], budget: int) -> list[str]:
    """``first`` and the sentences after it while, one space apart, they fit ``budget``.

    The sum of lengths is an upper bound of the joined length (joining can only
    merge clusters), so the joined lead always fits.
    """
    chosen = [first] if first else []
    used = grapheme_length(first)
    for sentence in rest:
        used += 1 + grapheme_length(sentence)
        if used > budget:
            break
        chosen.append(sentence)
    return chosen


def _word_prefix(clusters: list[str], room: int) -> str:
    """The longest prefix of at most ``room`` clusters that ends before a space, tidied."""
    for end in range(min(room, len(clusters) - 1), 0, -1):
        if clusters[end].isspace():
            prefix = "".join(clusters[:end]).rstrip(_DANGLING)
            if prefix:
                return prefix
    return ""


def _iter_sentences(text: str, language: str) -> Iterator[str]:
    for paragraph in _paragraphs(text):
        yield from _paragraph_sentences(paragraph, language)


def _paragraphs(text: str) -> Iterator[str]:
    for part in _PARAGRAPH_BREAK.split(text):
        paragraph = _SPACES.sub(" ", part).strip()
        if paragraph:
            yield paragraph


def _paragraph_sentences(paragraph: str, language: str) -> list[str]:
    cuts = sorted(_pysbd_cuts(paragraph, language) | _extra_cuts(paragraph, language))
    starts = [0]
    for cut in cuts:
        if 0 < cut < len(paragraph) and not _is_false_cut(paragraph, starts[-1], cut):
            starts.append(cut)
    ends = [*starts[1:], len(paragraph)]
    return [paragraph[start:end].strip() for start, end in zip(starts, ends, strict=True)]


@functools.lru_cache(maxsize=32)
def _segmenter(language: str) -> _Segmenter:
    segmenter: _Segmenter = pysbd.Segmenter(language=language, clean=False)
    return segmenter


def _pysbd_cuts(paragraph: str, language: str) -> set[int]:
    """Offsets in ``paragraph`` where pysbd starts (or ends) a sentence.

    Each piece pysbd returns is looked up in the original text from where the
    previous one ended: pysbd sometimes drops or rewrites text (e.g. it returns
    "." for "The inner star has a mass of 6.3 ± 0.7 M☉."), and a piece it
    changed simply gives no cut. The end of a piece is a cut too, so the
    sentence before a rewritten one still ends where it should.

    The pieces come from pysbd's processor, not from ``Segmenter.segment``,
    which finds each piece in the text again with a regular expression made
    of the piece: one compiled expression per sentence, which also evicts
    pysbd's own from Python's expression cache (most of pysbd's time).
    """
    cuts: set[int] = set()
    cursor = 0
    for segment in _segmenter(language).processor(paragraph).process():
        piece = segment.strip()
        start = paragraph.find(piece, cursor) if piece else -1
        if start < 0:
            continue
        cursor = start + len(piece)
        cuts |= {start, cursor + len(paragraph[cursor:]) - len(paragraph[cursor:].lstrip())}
    return cuts


def _extra_cuts(paragraph: str, language: str) -> set[int]:
    """Sentence starts pysbd misses: after closing quotes it does not know, after "…"."""
    cuts = {match.end() for match in _CLOSER_CUT.finditer(paragraph)}
    if language == "de":
        cuts |= {match.end() for match in _GERMAN_CLOSER_CUT.finditer(paragraph)}
    for pattern in (_STRAIGHT_CLOSER_CUT, _ELLIPSIS_CUT):
        for match in pattern.finditer(paragraph):
            if not _inside_quotation(paragraph[: match.start()], language):
                cuts.add(match.end())
    return cuts


def _is_false_cut(paragraph: str, previous: int, cut: int) -> bool:
    """Whether a sentence start (pysbd's or ours) is wrong.

    * not after whitespace: pysbd cut inside a token (``J.`` | ``-P. Sartre``,
      a closing quote split from its sentence);
    * before a lowercase letter: no sentence starts so, but abbreviations pysbd
      does not know are followed so (``approx. five``, ``b.c.e. to``); a
      list marker (``ii.``) is the exception;
    * after a single initial: ``J.-P.`` | ``Sartre``;
    * after a lone list marker: ``i.`` | ``First item.`` is one item.
    """
    sentence = paragraph[previous:cut].strip()
    if not paragraph[cut - 1].isspace():
        return True
    if paragraph[cut].islower() and not _starts_list_item(paragraph, cut):
        return True
    return bool(_INITIAL_END.search(sentence) or _LIST_MARKER.fullmatch(sentence))


def _starts_list_item(paragraph: str, start: int) -> bool:
    marker = _LIST_MARKER.match(paragraph, start)
    return bool(marker) and paragraph[marker.end() : marker.end() + 1].isspace()


def _inside_quotation(prefix: str, language: str) -> bool:
    """Whether a quotation opened in ``prefix`` is still open at its end."""
    if prefix.count('"') % 2:
        return True
    pairs = _QUOTE_PAIRS.get(language, _DEFAULT_QUOTE_PAIRS)
    return any(prefix.count(opener) > prefix.count(closer) for opener, closer in pairs)
