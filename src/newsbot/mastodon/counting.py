"""Counting rules: a status's length as one server counts it, or as every candidate would.

A rule comes from a server profile (`newsbot.mastodon.profiles`), the limits the server
advertises and what its length errors taught: each way of counting the
profile admits is applied and the largest result is the status's length, so a
status that fits the rule fits whichever of them the server really uses.

What is counted is the text as Mastodon sees it (:func:`countable`): a URL
with a scheme as a fixed number of characters, a remote mention as a local
one, found with the patterns Mastodon configures twitter-text with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import regex  # type: ignore[import-untyped]

from newsbot.mastodon.profiles import Profile, Unit
from newsbot.summaries import grapheme_length

RUBY_STRIP = " \t\n\v\f\r\x00"
"""What Mastodon's ``String#strip`` removes: a status's ends do not count."""
WORD = r"\p{L}\p{M}\p{Nd}\p{Pc}"
"""Ruby's ``[[:word:]]``, which Mastodon's patterns use (a regex character class body)."""
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
    rf"(?<![=/{WORD}])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[{WORD}]+(?:[.-]+[{WORD}]+)*)?",
    regex.IGNORECASE,
)
_NOT_A_MENTION_AFTER = regex.compile(rf"@|＠|[{_LATIN_ACCENTS}]|://")


@dataclass(frozen=True, slots=True)
class CountingRule:
    """How to measure a status: units, how URLs count, whether the content warning counts.

    ``url_length`` is the advertised reservation per URL; it is used only if
    ``urls`` admits "reserved". ``limit`` is the largest length allowed.
    """

    units: tuple[Unit, ...] = ("graphemes",)
    urls: tuple[str, ...] = ("reserved",)
    url_length: int = 23
    spoiler_counts: bool = True
    limit: int = 500

    @classmethod
    def of(cls, profile: Profile, max_characters: int, url_length: int) -> CountingRule:
        return cls(
            units=profile.units,
            urls=profile.urls,
            url_length=url_length,
            spoiler_counts=profile.spoiler_counts,
            limit=max(1, max_characters - profile.limit_margin),
        )

    @property
    def urls_in_full(self) -> bool:
        return "full" in self.urls

    def count(self, text: str, spoiler_text: str) -> int:
        """The length of a status: the largest over every admitted way of counting."""
        spoiler = spoiler_text.strip(RUBY_STRIP) if self.spoiler_counts else ""
        lengths = [
            measure(spoiler + countable(text, None if mode == "full" else self.url_length), unit)
            for mode in self.urls
            for unit in self.units
        ]
        return max(lengths)

    def describe(self) -> str:
        """How the rule counts, in words, for the dry run and the logs."""
        urls = " or ".join(
            "URLs counted in full" if mode == "full" else f"URLs counted as {self.url_length}"
            for mode in self.urls
        )
        units = " or ".join(unit.replace("_", " ") for unit in self.units)
        return f"{units}, {urls}"


def measure(text: str, unit: Unit) -> int:
    """The length of ``text`` in ``unit``."""
    if unit == "graphemes":
        return grapheme_length(text)
    if unit == "code_points":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def countable(text: str, url_length: int | None) -> str:
    """``text`` as Mastodon measures it: each URL with a scheme as ``url_length`` x's
    (``None``: in full), remote mentions as local ones."""
    text = text.strip(RUBY_STRIP)
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
