"""A status's length as Mastodon counts it (``StatusLengthValidator``).

The stripped ``spoiler_text`` and the stripped text are joined, each
``http(s)://`` URL of the text counts as ``characters_reserved_per_url``,
``@user@domain`` counts as ``@user``, and the result is measured in grapheme
clusters as Ruby 3.4 splits them (Unicode 15.0, see `graphemes`). Pure: the
counting rules of other servers build on it (`newsbot.mastodon.counting`), and
posts are laid out with it.
"""

from __future__ import annotations

from collections.abc import Iterator

import regex  # type: ignore[import-untyped]

from newsbot.summaries import grapheme_length

WORD = r"\p{L}\p{M}\p{Nd}\p{Pc}"
"""Ruby's [[:word:]], which Mastodon's patterns use."""
RUBY_STRIP = " \t\n\v\f\r\x00"
"""What Mastodon's String#strip removes."""
_WORD = WORD
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

# A consonant that rule GB9c (Unicode 15.1) joins to the cluster before it over a virama.
_CONJUNCT_JOIN = regex.compile(
    r"(?<=\p{InCB=Consonant}[\p{InCB=Extend}\p{InCB=Linker}]*\p{InCB=Linker}"
    r"[\p{InCB=Extend}\p{InCB=Linker}]*)\p{InCB=Consonant}"
)
_LINKER = regex.compile(r"\p{InCB=Linker}")

_MENTION = regex.compile(
    rf"(?<![=/{_WORD}])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[{_WORD}]+(?:[.-]+[{_WORD}]+)*)?",
    regex.IGNORECASE,
)
_NOT_A_MENTION_AFTER = regex.compile(rf"@|＠|[{_LATIN_ACCENTS}]|://")


def countable(text: str, url_length: int | None) -> str:
    """``text`` as Mastodon measures it: each URL as ``url_length`` x's.

    ``url_length=None`` is the text as written, stripped: URLs and remote
    mentions whole. Servers that do not apply the URL reservation measure the
    raw text, so they count ``@user@domain`` in full too: Pleroma and Akkoma
    (``String.length`` of the trimmed ``status <> spoiler_text``,
    ``lib/pleroma/web/common_api/activity_draft.ex`` ``full_payload``),
    GoToSocial, Takahē and the Misskey family.
    """
    return _countable(text, url_length)


def count(text: str, spoiler_text: str, url_length: int | None) -> int:
    """The length of a status as Mastodon counts it; ``url_length=None``: as written (`countable`).

    The content warning counts too, in full (the server does not look for URLs
    in it). Leading and trailing whitespace is not counted: the server strips it.
    """
    return graphemes(spoiler_text.strip(RUBY_STRIP) + _countable(text, url_length))


def graphemes(text: str) -> int:
    """The grapheme clusters of ``text`` as Mastodon counts them (``each_grapheme_cluster``).

    Mastodon runs on Ruby 3.4, whose clusters follow Unicode 15.0: an Indic
    conjunct such as "क्ष" is two clusters ("क्", "ष"), while Python's ``\\X``
    follows rule GB9c (Unicode 15.1) and sees one, so a Hindi status counted
    by ``\\X`` alone is refused as too long. Each joined consonant is counted
    apart again: the larger count, which also fits a server on newer Unicode.
    """
    length = grapheme_length(text)
    if _LINKER.search(text) is None:
        return length
    return length + len(_CONJUNCT_JOIN.findall(text))


def _countable(text: str, url_length: int | None) -> str:
    """``text`` as Mastodon measures it: URLs as placeholders, remote mentions as local ones.

    With ``url_length=None``, as written: the servers that count URLs in full
    count the raw text, so "@desk@example.social" (in a template that credits
    an account) is 20 characters there, not Mastodon's 5.
    """
    text = text.strip(RUBY_STRIP)
    if not text or text.isspace():
        return ""
    if url_length is None:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end, replacement in _entities(text, url_length):
        pieces += [text[cursor:start], replacement]
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _entities(text: str, url_length: int) -> Iterator[tuple[int, int, str]]:
    """URLs and mentions as (start, end, counted as), in order, without overlaps (as Mastodon)."""
    found = sorted([*_url_entities(text, url_length), *_mention_entities(text)])
    end = 0
    for entity in found:
        if entity[0] >= end:
            yield entity
            end = entity[1]


def _url_entities(text: str, url_length: int) -> Iterator[tuple[int, int, str]]:
    position = 0
    while head := _URL_HEAD.search(text, position):
        end = _url_end(text, head.end())
        yield head.start(), end, "x" * url_length
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
