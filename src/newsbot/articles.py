"""Articles as the rest of newsbot sees them, whatever file they came from.

Everything here is pure: ids, slugs and links are derived from the article and
the site settings, dates are timezone-aware UTC. The characters XML forbids are
defined here too: the store refuses them and every renderer strips them.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Image:
    """The lead image: its address, what it shows (alt text) and who made it."""

    url: str
    alt: str = ""
    credit: str = ""
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One article of the store, validated and normalised.

    ``id`` never changes when the article is edited: it is either given in the
    front matter or derived from the file's path. ``body`` is Markdown.
    ``related`` holds the editors' references as written (ids, paths, URLs or
    headlines); resolving them needs the whole store.
    """

    id: str
    path: str
    title: str
    published: datetime
    updated: datetime
    body: str
    url: str
    authors: tuple[str, ...] = ()
    summary: str = ""
    tags: tuple[str, ...] = ()
    section: str | None = None
    lang: str | None = None
    image: Image | None = None
    related: tuple[str, ...] = ()
    draft: bool = False
    withdrawn: bool = False
    content_warning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def is_live(self, now: datetime) -> bool:
        """Whether readers may see it: not a draft, not withdrawn, not scheduled for later."""
        return not self.draft and not self.withdrawn and self.published <= now

    def as_seen(self, now: datetime) -> Article:
        """The article as feeds and pages show it at ``now``: a revision date still to come
        is not shown yet, its date (``published``) is.

        A future ``updated`` would be a future date in every feed (the validator warns,
        readers sort by it), and clamping it to ``now`` would make the bytes depend on
        when a build ran. So until it comes the article shows as never revised, and the
        build that passes it shows it (the index schedules one then, as for ``published``).
        """
        return self if self.updated <= now else replace(self, updated=self.published)


def id_from_path(path: str) -> str:
    """A stable id from a path in the store: ``2015/Calais deal.md`` -> ``2015/calais-deal``.

    Each folder and the file's name become one segment (`id_segment`).
    """
    stem = PurePosixPath(path).with_suffix("")
    return "/".join(id_segment(part) for part in stem.parts)


def slugify(text: str, max_length: int = 80) -> str:
    """Lower-case ASCII words joined by ``-``; accents folded, everything else dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    return slug[:max_length].rstrip("-")


SEGMENT_BYTES = 240
"""Longest segment of a slug kept, in UTF-8 bytes: a page's folder name must fit in 255."""


def id_segment(text: str, max_length: int = 80) -> str:
    """One segment of an id or slug: the `slugify` of ``text`` when folding loses no letter or
    digit, else its letters, marks and digits (NFC, lower case) joined by ``-``.

    Folding to ASCII is what ids and links always were, so a name that folds
    whole (``Café`` -> ``cafe``) keeps them. A name it would empty or cut
    (``北京``, ``2020-北京``, ``Straße``) keeps its own letters instead: folded,
    every such name of a folder would get one id (``_``, ``2020``) and one page.
    A segment of the second kind always holds a character beyond ASCII, so it
    never equals one of the first. ``_`` remains for a name with no letter or digit.
    """
    if _folds_whole(text):
        return slugify(text, max_length) or "_"
    words = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in text.lower())
    slug = unicodedata.normalize("NFC", "-".join(words.split()))[:max_length]
    while len(slug.encode()) > SEGMENT_BYTES:
        slug = slug[:-1]
    return slug.rstrip("-") or "_"


def _folds_whole(text: str) -> bool:
    """Whether folding ``text`` to ASCII keeps every letter and digit (accents may go)."""
    return all(
        c.isascii()
        for c in unicodedata.normalize("NFKD", text)
        if unicodedata.category(c)[0] in "LN"
    )


def slug_of(article_id: str) -> str:
    """The URL slug of an id; ids may hold ``/`` to mirror folders, links keep it.

    Each segment is made on its own (`id_segment`), so a page's folders are
    made only of letters, marks, digits and ``-`` (or ``_`` for a segment with
    none of them): never a dot segment, an empty one, a separator or a name too
    long for a file system. The ``/`` between them stays, which keeps the links
    of articles whose ids come from their paths (``2015/calais-deal``) as they
    always were. Letters beyond ASCII stay as they are in the link (an IRI);
    feeds and pages write it percent-encoded.
    """
    return "/".join(id_segment(part) for part in article_id.split("/"))


def given_id(text: str) -> str:
    """An id as written in front matter, in the one form newsbot keeps: NFC.

    ``café`` typed on macOS may arrive decomposed (NFD); feeds write item ids
    from the NFC form, so two spellings of one id would give two articles a
    single item id. As one form they are one id, and the second file is
    refused as a duplicate. Ids made from paths are NFC already (`id_segment`).
    """
    return unicodedata.normalize("NFC", text)


MAX_ID_LENGTH = 200
_ID_FORBIDDEN = re.compile(r"[\s\\%?#\x00-\x1f\x7f-\x9f]")


def id_problem(article_id: str) -> str | None:
    """Why ``article_id`` cannot be an article's id, or None when it can.

    An id may mirror folders with ``/`` (as ids derived from paths do), but
    every segment must be a name: not empty, not ``.`` or ``..``. Whitespace,
    control characters, ``\\``, ``%``, ``?`` and ``#`` are refused because the
    id goes into links (``{id}`` in the permalink) and item ids as written.
    """
    if not 1 <= len(article_id) <= MAX_ID_LENGTH:
        return f"must be 1 to {MAX_ID_LENGTH} characters"
    found = _ID_FORBIDDEN.search(article_id)
    if found:
        return f"must not contain {_shown(found.group())}"
    if any(part in ("", ".", "..") for part in article_id.split("/")):
        return "must be names separated by '/': no leading, trailing or double '/', no '.' or '..'"
    return None


