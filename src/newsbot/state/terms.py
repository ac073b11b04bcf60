"""The term index: each article's term vector and the store's document frequencies.

``article_terms`` holds, per article, the unit tf-idf vector `related.vectors.vector`
makes (a few dozen terms). ``term_stats`` holds each term's document
frequency over every term of every indexed article, and under the empty term
(which no tokeniser produces) the number of indexed articles. Both change
incrementally, in the transaction that stores or removes the articles: adding
then removing an article leaves them as they were. Removal reads the article's
stored text back to know which frequencies to lower. A vector keeps the idf of
the moment it was stored; idf moves slowly once a store has a few hundred
articles, and a full rebuild recomputes everything.

A query never loads the store: the database sums, per candidate, the products
of its weights with the query's over the query's strongest terms only (an
inverted index scan, in index order), which is the cosine of the two vectors
or close below it, and returns the best few dozen live candidates; only their
vectors come back for the final ranking.

SQLAlchemy Core only, so SQLite and PostgreSQL behave the same.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)

from newsbot.articles import Article
from newsbot.related import tokens
from newsbot.related import vectors as tfidf
from newsbot.related.scoring import Candidate, Profile, Ranking
from newsbot.related.tokens import WEIGHTING, Counts, Weighting
from newsbot.state.database import chunks
from newsbot.state.schema import article_tags, article_terms, articles, term_stats
from newsbot.times import from_epoch

DOCUMENTS = ""
"""The ``term_stats`` row whose ``df`` counts the indexed articles."""


PRESELECT = 5
"""Candidates taken by cosine alone per place in the pool, before the live and headline filters."""

WIDENING = 8
WIDENINGS = 2
"""How much, and how many times, the preselection widens when the filters leave too few."""


def index(
    conn: Connection,
    items: Sequence[tuple[str, Article, Counts | None]],
    weighting: Weighting = WEIGHTING,
) -> None:
    """Index freshly stored articles, given as (path, article, counts if already counted).

    Their paths must be unindexed. A build counts terms in its parse workers, in
    parallel, and hands the counts over; other callers let this function count.
    """
    if not items:
        return
    counted = [
        (path, counts if counts is not None else _count(article, weighting))
        for path, article, counts in items
    ]
    df = _shift(conn, _frequency_changes((counts for _, counts in counted), +1))
    idf_of = _idf(df)
    rows = [
        {"term": term, "path": path, "weight": weight}
        for path, counts in counted
        for term, weight in tfidf.vector(counts, idf_of, weighting).items()
    ]
    if rows:  # in key order: the table is clustered by term, and sorted inserts stay local
        rows.sort(key=itemgetter("term", "path"))
        _insert_many(conn, article_terms, rows)


def _insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys, plain values) with one ``executemany``.

    The statement is compiled by SQLAlchemy for the connection's dialect, but the rows go
    to the driver as they are: SQLAlchemy's own processing of each row's parameters took
    more time than the database's insert (a build stores tens of rows per article).
    """
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        order = compiled.positiontup or []
        conn.exec_driver_sql(str(compiled), [tuple(row[key] for key in order) for row in rows])
    else:
        conn.exec_driver_sql(str(compiled), rows)


def unindex(conn: Connection, paths: Sequence[str], weighting: Weighting = WEIGHTING) -> None:
    """Forget the terms of ``paths``; call it while their ``articles`` rows still exist."""
    for chunk in chunks(paths):
        query = select(articles.c.data).where(articles.c.path.in_(chunk))
        stored: Sequence[str] = conn.execute(query).scalars().all()
        counted = [_count_stored(data, weighting) for data in stored]
        if counted:
            _shift(conn, _frequency_changes(counted, -1))
        conn.execute(delete(article_terms).where(article_terms.c.path.in_(chunk)))


def vector_of(
    conn: Connection, article: Article, weighting: Weighting = WEIGHTING
) -> dict[str, float]:
    """The vector of ``article`` against the store as it is now (indexed or not)."""
    counts = _count(article, weighting)
    return tfidf.vector(counts, idf_of(conn, counts.distinct()), weighting)


