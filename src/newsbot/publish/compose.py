"""A status: its text, how the server counts it, its hashtags and its idempotency key.

Layout. ``PostPolicy.template`` is a ``str.format`` template with five
placeholders (no format specs or conversions; ``{link}`` is required):

=============  ===============================================================
``headline``   the article's title, whole (shortened only if it alone is over
               the limit)
``summary``    the article's own summary, else the lead of its text
``link``       the article's address, always present and whole
``related``    a blank line, the label ("Related:") and one ``→ Headline URL``
               line per related article; empty when there are none or when
               they go in a reply
``hashtags``   a blank line and ``#Tag #OtherTag``; empty when there are none
=============  ===============================================================

``related`` and ``hashtags`` bring their own leading blank line so that they
can follow ``{link}`` directly. After rendering, blank lines and spaces left by
empty placeholders are removed. The default gives, in a timeline::

    France and UK sign Calais cooperation agreement

    French Interior Minister Bernard Cazeneuve and ... in Calais.

    https://www.france24.com/en/20150820-france-uk-calais

    Related:
    → Calais migrants: UK to fund new fences https://...

    #Calais #Migrants

The article's link is the first link of the default layout: servers build
the preview card from the first link, and that card should be the article's.

Text from the article never mentions or tags anyone by accident: a word joiner
(U+2060, invisible, one character) is put after an ``@`` or ``#`` that the
server would read as a mention or hashtag. A mention notifies a stranger and
delivers the post to their server; the bot's only hashtags are the ones it
adds from the tags, within ``max_hashtags``.

Bidirectional controls (see `newsbot.bidi`) are closed within the headline,
the summary (after any cut) and each related headline, so none turns the link
or the hashtags after them around.

Counting follows Mastodon's ``StatusLengthValidator``: the stripped
``spoiler_text`` and the stripped text are joined, each ``http(s)://`` URL of
the text counts as ``characters_reserved_per_url``, ``@user@domain`` counts as
``@user``, and the result is measured in grapheme clusters.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from string import Formatter
from typing import TYPE_CHECKING, Literal

import regex  # type: ignore[import-untyped]

from newsbot.articles import Article
from newsbot.bidi import balance
from newsbot.summaries import grapheme_length, lead, sentences, shorten

if TYPE_CHECKING:
    from newsbot.mastodon.counting import CountingRule

PLACEHOLDERS = frozenset({"headline", "summary", "link", "related", "hashtags"})
DEFAULT_TEMPLATE = "{headline}\n\n{summary}\n\n{link}{related}{hashtags}"
# A summary cut shorter than this says nothing; the post is better without it.
MIN_SUMMARY = 30
# A related headline is not cut shorter than this: below it, the link goes instead.
MIN_RELATED_TITLE = 24
# With related_in = "auto", related links stay in the post when this many fit there.
AUTO_MIN_RELATED = 2
WORD_JOINER = "\u2060"
RELATED_MARK = "→"

_WORD = r"\p{L}\p{M}\p{Nd}\p{Pc}"  # Ruby's [[:word:]], which Mastodon's patterns use
_LATIN_ACCENTS = (
    "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff\u0100-\u024f\u0253\u0254\u0256\u0257\u0259"
    "\u025b\u0263\u0268\u026f\u0272\u0289\u028b\u02bb\u0300-\u036f\u1e00-\u1eff"
)
_UCHARS = (
    "\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd\U00020000-\U0002fffd"
    "\U00030000-\U0003fffd\U00040000-\U0004fffd\U00050000-\U0005fffd\U00060000-\U0006fffd"
    "\U00070000-\U0007fffd\U00080000-\U0008fffd\U00090000-\U0009fffd\U000a0000-\U000afffd"
    "\U000b0000-\U000bfffd\U000c0000-\U000cfffd\U000d0000-\U000dfffd\U000e1000-\U000efffd"
    "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"
)

# Twitter-text's URL, as Mastodon configures it, for URLs with a scheme (the
# only ones it counts as a fixed length). Simplified: any alphabetic TLD is
# accepted where twitter-text checks a list, which only matters for made-up
# domains. Written so that matching stays linear in the text's length.
_URL_HEAD = regex.compile(
    r"(?<![A-Za-z0-9@＠$#＃])https?://"
    r"(?:[\p{L}\p{N}_-]+\.)+(?:xn--[\p{L}\p{N}-]+|\p{L}{2,})(?![\p{L}\p{N}@])"
    r"(?::[0-9]+)?",
    regex.IGNORECASE,
)
_PATH_CHAR = r"[^\p{White_Space}<>()?]"
_URL_PATH = regex.compile(
    rf"(?:/(?:{_PATH_CHAR}|\((?:{_PATH_CHAR}*\({_PATH_CHAR}+\){_PATH_CHAR}*|{_PATH_CHAR}+)\))*)?"
)
_PATH_TAIL = frozenset("!*\"'「」;:=,.$%[]~&|@")  # may not end a path: "(see https://x.org/a)."
_URL_QUERY = regex.compile(rf"\?[a-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@^{_UCHARS}]*", regex.IGNORECASE)
_QUERY_END = regex.compile(rf"[a-z0-9_&=#/\-{_UCHARS}]", regex.IGNORECASE)

_MENTION = regex.compile(
    rf"(?<![=/{_WORD}])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[{_WORD}]+(?:[.-]+[{_WORD}]+)*)?",
    regex.IGNORECASE,
)
_NOT_A_MENTION_AFTER = regex.compile(rf"@|＠|[{_LATIN_ACCENTS}]|://")
_MENTION_START = regex.compile(rf"(?<![=/{_WORD}])@(?=[a-z0-9_])", regex.IGNORECASE)
_HASHTAG_START = regex.compile(rf"#(?=[{_WORD}\u00b7\u30fb\u200c]*\p{{Alphabetic}})")

_TAG_WORD = regex.compile(rf"[{_WORD}]+")
_ALPHABETIC = regex.compile(r"\p{Alphabetic}")
# Line breaks and ASCII spaces: a headline is one line. No-break spaces stay, so
# that French "fini !" keeps its "!" on the same line.
_LINE_SPACE = regex.compile(r"[ \t\r\n\f\v\x85\u2028\u2029]+")
_TRAILING_SPACE = regex.compile(r"[ \t]+(?=\n|$)")
_SPACE_RUN = regex.compile(r" {2,}")
_BLANK_LINES = regex.compile(r"\n{3,}")
_RUBY_STRIP = " \t\n\v\f\r\x00"  # what Mastodon's String#strip removes


@dataclass(frozen=True, slots=True)
class RelatedLink:
    """Another article worth reading next: its headline and address."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class PostPolicy:
    """How a target lays out its statuses; see the module docstring for the placeholders.

    ``language`` is the target's default language, used when an article has
    none. ``lead_length`` bounds the lead used when an article has no summary
    of its own; ``related_label`` heads the related links (write it in the
    target's language).
    """

    template: str = DEFAULT_TEMPLATE
    hashtags: bool = True
    max_hashtags: int = 4
    related_in: Literal["auto", "post", "reply"] = "auto"
    language: str | None = None
    related_label: str = "Related:"
    lead_length: int = 240
    summary_floor: int = 0
    """The summary is not shortened below this for related links (0: its first sentence)."""

    def __post_init__(self) -> None:
        names = template_placeholders(self.template)
        if unknown := names - PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)} in template; "
                f"use {sorted(PLACEHOLDERS)}"
            )
        if "link" not in names:
            raise ValueError("the template must place {link}")
        if self.max_hashtags < 0 or self.lead_length < 1:
            raise ValueError("max_hashtags must be >= 0 and lead_length >= 1")


