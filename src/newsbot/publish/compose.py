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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from string import Formatter
from typing import TYPE_CHECKING, Literal

import regex  # type: ignore[import-untyped]

from newsbot.articles import Article
from newsbot.articles import RelatedLink as RelatedLink
from newsbot.bidi import balance
from newsbot.errors import NewsbotError
from newsbot.mastodon.length import WORD as _WORD
from newsbot.publish.fitting import MIN_RELATED_TITLE as MIN_RELATED_TITLE
from newsbot.publish.fitting import MIN_SUMMARY as MIN_SUMMARY
from newsbot.publish.fitting import RELATED_MARK as RELATED_MARK
from newsbot.publish.fitting import Draft, NoRoom, Rules, fit, fit_reply
from newsbot.publish.fitting import related_text as related_text
from newsbot.summaries import (
    LEAD_LENGTH,
    Leads,
    grapheme_length,
    lead_sentences,
    sentences,
    shorten,
)

if TYPE_CHECKING:
    from newsbot.mastodon.counting import CountingRule

PLACEHOLDERS = frozenset({"headline", "summary", "link", "related", "hashtags"})
DEFAULT_TEMPLATE = "{headline}\n\n{summary}\n\n{link}{related}{hashtags}"
# With related_in = "auto", related links stay in the post when this many fit there.
AUTO_MIN_RELATED = 2
WORD_JOINER = "\u2060"


_MENTION_START = regex.compile(rf"(?<![=/{_WORD}])@(?=[a-z0-9_])", regex.IGNORECASE)
_HASHTAG_START = regex.compile(rf"#(?=[{_WORD}\u00b7\u30fb\u200c]*\p{{Alphabetic}})")

_TAG_WORD = regex.compile(rf"[{_WORD}]+")
_ALPHABETIC = regex.compile(r"\p{Alphabetic}")
# Line breaks and ASCII spaces: a headline is one line. No-break spaces stay, so
# that French "fini !" keeps its "!" on the same line.
_LINE_SPACE = regex.compile(r"[ \t\r\n\f\v\x85\u2028\u2029]+")
_ISO_639_1 = regex.compile(r"[a-z]{2}")


class ComposeError(NewsbotError):
    """An article that cannot make a status within the limit: one article, not the pass.

    The message says why (shown in the dry run and the delivery's error);
    ``article_id`` names the article.
    """

    def __init__(self, article_id: str, message: str) -> None:
        super().__init__(message)
        self.article_id = article_id


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
    lead_length: int = LEAD_LENGTH
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


def compose(
    article: Article,
    lead_text: str | Callable[[], str],
    related: Sequence[RelatedLink],
    policy: PostPolicy,
    max_characters: int,
    url_length: int | None,
    rule: CountingRule | None = None,
    leads: Leads | None = None,
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
    and ``url_length`` when given. ``leads``, what the build kept of ``lead_text``'s
    leads, saves splitting it into sentences again (and making it, when it is given as a
    function: a post whose lead was kept reads nothing of the body).

    The link is never touched and neither is the content warning (a cut
    warning may hide what it warns about); when those two alone are over the
    limit there is no status to make and `ComposeError` is raised.
    """
    if rule is not None:
        max_characters = rule.limit
        url_length = None if rule.urls_in_full else rule.url_length
    if max_characters < 1 or (url_length is not None and url_length < 0):
        raise ComposeError(article.id, "max_characters must be >= 1 and url_length >= 0")
    language = _language(article.lang or policy.language)
    rules = Rules(
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
    summary, first = _summary(article, lead_text, policy, language, leads)
    summary = _quiet(summary)
    draft = Draft(
        headline=_quiet(_one_line(article.title)),
        summary=summary,
        link=article.url.strip(),
        related=links if policy.related_in != "reply" else (),
        hashtags=tuple(hashtags(article.tags, policy.max_hashtags)) if policy.hashtags else (),
    )
    floor = _summary_floor(summary, first, policy, language)
    try:
        fitted = fit(draft, rules, floor)
        in_reply = policy.related_in == "reply" or (
            policy.related_in == "auto" and len(fitted.related) < min(AUTO_MIN_RELATED, len(links))
        )
        if in_reply and policy.related_in == "auto":
            fitted = fit(replace(draft, related=()), rules, floor)
    except NoRoom as exc:
        raise ComposeError(article.id, str(exc)) from None
    reply_text, shown = fit_reply(links, rules) if in_reply else (None, fitted.related)
    text = rules.render(fitted)
    return Composed(
        text=text,
        spoiler_text=rules.spoiler,
        language=status_language(language),
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
    rules = Rules(
        template=policy.template,
        label=policy.related_label.strip(),
        spoiler=_one_line(spoiler_text),
        limit=rule.limit,
        url_length=None,
        rule=rule,
    )
    text, shown = fit_reply(tuple(_quiet_link(link) for link in related), rules)
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


def _summary_floor(
    summary: str, first: str | None, policy: PostPolicy, language: str | None
) -> str:
    """The summary as short as it may get to make room for related links.

    ``first`` is the lead's first sentence when the summary is the lead (the
    lead was split into sentences already; splitting it again costs as much),
    else None: the article's own summary is split here.
    """
    if policy.summary_floor > 0:
        return shorten(summary, max(policy.summary_floor, MIN_SUMMARY))
    if first is None:
        found = sentences(summary, language) if summary else []
        first = found[0] if found else summary
    return first if grapheme_length(first) >= MIN_SUMMARY else shorten(summary, MIN_SUMMARY)


def _summary(
    article: Article,
    lead_text: str | Callable[[], str],
    policy: PostPolicy,
    language: str | None,
    leads: Leads | None,
) -> tuple[str, str | None]:
    """The summary, and its first sentence when it is the lead (see `_summary_floor`)."""
    own = _one_line(article.summary)
    if own:
        return own, None
    chosen = leads.sentences(policy.lead_length, language) if leads is not None else None
    if chosen is None:
        text = lead_text() if callable(lead_text) else lead_text
        chosen = lead_sentences(text, policy.lead_length, language)
    return balance(" ".join(chosen)), _quiet(balance(chosen[0])) if chosen else ""


def _quiet_link(link: RelatedLink) -> RelatedLink:
    return RelatedLink(title=_quiet(_one_line(link.title)), url=link.url.strip())


def _quiet(text: str) -> str:
    """``text`` with no ``@`` or ``#`` that the server would link as a mention or hashtag."""
    text = _MENTION_START.sub("@" + WORD_JOINER, text)
    return str(_HASHTAG_START.sub("#" + WORD_JOINER, text))


def _one_line(text: str) -> str:
    """``text`` on one line, its bidirectional controls closed within it."""
    return balance(str(_LINE_SPACE.sub(" ", text)).strip())


def status_language(code: str | None) -> str | None:
    """A status's ``language``: the ISO 639-1 code of a language tag (``en-GB`` -> ``en``).

    ``None`` for a tag whose language has no two-letter code (``fil``): the
    API takes ISO 639-1, and Akkoma refuses anything else with 422 "Invalid
    language" (Mastodon silently falls back to the account's language), so
    the server is left to guess rather than told another language.
    """
    primary = _language(code)
    return primary if primary is not None and _ISO_639_1.fullmatch(primary) else None


def _language(code: str | None) -> str | None:
    """The primary subtag of a language tag, lower case (``en-GB`` -> ``en``)."""
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