def _shown(character: str) -> str:
    return repr(character) if character.isprintable() else f"U+{ord(character):04X}"


def permalink(base_url: str, pattern: str, article_id: str, published: datetime) -> str:
    """The absolute link of an article built from the site's permalink pattern."""
    path = pattern.format(
        slug=slug_of(article_id),
        id=article_id,
        year=f"{published.year:04d}",
        month=f"{published.month:02d}",
        day=f"{published.day:02d}",
    )
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def ascii_host(url: str) -> str:
    """``url`` with an internationalised host name written as IDNA A-labels.

    A host is a DNS name, which percent-encoding (what ``quote`` does to any
    other non-ASCII character) does not make: ``https://bücher.example/`` is
    ``https://xn--bcher-kva.example/`` (IDNA 2008 with the UTS #46 mapping, as
    browsers do). A name IDNA 2008 forbids but browsers still open (a symbol:
    ``☃.example``) is written as IDNA 2003 writes it, which is what browsers
    resolve (``xn--n3h.example``). An ASCII host is left as it is. Raises
    `ValueError` naming a host neither allows (an empty label).
    """
    if url.isascii():  # every link a feed writes passes here
        return url
    netloc = urlsplit(url).netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.isascii():
        return url
    host, colon, port = hostport.partition(":")  # a non-ASCII host is no [IPv6] literal
    labels = _a_labels(host)
    start = url.index(netloc)
    return url[:start] + userinfo + at + labels + colon + port + url[start + len(netloc) :]


_HOST_LABELS = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")


def _a_labels(host: str) -> str:
    import idna  # 13 ms of tables, for the rare non-ASCII host only

    try:
        return str(idna.encode(host, uts46=True).decode("ascii"))
    except UnicodeError as exc:  # idna.IDNAError, and the codec's own
        labels = _idna_2003(host)
        if labels is None:
            raise ValueError(
                f"host {host!r} is not a valid internationalised domain name: {exc}"
            ) from None
        return labels


def _idna_2003(host: str) -> str | None:
    """``host`` in IDNA 2003 A-labels, when that gives a host name browsers open (no space,
    no ``%``: the old codec passes them through)."""
    try:
        labels = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    return labels if _HOST_LABELS.fullmatch(labels) else None


def primary_language(tag: str | None) -> str:
    """The primary subtag of a language tag, lower case: ``fr-CA`` and ``fr_CA`` -> ``fr``
    ("" when there is none)."""
    return (tag or "").replace("_", "-").split("-")[0].strip().lower()


MAX_SLUG_BYTES = 120
"""Longest tag slug kept whole, in UTF-8 bytes (file names stop at 255)."""


def tag_slug(name: str) -> str:
    """The folder name of a tag or section feed: lower case, word characters joined by ``-``.

    Unlike `slugify` it keeps non-Latin letters, so a tag written in Cyrillic still
    gets a feed of its own. It is never a dot segment and holds no separator. A
    very long one is cut and given a short hash of the whole, so it still fits
    in a file name and two long tags that start alike keep two feeds.
    """
    slug = re.sub(r"[\W_]+", "-", name.casefold()).strip("-") or "-"
    encoded = slug.encode()
    if len(encoded) <= MAX_SLUG_BYTES:
        return slug
    digest = hashlib.sha256(encoded).hexdigest()[:10]
    head = encoded[:MAX_SLUG_BYTES].decode("utf-8", "ignore").rstrip("-")
    return f"{head}-{digest}"


def revision_of(article: Article) -> str:
    """A fingerprint of what readers and followers see of an article.

    It changes when the article is revised (text, headline, link, tags, image),
    not when only its file is touched or moved, so a post is edited only for a
    real revision.
    """
    image = None if article.image is None else [article.image.url, article.image.alt]
    seen = [
        article.title, article.summary, article.body, article.url, list(article.tags),
        article.lang, article.content_warning, image,
    ]  # fmt: skip
    return hashlib.sha256(json.dumps(seen, ensure_ascii=False).encode()).hexdigest()[:32]


# XML 1.0 forbids C0 controls but tab, LF and CR, the surrogates and U+FFFE/U+FFFF;
# C1 controls are allowed but discouraged and no reader shows them, so they go too,
# and so do the other noncharacters, which HTML calls parse errors. (NEL, U+0085,
# is a line ending: `decode` turns it into one.)
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0x10000, 0x110000, 0x10000)
)
_FORBIDDEN_BMP = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
_FORBIDDEN = re.compile(f"[{_FORBIDDEN_BMP}{_NONCHARACTERS}]")
# The 32 noncharacters beyond the BMP make a slow class (each character is compared
# with each of them): text without any character past U+FFFF, nearly all of it, is
# scanned for the others only, with one class of ranges, about fifteen times faster.
_FORBIDDEN_IN_BMP = re.compile(f"[{_FORBIDDEN_BMP}]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _forbidden(text: str) -> re.Pattern[str]:
    """The pattern of forbidden characters that ``text`` needs."""
    return _FORBIDDEN_IN_BMP if text.isascii() or not _ASTRAL.search(text) else _FORBIDDEN


def forbidden_characters(text: str) -> list[int]:
    """Line numbers (1-based) holding characters XML forbids."""
    return sorted({text.count("\n", 0, m.start()) + 1 for m in _forbidden(text).finditer(text)})


def strip_forbidden(text: str) -> str:
    """``text`` without the characters XML forbids."""
    return _forbidden(text).sub("", text)


@dataclass(frozen=True, slots=True)
class RelatedLink:
    """Another article worth reading next: its headline and address."""

    title: str
    url: str