@dataclass(frozen=True, slots=True)
class Composed:
    """A status ready to send, with its length counted as the server counts it.

    ``reply_text`` holds the related links when they go in a reply under the
    post; it is counted with ``spoiler_text``, so it fits whether or not the
    reply repeats the warning, and should be sent with ``language``.
    ``url_length`` is the length URLs were counted as (``None``: in full).
    """

    text: str
    spoiler_text: str
    language: str | None
    length: int
    limit: int
    reply_text: str | None
    url_length: int | None = None
    related: tuple[RelatedLink, ...] = ()
    """The related links shown, in the post or in the reply."""
    counting: str = ""
    """How the length was counted, in words."""
    reply_length: int = 0


@dataclass(frozen=True, slots=True)
class _Draft:
    headline: str
    summary: str
    link: str
    related: tuple[RelatedLink, ...]
    hashtags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Rules:
    """What a draft is rendered with and measured against."""

    template: str
    label: str
    spoiler: str
    limit: int
    url_length: int | None
    rule: CountingRule | None = None

    def render(self, draft: _Draft) -> str:
        text = self.template.format_map(
            {
                "headline": draft.headline,
                "summary": draft.summary,
                "link": draft.link,
                "related": _block(related_text(self.label, draft.related) if draft.related else ""),
                "hashtags": _block(" ".join(draft.hashtags)),
            }
        )
        return _tidy(text)

    def length(self, draft: _Draft) -> int:
        return self.measure(self.render(draft))

    def measure(self, text: str) -> int:
        if self.rule is not None:
            return self.rule.count(text, self.spoiler)
        return count(text, self.spoiler, self.url_length)

    def fits(self, draft: _Draft) -> bool:
        return self.length(draft) <= self.limit


