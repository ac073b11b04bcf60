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
or close below it, and returns the best few hundred; their articles are read
only as far down as a few dozen live candidates fill the pool, and only the
weights of the query's terms come back for the final ranking (whole vectors
only for the few candidates compared with each other).

SQLAlchemy Core only, so SQLite and PostgreSQL behave the same; a search's
queries are compiled by it once per shape, and their values and rows go
through the driver as they are (see `_Prepared`).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Float,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    union_all,
    update,
)

from newsbot.articles import Article
from newsbot.related import tokens
from newsbot.related import vectors as tfidf
from newsbot.related.scoring import Candidate, Profile, Ranking
from newsbot.related.tokens import WEIGHTING, Counts, Weighting
from newsbot.state.database import IN_LIST, chunks
from newsbot.state.schema import article_tags, article_terms, articles, term_stats
from newsbot.times import from_epoch

DOCUMENTS = ""
"""The ``term_stats`` row whose ``df`` counts the indexed articles."""


PRESELECT = 5
"""Candidates taken by cosine alone per place in the pool, before the live and headline filters."""

WIDENING = 8
WIDENINGS = 2
"""How much, and how many times, the preselection widens when the filters leave too few."""

FREQUENCY_SHAPE = 64
"""`frequencies` asks for a multiple of this many terms (see there)."""

BATCH = 1.25
"""Articles read per candidate still missing from the pool, in a batch of a search: the
filters seldom leave any out (in a generated 100,000-article store, 40 candidates take 40
articles in the median, 120 in the 99th percentile); reading twice as many took 3 % longer."""


STATEMENTS = 512
"""Compiled statements kept per kind of query (one per shape: number of probe terms,
of paths, ...); a shape not kept is compiled again, which costs one to three milliseconds.
A search mostly sees the same few shapes (30 terms, a pool of 40)."""


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


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A query compiled once for a dialect, run with plain values through the driver.

    A related list runs a handful of small queries over a few hundred rows;
    building each statement with SQLAlchemy and processing each row it returned
    took longer than the database's work (the probe's weights alone were a
    ``union_all`` of a select per term, coerced anew each time). The values of
    these queries are strings and numbers, which the drivers take and return
    as they are, so nothing is lost by skipping SQLAlchemy's type processing.
    """

    sql: str
    order: tuple[str, ...] | None
    """The parameters' names in the order the driver wants them (None: it takes names)."""
    defaults: tuple[tuple[str, Any], ...]
    """Values SQLAlchemy bound itself (constants of the statement, an ``OFFSET``)."""

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> Sequence[Any]:
        """The rows (tuples of plain values) of the query with ``values`` for its named
        parameters."""
        given = dict(self.defaults) | dict(values)
        if self.order is None:
            return conn.exec_driver_sql(self.sql, given).all()
        return conn.exec_driver_sql(self.sql, tuple(given[key] for key in self.order)).all()


def _prepare(statement: Select[Any], dialect: Dialect) -> _Prepared:
    """``statement`` compiled for ``dialect`` (every parameter a plain, non-expanding bind)."""
    compiled = statement.compile(dialect=dialect)
    sql = str(compiled)
    if "POSTCOMPILE" in sql:  # an expanding or literal-execute parameter: not runnable as is
        raise ValueError(f"statement needs SQLAlchemy at execution: {sql}")
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    defaults = tuple((k, v) for k, v in compiled.params.items() if v is not None)
    return _Prepared(sql, order, defaults)


def _binds(prefix: str, n: int) -> list[Any]:
    """``n`` string parameters named ``prefix0``, ``prefix1``, ... (for an ``IN`` list)."""
    return [bindparam(f"{prefix}{i}", type_=String()) for i in range(n)]


