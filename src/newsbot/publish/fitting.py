"""Making a status fit its limit: the draft, how it is measured, and the order of cuts.

`newsbot.publish.compose` states the order (related headlines, then the
summary, then hashtags, then the headline; the link and the content warning
never). Lengths are measured, never added up: URLs, mentions and grapheme
clusters make them non-additive, so each candidate is rendered and counted
whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import regex  # type: ignore[import-untyped]

from newsbot.articles import RelatedLink
from newsbot.bidi import balance
from newsbot.mastodon.length import count
from newsbot.summaries import grapheme_length, shorten

if TYPE_CHECKING:
    from newsbot.mastodon.counting import CountingRule

# A summary cut shorter than this says nothing; the post is better without it.
MIN_SUMMARY = 30
# A related headline is not cut shorter than this: below it, the link goes instead.
MIN_RELATED_TITLE = 24
RELATED_MARK = "→"

_TRAILING_SPACE = regex.compile(r"[ \t]+(?=\n|$)")
_SPACE_RUN = regex.compile(r" {2,}")
_BLANK_LINES = regex.compile(r"\n{3,}")


class NoRoom(Exception):
    """Nothing fits: the link and content warning alone are over the limit."""


@dataclass(frozen=True, slots=True)
class Draft:
    headline: str
    summary: str
    link: str
    related: tuple[RelatedLink, ...]
    hashtags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rules:
    """What a draft is rendered with and measured against."""

    template: str
    label: str
    spoiler: str
    limit: int
    url_length: int | None
    rule: CountingRule | None = None

    def render(self, draft: Draft) -> str:
        text = self.template.format_map(
            {
                "headline": draft.headline,
                "summary": draft.summary,
                "link": draft.link,
                "related": block(related_text(self.label, draft.related) if draft.related else ""),
                "hashtags": block(" ".join(draft.hashtags)),
            }
        )
        return tidy(text)

    def length(self, draft: Draft) -> int:
        return self.measure(self.render(draft))

    def measure(self, text: str) -> int:
        if self.rule is not None:
            return self.rule.count(text, self.spoiler)
        return count(text, self.spoiler, self.url_length)

    def fits(self, draft: Draft) -> bool:
        return self.length(draft) <= self.limit


def related_text(label: str, related: Sequence[RelatedLink]) -> str:
    """The related links as lines under ``label``: ``→ Headline https://...``."""
    lines = [" ".join(filter(None, (RELATED_MARK, link.title, link.url))) for link in related]
    return "\n".join([label, *lines] if label else lines)


def fit(draft: Draft, rules: Rules, floor: str) -> Draft:
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
        raise NoRoom(
            f"the link and content warning alone exceed {rules.limit} characters: {draft.link}"
        )
    return replace(bare, headline=headline)


def _fit_related(draft: Draft, rules: Rules, floor: str) -> Draft | None:
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


def _shortened_titles(draft: Draft, rules: Rules) -> Draft | None:
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


def _with_title_budget(draft: Draft, budget: int) -> Draft | None:
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
    # A cut can drop the terminator the headline's balancing put at its end: close again.
    return balance(kept) + "…" if kept else None


def _fitted(
    text: str, draft_with: Callable[[str], Draft], rules: Rules, minimum: int | None
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
        # Strictly less each time: balancing may add closing controls after the cut, so the
        # cut counts for more than its budget, and "length - overshoot" can be the budget
        # again (a loop for ever: one headline hung the pass).
        budget = min(budget - 1, length - overshoot if overshoot < length else length - 1)
    return None


def _with_summary(draft: Draft) -> Callable[[str], Draft]:
    return lambda summary: replace(draft, summary=summary)


def _with_headline(draft: Draft) -> Callable[[str], Draft]:
    return lambda headline: replace(draft, headline=headline)


def fit_reply(
    related: tuple[RelatedLink, ...], rules: Rules
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


def block(text: str) -> str:
    """A placeholder's value that starts its own paragraph, or nothing."""
    return "\n\n" + text if text else ""


def tidy(text: str) -> str:
    """``text`` without the blank lines and spaces that empty placeholders leave."""
    text = _TRAILING_SPACE.sub("", text)
    text = _SPACE_RUN.sub(" ", text)
    return str(_BLANK_LINES.sub("\n\n", text)).strip()