def countable(text: str, url_length: int | None) -> str:
    """``text`` as Mastodon measures it: each URL as ``url_length`` x's (``None``: in full)."""
    return _countable(text, url_length)


def count(text: str, spoiler_text: str, url_length: int | None) -> int:
    """The length of a status as Mastodon counts it; ``url_length=None`` counts URLs in full.

    The content warning counts too, in full (the server does not look for URLs
    in it). Leading and trailing whitespace is not counted: the server strips it.
    """
    return grapheme_length(spoiler_text.strip(_RUBY_STRIP) + _countable(text, url_length))


def compose(
    article: Article,
    lead_text: str,
    related: Sequence[RelatedLink],
    policy: PostPolicy,
    max_characters: int,
    url_length: int | None,
    rule: CountingRule | None = None,
) -> Composed:
    """The status for ``article`` within ``max_characters`` as the server counts them.

    The headline and the link stay whole; related links have priority over
    the summary's length. When everything does not fit, in this order:

    1. the summary shortens on a word boundary, down to its floor (its first
       sentence, or ``policy.summary_floor`` characters);
    2. the related headlines shorten, all alike, never inside a word, with "…"
       (down to ``MIN_RELATED_TITLE`` characters);
    3. related links go, the last first;
    4. the summary shortens below its floor (to ``MIN_SUMMARY`` characters);
    5. hashtags go, the last first, each time letting the summary grow again;
    6. the summary goes, and hashtags come back as far as they then fit;
    7. the headline is shortened with "…", alone with the link.

    With ``related_in = "auto"`` the related links stay in the post when at
    least ``AUTO_MIN_RELATED`` of them fit there (or all, when fewer exist);
    otherwise they go, whole, in a reply under the post. ``rule`` (a server
    profile's counting, see `newsbot.mastodon.counting`) replaces ``max_characters``
    and ``url_length`` when given.

    The link is never touched and neither is the content warning (a cut
    warning may hide what it warns about); when those two alone are over the
    limit there is no status to make and ``ValueError`` is raised.
    """
    if rule is not None:
        max_characters = rule.limit
        url_length = None if rule.urls_in_full else rule.url_length
    if max_characters < 1 or (url_length is not None and url_length < 0):
        raise ValueError("max_characters must be >= 1 and url_length >= 0")
    language = _language(article.lang) or _language(policy.language)
    rules = _Rules(
        template=policy.template,
        label=policy.related_label.strip(),
        spoiler=_one_line(article.content_warning or ""),
        limit=max_characters,
        url_length=url_length,
        rule=rule,
    )
    links = tuple(
        _quiet_link(link) for link in related if link.url.strip() not in ("", article.url.strip())
    )
    summary = _quiet(_summary(article, lead_text, policy, language))
    draft = _Draft(
        headline=_quiet(_one_line(article.title)),
        summary=summary,
        link=article.url.strip(),
        related=links if policy.related_in != "reply" else (),
        hashtags=tuple(hashtags(article.tags, policy.max_hashtags)) if policy.hashtags else (),
    )
    floor = _summary_floor(summary, policy, language)
    fitted = _fit(draft, rules, floor)
    in_reply = policy.related_in == "reply" or (
        policy.related_in == "auto" and len(fitted.related) < min(AUTO_MIN_RELATED, len(links))
    )
    if in_reply and policy.related_in == "auto":
        fitted = _fit(replace(draft, related=()), rules, floor)
    reply_text, shown = _reply(links, rules) if in_reply else (None, fitted.related)
    text = rules.render(fitted)
    return Composed(
        text=text,
        spoiler_text=rules.spoiler,
        language=language,
        length=rules.measure(text),
        limit=max_characters,
        reply_text=reply_text,
        url_length=url_length,
        related=shown,
        reply_length=rules.measure(reply_text) if reply_text else 0,
        counting=rule.describe() if rule is not None else _describe_urls(url_length),
    )