def idf_of(conn: Connection, terms: Iterable[str]) -> dict[str, float]:
    """The idf of each of ``terms`` in the store now (unknown terms count as seen once)."""
    wanted = set(terms) | {DOCUMENTS}
    df = dict.fromkeys(wanted, 0) | frequencies(conn, wanted)
    return _idf(df)


def frequencies(conn: Connection, terms: Iterable[str]) -> dict[str, int]:
    """Document frequencies of the known ones among ``terms``."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(terms))):
        rows = conn.execute(
            select(term_stats.c.term, term_stats.c.df).where(term_stats.c.term.in_(chunk))
        )
        found.update((row.term, row.df) for row in rows)
    return found


def candidates(
    conn: Connection,
    probe: Mapping[str, float],
    profile: Profile,
    now: datetime,
    ranking: Ranking,
    wanted: int,
    widen: bool = True,
) -> list[Candidate]:
    """Up to ``pool`` live, linked articles sharing most weight with ``probe``, best first.

    ``probe`` is (part of) a unit vector, so the summed products are the cosine,
    or a lower bound of it over the whole vectors. The near-duplicate rules are
    applied here already, so that copies do not fill the pool: nothing with the
    article's headline or over the cosine threshold (a lower bound over it is
    enough), and one article per headline (the most similar). Only the
    ``PRESELECT`` times ``pool`` most similar are looked up in ``articles``,
    which bounds the work whatever the size of the store; when that leaves
    fewer than ``wanted`` (a headline the store has hundreds of times, a flood
    of drafts), the preselection widens, at most ``WIDENINGS`` times.
    """
    if not probe:
        return []
    preselect = ranking.pool * PRESELECT
    found = _candidates(conn, probe, profile, now, ranking, preselect)
    for _ in range(WIDENINGS if widen else 0):
        if len(found) >= wanted:
            break
        preselect *= WIDENING
        found = _candidates(conn, probe, profile, now, ranking, preselect)
    return found


def _candidates(
    conn: Connection,
    probe: Mapping[str, float],
    profile: Profile,
    now: datetime,
    ranking: Ranking,
    preselect: int,
) -> list[Candidate]:
    """One try of `candidates`, looking up the ``preselect`` most similar articles."""
    similar = _most_similar(probe, profile, ranking, preselect).subquery()
    per_headline = func.row_number().over(
        partition_by=articles.c.title_key, order_by=(similar.c.cosine.desc(), similar.c.path)
    )
    ranked = (
        select(similar.c.cosine, articles.c.path, articles.c.id, articles.c.published)
        .add_columns(articles.c.title_key, articles.c.section, per_headline.label("nth"))
        .join(articles, articles.c.path == similar.c.path)
        .where(*live(now), articles.c.id != profile.id)
        .where(articles.c.title_key != profile.title_key if profile.title_key else true())
        .subquery()
    )
    best = (
        select(ranked)
        .where(ranked.c.nth == 1)
        .order_by(ranked.c.cosine.desc(), ranked.c.path)
        .limit(ranking.pool)
    )
    rows = conn.execute(best).all()
    tags = tags_of(conn, [row.path for row in rows])
    return [
        Candidate(
            row.id,
            row.path,
            from_epoch(row.published),
            row.title_key,
            row.cosine,
            section=row.section,
            tags=tags.get(row.path, frozenset()),
        )
        for row in rows
    ]


def tags_of(conn: Connection, paths: Sequence[str]) -> dict[str, frozenset[str]]:
    """The tags of each of ``paths`` (those without tags are left out)."""
    found: dict[str, set[str]] = {}
    for chunk in chunks(paths):
        query = select(article_tags.c.path, article_tags.c.tag).where(
            article_tags.c.path.in_(chunk)
        )
        for row in conn.execute(query):
            found.setdefault(row.path, set()).add(row.tag)
    return {path: frozenset(tags) for path, tags in found.items()}


def _most_similar(
    probe: Mapping[str, float], profile: Profile, ranking: Ranking, preselect: int
) -> Select[Any]:
    """Paths and cosines of the ``preselect`` indexed articles closest to ``probe``.

    The probe's weights come as a small table joined on the term, so the
    database reads the postings of those terms only, in index order.
    """
    weights = union_all(
        *(select(literal(t).label("term"), literal(w).label("factor")) for t, w in probe.items())
    ).subquery()
    cosine = func.sum(article_terms.c.weight * weights.c.factor)
    return (
        select(article_terms.c.path, cosine.label("cosine"))
        .join(weights, weights.c.term == article_terms.c.term)
        .where(article_terms.c.path != profile.path)
        .group_by(article_terms.c.path)
        .having(cosine <= ranking.duplicate_similarity)
        .order_by(cosine.desc(), article_terms.c.path)
        .limit(preselect)
    )


def postings(conn: Connection, terms: Iterable[str]) -> dict[str, int]:
    """How many stored vectors hold each of ``terms`` (an index-only count)."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(terms))):
        query = (
            select(article_terms.c.term, func.count())
            .where(article_terms.c.term.in_(chunk))
            .group_by(article_terms.c.term)
        )
        found.update((row[0], row[1]) for row in conn.execute(query))
    return found


