"""Finding, by SQL, the few articles an editors' reference may name.

`resolve.TitleIndex` decides what a reference means (id, path, URL, exact or
nearly exact headline); building one over a 100,000-article store for every
post would be slow and big. Instead the database narrows the store down to
the articles that could match: exact keys first (id, path, URL, normalised
headline, all indexed), and only when none matches, the articles sharing at
least half of the reference's words (the term index, which keeps every
headline word). A `TitleIndex` over those few gives the answer one over the
whole store gives: exact matches are all among them, and a headline within
its similarity threshold shares nearly all its words with the reference. A
reference that matches nothing stays unresolved, never guessed; the sample
store's references resolve exactly as with a whole-store index (tested).

The ``title_key`` and ``url_key`` columns of ``articles`` are cut to a length
every database can index; the final comparison is on the full values.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, Select, func, or_, select

from newsbot.related.references import normalise
from newsbot.related.tokens import Weighting, words
from newsbot.state.schema import article_terms, articles
from newsbot.store.scan import SUFFIXES

TITLE_KEY_LENGTH = 200
URL_KEY_LENGTH = 500
SIMILAR_LIMIT = 20
"""Articles sharing words with a reference that the headline comparison looks at."""

SHARED_WORDS = 0.5
"""Share of the reference's words a headline must contain to be compared at all."""


def title_key(title: str) -> str:
    """A headline as the store looks it up: `resolve.normalise`, cut to an indexable length."""
    return normalise(title)[:TITLE_KEY_LENGTH]


def url_key(url: str) -> str:
    """An article's link as the store looks it up (empty when it has none)."""
    return url[:URL_KEY_LENGTH]


def exact(conn: Connection, ref: str) -> list[str]:
    """Stored data of the articles whose id, path, URL or headline is ``ref``."""
    ref = ref.strip()
    if not ref:
        return []
    paths = [ref, *(ref + suffix for suffix in SUFFIXES)]
    urls = [url_key(ref), url_key(ref.rstrip("/") + "/")]
    keys = [articles.c.id == ref, articles.c.path.in_(paths), articles.c.url_key.in_(urls)]
    title = title_key(ref)
    if title:
        keys.append(articles.c.title_key == title)
    return _data(conn, select(articles.c.data).where(or_(*keys)))


def similar(conn: Connection, ref: str, lang: str | None, weighting: Weighting) -> list[str]:
    """Stored data of the articles whose terms include most of the words of ``ref``.

    ``lang`` is the referring article's: editors write headlines in their own language.
    """
    terms = sorted(set(words(ref, lang, weighting.stem)))
    if not terms:
        return []
    shared = func.count(article_terms.c.term)
    matching = (
        select(article_terms.c.path)
        .where(article_terms.c.term.in_(terms))
        .group_by(article_terms.c.path)
        .having(shared >= math.ceil(len(terms) * SHARED_WORDS))
        .order_by(shared.desc(), article_terms.c.path)
        .limit(SIMILAR_LIMIT)
        .subquery()
    )
    query = select(articles.c.data).join(matching, matching.c.path == articles.c.path)
    return _data(conn, query)


def _data(conn: Connection, query: Select[str]) -> list[str]:
    """Run ``query`` over the owners of their id, in a stable order (first stored first)."""
    ordered = query.where(~articles.c.shadowed).order_by(articles.c.added, articles.c.path)
    return list(conn.execute(ordered).scalars())