def compose_reply(
    related: Sequence[RelatedLink], policy: PostPolicy, rule: CountingRule, spoiler_text: str = ""
) -> tuple[str | None, tuple[RelatedLink, ...], int]:
    """A reply holding ``related`` within ``rule``: its text, the links kept, its length."""
    rules = _Rules(
        template=policy.template,
        label=policy.related_label.strip(),
        spoiler=_one_line(spoiler_text),
        limit=rule.limit,
        url_length=None,
        rule=rule,
    )
    text, shown = _reply(tuple(_quiet_link(link) for link in related), rules)
    return text, shown, rules.measure(text) if text else 0


def hashtags(tags: Sequence[str], limit: int) -> list[str]:
    """Up to ``limit`` hashtags (``#CamelCase``) from ``tags``, in order, without duplicates.

    Mastodon accepts only word characters in a hashtag and needs a letter in
    it, so "COVID-19" becomes ``#COVID19``, "climate change" ``#ClimateChange``,
    and "2020" is skipped (a middle dot, which Mastodon allows inside, is
    dropped too: one rule for every tag). Duplicates are found ignoring case,
    as Mastodon does.
    """
    found: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        if len(found) >= limit:
            break
        name = _hashtag_name(tag)
        if _ALPHABETIC.search(name) and name.casefold() not in seen:
            seen.add(name.casefold())
            found.append("#" + name)
    return found


def idempotency_key(target: str, article_id: str, revision: str) -> str:
    """The ``Idempotency-Key`` of one article revision on one target: 64 hex digits.

    The three values are JSON-encoded as a list before hashing, so that two
    triples such as ("a", "b/c") and ("a/b", "c") never give the same key.
    """
    payload = json.dumps([target, article_id, revision], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def format_dry_run(composed: Composed) -> str:
    """How ``newsbot publish --dry-run`` shows a status: the exact text and how it counts."""
    lines = [f"CW: {composed.spoiler_text}"] if composed.spoiler_text else []
    lines += [composed.text, _tally(composed.length, composed)]
    if composed.reply_text:
        lines += ["", "↳ reply:", composed.reply_text, _tally(composed.reply_length, composed)]
    return "\n".join(lines)


def related_text(label: str, related: Sequence[RelatedLink]) -> str:
    """The related links as lines under ``label``: ``→ Headline https://...``."""
    lines = [" ".join(filter(None, (RELATED_MARK, link.title, link.url))) for link in related]
    return "\n".join([label, *lines] if label else lines)


def template_placeholders(template: str) -> set[str]:
    """The placeholder names of ``template``; ``ValueError`` for a spec, conversion or bad brace."""
    names: set[str] = set()
    for _, name, spec, conversion in Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} must have no format spec or conversion")
        names.add(name)
    return names


def _fit(draft: _Draft, rules: _Rules, floor: str) -> _Draft:
    """``draft`` made to fit, following the order given in `compose`."""
    if rules.fits(draft):
        return draft
    if draft.related:
        kept = _fit_related(draft, rules, floor)
        if kept is not None:
            return kept
    for summary_room in (MIN_SUMMARY, None):
        for kept_tags in range(len(draft.hashtags), -1, -1):
            candidate = replace(draft, related=(), hashtags=draft.hashtags[:kept_tags])
            if summary_room is None:
                candidate = replace(candidate, summary="")
            summary = _fitted(candidate.summary, _with_summary(candidate), rules, summary_room)
            if summary is not None:
                return replace(candidate, summary=summary)
    bare = replace(draft, summary="", related=(), hashtags=())
    headline = _fitted(bare.headline, _with_headline(bare), rules, 1)
    if headline is None:
        raise ValueError(
            f"the link and content warning alone exceed {rules.limit} characters: {draft.link}"
        )
    return replace(bare, headline=headline)