def vectors(conn: Connection, paths: Sequence[str]) -> dict[str, dict[str, float]]:
    """The stored vectors of ``paths``."""
    found: dict[str, dict[str, float]] = {}
    for chunk in chunks(paths):
        query = select(article_terms.c.path, article_terms.c.term, article_terms.c.weight)
        for row in conn.execute(query.where(article_terms.c.path.in_(chunk))):
            found.setdefault(row.path, {})[row.term] = row.weight
    return found


def shared(
    conn: Connection, paths: Sequence[str], query: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """The stored weights of ``paths`` for the terms of ``query`` only: all a cosine with
    the query needs, a few postings a path instead of its whole vector."""
    found: dict[str, dict[str, float]] = {path: {} for path in paths}
    if not paths or not query:
        return found
    wanted = sorted(query)
    for chunk in chunks(paths):
        query_rows = select(article_terms.c.path, article_terms.c.term, article_terms.c.weight)
        rows = conn.execute(
            query_rows.where(article_terms.c.path.in_(chunk), article_terms.c.term.in_(wanted))
        )
        for row in rows:
            found[row.path][row.term] = row.weight
    return found


def live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Conditions on ``articles`` for what readers may see now and can follow a link to."""
    return (
        articles.c.visible,
        ~articles.c.shadowed,
        articles.c.published <= int(now.timestamp()),
        articles.c.url_key != "",
    )


def _count(article: Article, weighting: Weighting) -> Counts:
    return tokens.count(article.title, article.body, article.lang, weighting)


def _count_stored(data: str, weighting: Weighting) -> Counts:
    """Counts of an article from its stored JSON (the fields `index.encode_article` writes)."""
    fields = json.loads(data)
    return tokens.count(fields["title"], fields["body"], fields.get("lang"), weighting)


def _frequency_changes(counted: Iterable[Counts], sign: int) -> Counter[str]:
    """How each term's document frequency changes when ``counted`` come (+1) or go (-1)."""
    changes: Counter[str] = Counter()
    for counts in counted:
        changes.update(counts.distinct())
        changes[DOCUMENTS] += 1
    return Counter({term: sign * n for term, n in changes.items()})


def _shift(conn: Connection, changes: Mapping[str, int]) -> dict[str, int]:
    """Apply frequency changes; returns each changed term's new frequency.

    Each kind of change is one statement run for many rows (compiled once); a
    term whose frequency drops to zero loses its row.
    """
    before = frequencies(conn, changes)
    after = {term: before.get(term, 0) + change for term, change in changes.items()}
    moved = [{"t": t, "change": changes[t]} for t in sorted(before) if after[t] > 0]
    if moved:
        conn.execute(_SHIFT, moved)
    gone = [{"t": t} for t in sorted(before) if after[t] <= 0]
    if gone:
        conn.execute(delete(term_stats).where(term_stats.c.term == bindparam("t")), gone)
    new = [{"term": t, "df": n} for t, n in sorted(after.items()) if t not in before and n > 0]
    if new:
        conn.execute(insert(term_stats), new)
    return after


_SHIFT = (
    update(term_stats)
    .where(term_stats.c.term == bindparam("t"))
    .values(df=term_stats.c.df + bindparam("change"))
)


def _idf(df: Mapping[str, int]) -> dict[str, float]:
    documents = df.get(DOCUMENTS, 0)
    return {term: tfidf.idf(n, documents) for term, n in df.items() if term != DOCUMENTS}