def _numbered(prefix: str, items: Iterable[Any]) -> dict[str, Any]:
    """Values for the parameters `_binds` names."""
    return {f"{prefix}{i}": item for i, item in enumerate(items)}


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
    """Document frequencies of the known ones among ``terms``.

    The list is padded (its last term repeated) to a multiple of `FREQUENCY_SHAPE`, so
    that the few shapes are compiled once: a search asks for the idf of its pool's
    headline terms, a hundred to three hundred of them.
    """
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(terms))):
        size = min(-(-len(chunk) // FREQUENCY_SHAPE) * FREQUENCY_SHAPE, IN_LIST)
        padded = chunk + chunk[-1:] * (size - len(chunk))
        query = _frequencies_query(conn.dialect, size)
        found.update((term, df) for term, df in query.rows(conn, _numbered("t", padded)))
    return found


@functools.lru_cache(maxsize=STATEMENTS)
def _frequencies_query(dialect: Dialect, terms: int) -> _Prepared:
    """The query of `frequencies` for ``terms`` terms."""
    query = select(term_stats.c.term, term_stats.c.df).where(
        term_stats.c.term.in_(_binds("t", terms))
    )
    return _prepare(query, dialect)


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
    """One try of `candidates`, looking up the ``preselect`` most similar articles.

    They come most similar first (then by path); their articles are read a
    batch at a time, only as far down as the pool fills, and an article whose
    headline a more similar one has is passed over. In a large store the first
    few dozen of hundreds fill the pool, and reading every one's row (the
    headline lies past the stored text) took a quarter of the query's time.
    """
    values = {"path": profile.path, "duplicate": ranking.duplicate_similarity}
    values |= {"preselect": preselect} | _numbered("t", probe) | _numbered("w", probe.values())
    similar = _similar_query(conn.dialect, len(probe)).rows(conn, values)
    wanted = {"now": int(now.timestamp()), "id": profile.id, "title_key": profile.title_key}
    found: list[tuple[float, Any]] = []
    headlines: set[str | None] = set()
    start = 0
    while len(found) < ranking.pool and start < len(similar):
        size = min(int(BATCH * (ranking.pool - len(found))), IN_LIST)
        batch = similar[start : start + size]
        start += len(batch)
        query = _articles_query(conn.dialect, len(batch), bool(profile.title_key))
        paths = _numbered("p", (path for path, _ in batch))
        rows = {row[0]: row for row in query.rows(conn, wanted | paths)}
        for path, cosine in batch:
            if len(found) >= ranking.pool:
                break
            row = rows.get(path)
            if row is not None and row[3] not in headlines:
                headlines.add(row[3])
                found.append((cosine, row))
    tags = tags_of(conn, [row[0] for _, row in found])
    return [
        Candidate(
            article_id,
            path,
            from_epoch(published),
            title_key,
            cosine,
            section=section,
            tags=tags.get(path, frozenset()),
        )
        for cosine, (path, article_id, published, title_key, section) in found
    ]


@functools.lru_cache(maxsize=STATEMENTS)
def _similar_query(dialect: Dialect, terms: int) -> _Prepared:
    """`_most_similar` for a probe of ``terms`` terms, compiled."""
    return _prepare(_most_similar(terms), dialect)


@functools.lru_cache(maxsize=STATEMENTS)
def _articles_query(dialect: Dialect, paths: int, other_headline: bool) -> _Prepared:
    """What `_candidates` reads of ``paths`` articles (``p0``, ...) live at ``now``, other
    than ``id``, and without the headline ``title_key`` if ``other_headline``."""
    query = select(
        articles.c.path, articles.c.id, articles.c.published, articles.c.title_key
    ).add_columns(articles.c.section)
    query = query.where(articles.c.path.in_(_binds("p", paths)), *live_at(bindparam("now")))
    query = query.where(articles.c.id != bindparam("id"))
    if other_headline:
        query = query.where(articles.c.title_key != bindparam("title_key"))
    return _prepare(query, dialect)


def tags_of(conn: Connection, paths: Sequence[str]) -> dict[str, frozenset[str]]:
    """The tags of each of ``paths`` (those without tags are left out)."""
    found: dict[str, set[str]] = {}
    for chunk in chunks(paths):
        for path, tag in _tags_query(conn.dialect, len(chunk)).rows(conn, _numbered("p", chunk)):
            found.setdefault(path, set()).add(tag)
    return {path: frozenset(tags) for path, tags in found.items()}


@functools.lru_cache(maxsize=STATEMENTS)
def _tags_query(dialect: Dialect, paths: int) -> _Prepared:
    """The query of `tags_of` for ``paths`` paths."""
    query = select(article_tags.c.path, article_tags.c.tag)
    return _prepare(query.where(article_tags.c.path.in_(_binds("p", paths))), dialect)


def _most_similar(terms: int) -> Select[Any]:
    """Paths and cosines of the ``preselect`` indexed articles closest to a probe of
    ``terms`` terms (parameters ``t0``, ``w0``, ...), other than ``path``.

    The probe's weights come as a small table joined on the term, so the
    database reads the postings of those terms only, in index order.
    """
    weights = union_all(
        *(
            select(
                bindparam(f"t{i}", type_=String()).label("term"),
                bindparam(f"w{i}", type_=Float()).label("factor"),
            )
            for i in range(terms)
        )
    ).subquery()
    cosine = func.sum(article_terms.c.weight * weights.c.factor)
    return (
        select(article_terms.c.path, cosine.label("cosine"))
        .join(weights, weights.c.term == article_terms.c.term)
        .where(article_terms.c.path != bindparam("path"))
        .group_by(article_terms.c.path)
        .having(cosine <= bindparam("duplicate"))
        .order_by(cosine.desc(), article_terms.c.path)
        .limit(bindparam("preselect", type_=Integer()))
    )


def postings(conn: Connection, terms: Iterable[str]) -> dict[str, int]:
    """How many stored vectors hold each of ``terms`` (an index-only count)."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(terms))):
        query = _postings_query(conn.dialect, len(chunk))
        found.update((term, n) for term, n in query.rows(conn, _numbered("t", chunk)))
    return found


@functools.lru_cache(maxsize=STATEMENTS)
def _postings_query(dialect: Dialect, terms: int) -> _Prepared:
    """The query of `postings` for ``terms`` terms."""
    query = (
        select(article_terms.c.term, func.count())
        .where(article_terms.c.term.in_(_binds("t", terms)))
        .group_by(article_terms.c.term)
    )
    return _prepare(query, dialect)


def vectors(conn: Connection, paths: Sequence[str]) -> dict[str, dict[str, float]]:
    """The stored vectors of ``paths``."""
    found: dict[str, dict[str, float]] = {}
    for chunk in chunks(paths):
        query = _weights_query(conn.dialect, len(chunk), 0)
        for path, term, weight in query.rows(conn, _numbered("p", chunk)):
            found.setdefault(path, {})[term] = weight
    return found


def shared(
    conn: Connection, paths: Sequence[str], query: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """The stored weights of ``paths`` for the terms of ``query`` only: all a cosine with
    the query needs, a few postings a path instead of its whole vector."""
    found: dict[str, dict[str, float]] = {path: {} for path in paths}
    if not paths or not query:
        return found
    wanted = _numbered("t", sorted(query))
    for chunk in chunks(paths):
        statement = _weights_query(conn.dialect, len(chunk), len(wanted))
        for path, term, weight in statement.rows(conn, _numbered("p", chunk) | wanted):
            found[path][term] = weight
    return found


@functools.lru_cache(maxsize=STATEMENTS)
def _weights_query(dialect: Dialect, paths: int, terms: int) -> _Prepared:
    """The stored weights of ``paths`` paths (``p0``, ...): all of them (``terms`` 0,
    for `vectors`) or those of ``terms`` terms (``t0``, ..., for `shared`)."""
    query = select(article_terms.c.path, article_terms.c.term, article_terms.c.weight).where(
        article_terms.c.path.in_(_binds("p", paths))
    )
    if terms:
        query = query.where(article_terms.c.term.in_(_binds("t", terms)))
    return _prepare(query, dialect)


def live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Conditions on ``articles`` for what readers may see now and can follow a link to."""
    return live_at(int(now.timestamp()))


def live_at(until: Any) -> tuple[ColumnElement[bool], ...]:
    """`live` at the epoch ``until``: a value, or a parameter of a statement compiled once."""
    return (
        articles.c.visible,
        ~articles.c.shadowed,
        articles.c.published <= until,
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
