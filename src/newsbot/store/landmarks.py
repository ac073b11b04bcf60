"""The landmarks of scraped news pages: the fixed words a site prints around an article.

One `Landmarks` table per language (add a language by adding one); a line is
compared with them ignoring case, accents, quote style and decoration, so
``Read more »`` and ``READ MORE`` are the same landmark. Dated landmarks
(``Latest update : 20/08/2015 - 14h32``) give their date in ISO 8601.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal


@dataclass(frozen=True, slots=True)
class Landmarks:
    """The fixed words of one language's pages; matched ignoring case, accents and quote style."""

    lang: str
    promo: tuple[str, ...]
    read_more: tuple[str, ...]
    bylines: tuple[str, ...]
    updated: tuple[str, ...]
    created: tuple[str, ...]
    conjunctions: tuple[str, ...]


LANDMARKS = (
    Landmarks(
        lang="en",
        promo=("Don't miss", "Do not miss"),
        read_more=("Read more",),
        bylines=("Text by", "By"),
        updated=("Latest update", "Last update", "Last updated", "Updated on"),
        created=("Date created", "First published", "Published on"),
        conjunctions=("and",),
    ),
    Landmarks(
        lang="fr",
        promo=("À ne pas manquer",),
        read_more=("Lire la suite", "Lire plus", "En savoir plus"),
        bylines=("Texte par", "Par"),
        updated=("Dernière modification", "Mis à jour le", "Mis à jour"),
        created=("Date de création", "Publié le"),
        conjunctions=("et",),
    ),
)
MAX_LANDMARK = 80  # characters; a longer line is text, whatever its first words
DECORATION = " .:;!?»«›‹>→-–—|*"  # around "Read more »" and the like
QUOTES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})

_DATED = re.compile(r"^(?P<label>[^:\d]{1,40}?)\s*(?::\s*|\s+(?=\d))(?P<value>\S.*)$")
_DATE_TIME = re.compile(
    r"^(?:(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"|(?P<day2>\d{1,2})/(?P<month2>\d{1,2})/(?P<year2>\d{4}))"
    r"(?:\s*(?:[-,T]|at|à)?\s*(?P<hour>\d{1,2})[:hH](?P<minute>\d{2})(?::(?P<second>\d{2}))?)?$",
    re.IGNORECASE,
)
Kind = Literal["promo", "read_more", "updated", "created"]


@dataclass(frozen=True, slots=True)
class Mark:
    """A landmark line: what it is, the language of its words, and its value (for dates)."""

    kind: Kind
    lang: str
    value: str = ""


def key(text: str) -> str:
    """``text`` reduced for comparing words: no case, accents, quote style or odd spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.translate(QUOTES).casefold().split())


def is_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    return key(text).strip(DECORATION) in keys(phrases)


@cache
def keys(phrases: tuple[str, ...]) -> frozenset[str]:
    """The phrases of a `Landmarks` table as `_key` makes them (cached: every line asks)."""
    return frozenset(key(phrase) for phrase in phrases)


def mark(line: str) -> Mark | None:
    """The landmark ``line`` is (promo title, "Read more", a dated line), if any."""
    if len(line) > MAX_LANDMARK:
        return None
    found = key(line).strip(DECORATION)
    for table in LANDMARKS:
        if found in keys(table.promo):
            return Mark("promo", table.lang)
        if found in keys(table.read_more):
            return Mark("read_more", table.lang)
    return dated(line)


def dated(line: str) -> Mark | None:
    """``Latest update : 2015-08-20`` and its kin, whatever the spaces around the colon."""
    match = _DATED.match(" ".join(line.split()))
    if match is None:
        return None
    for table in LANDMARKS:
        if is_phrase(match["label"], table.created):
            return Mark("created", table.lang, match["value"])
        if is_phrase(match["label"], table.updated):
            return Mark("updated", table.lang, match["value"])
    return None


def iso(value: str) -> str:
    """Day-first (``20/08/2015``) and French (``14h32``) forms as ISO 8601; others unchanged.

    Zoneless on purpose: `fields.build` places them in the site's zone, and
    reports a value it cannot read with the field and line.
    """
    match = _DATE_TIME.match(value)
    if match is None:
        return value
    year = match["year"] or match["year2"]
    month = int(match["month"] or match["month2"])
    day = int(match["day"] or match["day2"])
    text = f"{year}-{month:02d}-{day:02d}"
    if match["hour"] is not None:
        text += f"T{int(match['hour']):02d}:{match['minute']}:{match['second'] or '00'}"
    return text