def _fit_related(draft: _Draft, rules: _Rules, floor: str) -> _Draft | None:
    """Keep as many related links as fit: summary to its floor, then shorter headlines."""
    shortest = max(min(grapheme_length(floor), grapheme_length(draft.summary)), 1)
    summary = _fitted(draft.summary, _with_summary(draft), rules, shortest)
    if summary is not None:
        return replace(draft, summary=summary)
    at_floor = replace(draft, summary=floor)
    for kept in range(len(draft.related), 0, -1):
        candidate = replace(at_floor, related=draft.related[:kept])
        titled = _shortened_titles(candidate, rules)
        if titled is not None:
            return titled
    return None


def _shortened_titles(draft: _Draft, rules: _Rules) -> _Draft | None:
    """``draft`` with every related headline cut to the longest budget that fits, or None."""
    longest = max(grapheme_length(link.title) for link in draft.related)
    low, high, best = MIN_RELATED_TITLE, longest, None
    while low <= high:
        budget = (low + high) // 2
        candidate = _with_title_budget(draft, budget)
        if candidate is not None and rules.fits(candidate):
            best, low = candidate, budget + 1
        else:
            high = budget - 1
    return best


def _with_title_budget(draft: _Draft, budget: int) -> _Draft | None:
    links = []
    for link in draft.related:
        title = _cut_words(link.title, budget)
        if title is None:
            return None
        links.append(RelatedLink(title, link.url))
    return replace(draft, related=tuple(links))


def _cut_words(title: str, budget: int) -> str | None:
    """``title`` whole, or its longest run of whole words plus "…" within ``budget``."""
    if grapheme_length(title) <= budget:
        return title
    kept = ""
    for word in title.split(" "):
        candidate = f"{kept} {word}" if kept else word
        if grapheme_length(candidate) + 1 > budget:
            break
        kept = candidate
    kept = kept.rstrip(" ,;:–—-")
    return kept + "…" if kept else None


def _summary_floor(summary: str, policy: PostPolicy, language: str | None) -> str:
    """The summary as short as it may get to make room for related links."""
    if policy.summary_floor > 0:
        return shorten(summary, max(policy.summary_floor, MIN_SUMMARY))
    found = sentences(summary, language) if summary else []
    first = found[0] if found else summary
    return first if grapheme_length(first) >= MIN_SUMMARY else shorten(summary, MIN_SUMMARY)


def _fitted(
    text: str, draft_with: Callable[[str], _Draft], rules: _Rules, minimum: int | None
) -> str | None:
    """``text`` whole or shortened so that ``draft_with(text)`` fits, else ``None``.

    ``minimum`` is the shortest acceptable cut text (``None``: no cut at all).
    The room is measured, not added up: URLs, mentions and graphemes make
    lengths non-additive, so each try is counted in full and the budget is
    lowered by the overshoot until it fits. A cut that counts for more than
    its own length (its end now reads as a URL: "https://x.or…") is retried
    one character shorter instead.
    """
    if rules.fits(draft_with(text)):
        return text
    if minimum is None:
        return None
    budget = rules.limit - rules.length(draft_with(""))
    while budget >= minimum:
        short = balance(shorten(text, budget))
        overshoot = rules.length(draft_with(short)) - rules.limit
        length = grapheme_length(short)
        if overshoot <= 0:
            return short if length >= minimum else None
        budget = length - overshoot if overshoot < length else length - 1
    return None


def _with_summary(draft: _Draft) -> Callable[[str], _Draft]:
    return lambda summary: replace(draft, summary=summary)


def _with_headline(draft: _Draft) -> Callable[[str], _Draft]:
    return lambda headline: replace(draft, headline=headline)


def _reply(
    related: tuple[RelatedLink, ...], rules: _Rules
) -> tuple[str | None, tuple[RelatedLink, ...]]:
    """The related links as a reply's text: headlines shorten first, then links drop."""
    for kept in range(len(related), 0, -1):
        links = related[:kept]
        text = related_text(rules.label, links)
        if rules.measure(text) <= rules.limit:
            return text, links
        longest = max(grapheme_length(link.title) for link in links)
        low, high, best = MIN_RELATED_TITLE, longest, None
        while low <= high:
            budget = (low + high) // 2
            cut = [RelatedLink(_cut_words(link.title, budget) or "", link.url) for link in links]
            candidate = related_text(rules.label, cut)
            if all(link.title for link in cut) and rules.measure(candidate) <= rules.limit:
                best, low = (candidate, tuple(cut)), budget + 1
            else:
                high = budget - 1
        if best is not None:
            return best
    return None, ()


def _summary(article: Article, lead_text: str, policy: PostPolicy, language: str | None) -> str:
    return _one_line(article.summary) or balance(lead(lead_text, policy.lead_length, language))


def _quiet_link(link: RelatedLink) -> RelatedLink:
    return RelatedLink(title=_quiet(_one_line(link.title)), url=link.url.strip())


def _quiet(text: str) -> str:
    """``text`` with no ``@`` or ``#`` that the server would link as a mention or hashtag."""
    text = _MENTION_START.sub("@" + WORD_JOINER, text)
    return str(_HASHTAG_START.sub("#" + WORD_JOINER, text))


def _one_line(text: str) -> str:
    """``text`` on one line, its bidirectional controls closed within it."""
    return balance(str(_LINE_SPACE.sub(" ", text)).strip())


def _block(text: str) -> str:
    """A placeholder's value that starts its own paragraph, or nothing."""
    return "\n\n" + text if text else ""


def _tidy(text: str) -> str:
    """``text`` without the blank lines and spaces that empty placeholders leave."""
    text = _TRAILING_SPACE.sub("", text)
    text = _SPACE_RUN.sub(" ", text)
    return str(_BLANK_LINES.sub("\n\n", text)).strip()


def _language(code: str | None) -> str | None:
    """The ISO 639-1 part of a language tag (``en-GB`` -> ``en``), as the API expects."""
    primary = (code or "").replace("_", "-").split("-")[0].strip().lower()
    return primary or None


def _hashtag_name(tag: str) -> str:
    """The hashtag of a tag: words joined in CamelCase, non-word characters dropped.

    Only whitespace separates words: "covid-19" stays ``covid19`` and "e-mail"
    ``email``, while "climate change" becomes ``ClimateChange``.
    """
    words = ["".join(_TAG_WORD.findall(word)) for word in unicodedata.normalize("NFC", tag).split()]
    words = [word for word in words if word]
    if len(words) == 1:
        return words[0]
    return "".join(word[:1].upper() + word[1:] for word in words)


def _describe_urls(url_length: int | None) -> str:
    return "URLs counted in full" if url_length is None else f"URLs counted as {url_length}"


def _tally(length: int, composed: Composed) -> str:
    urls = composed.counting or _describe_urls(composed.url_length)
    warning = ", content warning included" if composed.spoiler_text else ""
    language = composed.language or "unset"
    return f"— {length}/{composed.limit} characters ({urls}{warning}), language {language}"


# Counting ---------------------------------------------------------------------------------


def _countable(text: str, url_length: int | None) -> str:
    """``text`` as Mastodon measures it: URLs as placeholders, remote mentions as local ones."""
    text = text.strip(_RUBY_STRIP)
    if not text or text.isspace():
        return ""
    pieces: list[str] = []
    cursor = 0
    for start, end, replacement in _entities(text, url_length):
        pieces += [text[cursor:start], replacement]
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _entities(text: str, url_length: int | None) -> Iterator[tuple[int, int, str]]:
    """URLs and mentions as (start, end, counted as), in order, without overlaps (as Mastodon)."""
    found = sorted([*_url_entities(text, url_length), *_mention_entities(text)])
    end = 0
    for entity in found:
        if entity[0] >= end:
            yield entity
            end = entity[1]


def _url_entities(text: str, url_length: int | None) -> Iterator[tuple[int, int, str]]:
    position = 0
    while head := _URL_HEAD.search(text, position):
        end = _url_end(text, head.end())
        url = text[head.start() : end]
        yield head.start(), end, url if url_length is None else "x" * url_length
        position = end


def _url_end(text: str, position: int) -> int:
    """Where a URL whose host ends at ``position`` ends, trailing punctuation left out."""
    path_end: int = _URL_PATH.match(text, position).end()
    end = path_end
    while end > position and text[end - 1] in _PATH_TAIL:
        end -= 1
    query = _URL_QUERY.match(text, end)
    if end < path_end or query is None:  # a path that had to be cut takes no query
        return end
    query_end: int = query.end()
    while query_end > end + 1 and not _QUERY_END.fullmatch(text[query_end - 1]):
        query_end -= 1
    return query_end if query_end > end + 1 else end


def _mention_entities(text: str) -> Iterator[tuple[int, int, str]]:
    for mention in _MENTION.finditer(text):
        if not _NOT_A_MENTION_AFTER.match(text, mention.end()):
            yield mention.start(), mention.end(), "@" + mention.group(1)
