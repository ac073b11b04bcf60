"""Stored related lists: each article's related articles, computed once at build time.

A build computes the list of every article it stores (the editors' picks as
resolved, then up to ``STORED`` computed links, each with its score and kind)
and keeps it in ``related_links``. Pages, feeds and posts then read the list:
a lookup by path, filtered to what readers can open at that moment and to the
policy of the site or the target (editors' picks, computed links, or both).

A change of the store can change other articles' lists; the work it causes is
bounded, never a sweep of the store:

- a new or changed article is *offered* to the articles its own search found
  (at most the ranking's pool): the score is symmetric, so the article enters
  a list where it beats the weakest stored link, or fills a short list;
- an article that changes or leaves is removed from the lists holding it, and
  those lists (the articles that pointed to it) are computed again;
- an editors' reference that matched nothing is kept with its lookup key, and
  the list is computed again when an article with that headline, id or path
  arrives.

Computed lists consider scheduled articles too (they are filtered when read),
so an article coming due needs no new search.

Computing a list is reading only (a few indexed queries and the ranking, ~10 ms
of CPU): many lists are computed by the shares of a `Spread` (the build's
processes, one per core), each on a connection of its own, before a short
transaction stores them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    insert,
    select,
)

from newsbot.articles import Article
from newsbot.related.scoring import Candidate
from newsbot.settings import RelatedPolicy
from newsbot.state.database import chunks
from newsbot.state.index import decode_article
from newsbot.state.related import RelatedFinder
from newsbot.state.schema import articles, related_links
from newsbot.state.terms import live, live_at
from newsbot.state.titles import title_key

STORED = 6
"""Computed links kept per article: more than any page or post shows, so that links
to articles withdrawn or not yet due can be left out when read."""

HORIZON = datetime(2200, 1, 1, tzinfo=UTC)
"""The "now" of a stored list's search: every stored article, scheduled or not."""

MARK = "computed"
MARK_POSITION = -1
"""Where a stored list's mark row sits: looked up by the whole primary key."""
EDITORS = "editors"
UNRESOLVED = "unresolved"
COMPUTED_KINDS = ("story", "topic")
CHUNK = 500
BACKLOG = 25
"""Lists of a build's leftover time stored per transaction, so the write lock is never
held for long (SQLite's busy timeout, which a publish pass or another process waits,
is 10 s; the budget 20 s)."""
ROUND = 8
"""Transactions' worth of leftover lists computed together: enough for every share of a
`Spread` to have a few seconds of work (forking costs tens of milliseconds)."""

KINDS: dict[str, tuple[str, ...]] = {
    "editors": (EDITORS,),
    "computed": COMPUTED_KINDS,
    "both": (EDITORS, *COMPUTED_KINDS),
}
"""The stored kinds each policy shows."""


@dataclass(frozen=True, slots=True)
class _Added:
    """A link added during an offer, read like a stored row by later offers."""

    path: str
    position: int
    kind: str
    target: str
    score: float


@dataclass(frozen=True, slots=True)
class Computed:
    """One article's list, computed and not stored yet: its rows, and the candidates
    it offers itself to (an arrival's strongest, see :meth:`RelatedLists.refresh`)."""

    path: str
    rows: list[dict[str, object]]
    offers: list[Candidate]


Work = Callable[[Sequence[str]], list[Computed]]


class Spread(Protocol):
    """Runs ``work`` on shares of ``paths`` (in parallel, say) and returns each share's result.

    ``work`` opens a connection of its own, so a share may run in a forked process.
    """

    def __call__(self, work: Work, paths: Sequence[str]) -> list[list[Computed]]: ...


@dataclass(frozen=True, slots=True)
class Link:
    """One related article as read from a stored list."""

    article: Article
    kind: str
    score: float


@dataclass
class Drained:
    """What `RelatedLists.drain` stored."""

    changed: set[str] = field(default_factory=set)
    """Paths of the articles whose list was stored."""
    finished: bool = False
    """Whether no article was left without a list when it ended."""


class RelatedLists:
    """Computes, refreshes and reads the stored lists over one finder's engine."""

    def __init__(self, finder: RelatedFinder, spread: Spread | None = None) -> None:
        self.finder = finder
        self.spread = spread

    # -- writing ------------------------------------------------------------------------

    def refresh(
        self,
        conn: Connection,
        fresh: Sequence[str],
        removed: Sequence[str],
        budget_seconds: float | None = None,
    ) -> set[str]:
        """Bring the lists up to date once ``fresh`` paths were (re)stored and ``removed`` dropped.

        Lists are computed in this order: those that lost a link, those an
        arrival may answer, then the fresh articles', until ``budget_seconds``
        are spent. What is left keeps no list until a later build (see
        :meth:`drain`); meanwhile a post searches its related articles itself.
        Returns the paths of the articles whose list changed (other than
        ``fresh``), whose pages and feeds show it.
        """
        deadline = None if budget_seconds is None else time.perf_counter() + budget_seconds
        gone = set(fresh) | set(removed)
        holders = self._holders(conn, gone) - gone
        waiting = self._waiting(conn, fresh) - gone - holders
        order = [*sorted(holders), *sorted(waiting), *fresh]
        # Computed before this transaction writes: a share forked meanwhile must not
        # inherit a connection in the middle of a write.
        computed = self._compute_all(conn, order, deadline, frozenset(fresh))
        self._delete(conn, gone | holders | waiting)
        self._insert(conn, computed)
        offers = [(c.path, candidate) for c in computed for candidate in c.offers]
        return holders | waiting | self._offer(conn, offers)

    def drain(self, engine: Engine, seconds: float) -> Drained:
        """Store lists of articles still without one (an earlier build's leftovers, newest
        first) for up to ``seconds``; returns their paths, and whether none is left.

        The lists of each round are computed first, then stored `BACKLOG` to a
        transaction: the budget is longer than anyone else should wait for the
        write lock.
        """
        deadline = time.perf_counter() + seconds
        drained = Drained()
        changed = drained.changed
        while time.perf_counter() < deadline:
            with engine.connect() as conn:
                backlog = self._backlog(conn, BACKLOG * ROUND)
                if not backlog:
                    drained.finished = True
                    break
                computed = self._compute_all(conn, backlog, deadline, frozenset())
            for part in chunks(computed, BACKLOG):
                with engine.begin() as conn:
                    # Only lists still missing: a build of another process may have stored some.
                    stored = self._marked(conn, [c.path for c in part])
                    part = [c for c in part if c.path not in stored]
                    self._insert(conn, part)
                changed.update(c.path for c in part)
            if len(computed) < len(backlog):
                break  # the deadline came during the round
        return drained

    def compute(self, conn: Connection, article: Article) -> list[Candidate]:
        """Store the list of ``article``; returns its ranked candidates (for offers)."""
        rows, candidates = self._list_of(conn, article)
        conn.execute(insert(related_links), rows)
        return candidates

    def _compute_all(
        self,
        conn: Connection,
        paths: Sequence[str],
        deadline: float | None,
        arrived: frozenset[str],
    ) -> list[Computed]:
        """The lists of the visible articles among ``paths``, in order, as far as ``deadline``
        allows: over the spread's shares when there is one, else on ``conn``."""
        if self.spread is None:
            return self._computed(paths, deadline, arrived, conn)
        work = partial(self._computed, deadline=deadline, arrived=arrived)
        return [c for share in self.spread(work, paths) for c in share]

    def _computed(
        self,
        paths: Sequence[str],
        deadline: float | None,
        arrived: frozenset[str],
        conn: Connection | None = None,
    ) -> list[Computed]:
        """One share of `_compute_all`: on ``conn``, or on a connection of its own (a share
        may run in a forked process)."""
        if conn is None:
            with self.finder.engine.connect() as own:
                return self._computed(paths, deadline, arrived, own)
        found: list[Computed] = []
        for path, article in self._articles(conn, paths):
            if deadline is not None and time.perf_counter() > deadline:
                break
            rows, pool = self._list_of(conn, article)
            # An arrival offers itself to its strongest candidates only: the score is symmetric.
            offers = [c for c in pool if c.path not in arrived][:STORED] if path in arrived else []
            found.append(Computed(path, rows, offers))
        return found

    def _list_of(
        self, conn: Connection, article: Article
    ) -> tuple[list[dict[str, object]], list[Candidate]]:
        """The rows of ``article``'s list, and its ranked candidates (reads only)."""
        rows: list[dict[str, object]] = [_row(article.path, MARK_POSITION, MARK, None, None, 0.0)]
        position = 0
        for ref in article.related:
            target = self.finder.resolve(conn, article, ref)
            if target is None:
                rows.append(_row(article.path, position, UNRESOLVED, None, title_key(ref), 0.0))
            else:
                rows.append(_row(article.path, position, EDITORS, target.path, None, 0.0))
            position += 1
        ranked = self.finder.ranked(conn, article, HORIZON, STORED, widen=False)
        for candidate in ranked.distinct(STORED):
            kind = candidate.kind(self.finder.ranking)
            rows.append(_row(article.path, position, kind, candidate.path, None, candidate.score))
            position += 1
        return rows, ranked.candidates

    @staticmethod
    def _insert(conn: Connection, computed: Sequence[Computed]) -> None:
        rows = [row for c in computed for row in c.rows]
        if rows:
            conn.execute(insert(related_links), rows)

    def _offer(self, conn: Connection, offers: Sequence[tuple[str, Candidate]]) -> set[str]:
        """Put each offered article in the list of its candidate where it beats the weakest
        computed link (or fills a short list); returns the lists that changed.

        One read of the lists concerned, one delete and one insert for all.
        """
        owners = sorted({candidate.path for _, candidate in offers})
        lists: dict[str, list[Any]] = {}  # stored rows, and links added meanwhile
        for chunk in chunks(owners, CHUNK):
            query = select(
                related_links.c.path,
                related_links.c.position,
                related_links.c.kind,
                related_links.c.target,
                related_links.c.score,
            ).where(related_links.c.path.in_(chunk))
            for row in conn.execute(query):
                lists.setdefault(row.path, []).append(row)
        dropped: list[dict[str, object]] = []
        added: list[dict[str, object]] = []
        changed: set[str] = set()
        for path, candidate in offers:
            rows = lists.get(candidate.path, [])
            if not any(row.kind == MARK for row in rows) or any(r.target == path for r in rows):
                continue  # no list yet (its own build computes it), or already in it
            computed = sorted(
                (r for r in rows if r.kind in COMPUTED_KINDS), key=lambda r: (r.score, r.position)
            )
            if len(computed) >= STORED:
                if computed[0].score >= candidate.score:
                    continue
                dropped.append({"p": candidate.path, "n": computed[0].position})
                rows.remove(computed[0])
            position = max(r.position for r in rows) + 1
            kind = candidate.kind(self.finder.ranking)
            added.append(_row(candidate.path, position, kind, path, None, candidate.score))
            rows.append(_Added(candidate.path, position, kind, path, candidate.score))
            changed.add(candidate.path)
        if dropped:
            conn.execute(
                delete(related_links).where(
                    related_links.c.path == bindparam("p"),
                    related_links.c.position == bindparam("n"),
                ),
                dropped,
            )
        if added:
            conn.execute(insert(related_links), added)
        return changed

    def _holders(self, conn: Connection, paths: Iterable[str]) -> set[str]:
        """Articles whose list links to one of ``paths``."""
        found: set[str] = set()
        for chunk in chunks(sorted(paths), CHUNK):
            query = select(related_links.c.path).where(related_links.c.target.in_(chunk))
            found.update(conn.execute(query.distinct()).scalars())
        return found

    def _waiting(self, conn: Connection, arrived: Sequence[str]) -> set[str]:
        """Articles with an unresolved reference that one of ``arrived`` may now answer
        (by its headline, id, path or link).

        A chunk of arrivals at a time: the four keys of every article of a first
        build (100,000 arrivals) held at once grew with the store.
        """
        found: set[str] = set()
        for chunk in chunks(arrived, CHUNK):
            keys: set[str] = set()
            query = select(
                articles.c.title_key, articles.c.id, articles.c.path, articles.c.url_key
            ).where(articles.c.path.in_(chunk))
            for row in conn.execute(query):
                keys.update(title_key(k) for k in row if k)
            for part in chunks(sorted(keys - {""}), CHUNK):
                waiting = select(related_links.c.path).where(
                    related_links.c.kind == UNRESOLVED, related_links.c.ref_key.in_(part)
                )
                found.update(conn.execute(waiting.distinct()).scalars())
        return found

    def _marked(self, conn: Connection, paths: Sequence[str]) -> set[str]:
        """Those of ``paths`` that have a stored list."""
        found: set[str] = set()
        for chunk in chunks(paths, CHUNK):
            query = select(related_links.c.path).where(
                related_links.c.path.in_(chunk),
                related_links.c.position == MARK_POSITION,
                related_links.c.kind == MARK,
            )
            found.update(conn.execute(query).scalars())
        return found

    def _backlog(self, conn: Connection, limit: int) -> list[str]:
        """Up to ``limit`` visible articles without a stored list (an earlier build's leftovers)."""
        marked = and_(
            related_links.c.path == articles.c.path,
            related_links.c.position == MARK_POSITION,
            related_links.c.kind == MARK,
        )
        query = (
            select(articles.c.path)
            .outerjoin(related_links, marked)
            .where(articles.c.visible, ~articles.c.shadowed, related_links.c.path.is_(None))
            .order_by(articles.c.published.desc())
            .limit(limit)
        )
        return list(conn.execute(query).scalars())

    @staticmethod
    def _delete(conn: Connection, paths: Iterable[str]) -> None:
        for chunk in chunks(sorted(paths), CHUNK):
            conn.execute(delete(related_links).where(related_links.c.path.in_(chunk)))

    @staticmethod
    def _articles(conn: Connection, paths: Sequence[str]) -> Iterator[tuple[str, Article]]:
        """The stored, visible articles among ``paths``."""
        for chunk in chunks(paths, CHUNK):
            query = select(articles.c.path, articles.c.data).where(
                articles.c.path.in_(chunk), articles.c.visible, ~articles.c.shadowed
            )
            for row in conn.execute(query):
                yield row.path, decode_article(row.data)

    # -- reading ------------------------------------------------------------------------

    def stored(self, conn: Connection, path: str) -> bool:
        """Whether ``path`` has a stored list (possibly empty)."""
        return conn.execute(_STORED, {"owner": path}).first() is not None

    def links(
        self, conn: Connection, path: str, now: datetime, policy: RelatedPolicy, k: int
    ) -> list[Link]:
        """Up to ``k`` related articles of ``path`` readers can open at ``now``.

        The editors' picks first in their order, then computed links best
        first (same-story links score above same-topic ones); no repeats.
        """
        if k <= 0:
            return []
        rows = conn.execute(_ONE_LIST[policy], {"owner": path, "until": int(now.timestamp())})
        return _best(rows, k, {})

    def lookup_many(
        self, paths: Iterable[str], k: int, now: datetime, policy: RelatedPolicy = "both"
    ) -> dict[str, list[Article]]:
        """`lookup` for many articles at once: a few queries on one connection, where
        one lookup per page made a build spend more on lookups than on the pages."""
        wanted = sorted(set(paths))
        lists: dict[str, list[Any]] = {path: [] for path in wanted}
        if k > 0:
            with self.finder.engine.connect() as conn:
                for chunk in chunks(wanted, CHUNK):
                    query = _links_query(chunk, now, policy)
                    for row in conn.execute(query):
                        lists[row.owner].append(row)
        decoded: dict[str, Article] = {}
        return {
            path: [link.article for link in _best(rows, k, decoded)] for path, rows in lists.items()
        }

    def related(
        self, article: Article, k: int, now: datetime, policy: RelatedPolicy = "both"
    ) -> list[Article]:
        """The related articles of ``article`` for a page, a feed entry or a post.

        A lookup of the stored list; an article without one (not built yet)
        gets its list searched now, under the same policy.
        """
        with self.finder.engine.connect() as conn:
            if self.stored(conn, article.path):
                return [link.article for link in self.links(conn, article.path, now, policy, k)]
        return self.finder.related(article, k, now, policy)

    def lookup(
        self, article: Article, k: int, now: datetime, policy: RelatedPolicy = "both"
    ) -> list[Article]:
        """The stored list of ``article`` only: none yet if it has not been computed.

        The build shows this on pages and in feeds. Searching there for every
        article still without a list (a large first build runs past its related
        budget) made builds search once per page and feed entry; the build
        that later stores the list rewrites the page and feeds that show it.
        """
        with self.finder.engine.connect() as conn:
            return [link.article for link in self.links(conn, article.path, now, policy, k)]


def _best(rows: Iterable[Any], k: int, decoded: dict[str, Article]) -> list[Link]:
    """The first ``k`` distinct targets of one article's link rows: the editors' picks in
    their order, then computed links best first (ties in stored order). ``decoded``
    keeps the articles decoded so far, for targets shared by several lists."""
    ordered = sorted(
        rows,
        key=lambda r: (
            r.kind != EDITORS,
            r.position if r.kind == EDITORS else 0,
            -r.score,
            r.position,
        ),
    )
    found: dict[str, Link] = {}
    for row in ordered:
        if len(found) >= k:
            break
        if row.path not in found:
            article = decoded.get(row.path)
            if article is None:
                article = decoded[row.path] = decode_article(row.data)
            found[row.path] = Link(article, row.kind, row.score)
    return list(found.values())


def _links_query(owners: Sequence[str], now: datetime, policy: RelatedPolicy) -> Select[Any]:
    """The stored links of ``owners`` under ``policy`` to articles readers can open at ``now``."""
    return _links_select(related_links.c.path.in_(owners), policy, live(now))


def _links_select(
    owners: ColumnElement[bool], policy: str, live: tuple[ColumnElement[bool], ...]
) -> Select[Any]:
    return (
        select(
            related_links.c.path.label("owner"),
            related_links.c.kind,
            related_links.c.position,
            related_links.c.score,
            articles.c.path,
            articles.c.data,
        )
        .join(articles, articles.c.path == related_links.c.target)
        .where(owners, related_links.c.kind.in_(KINDS[policy]))
        .where(*live, articles.c.path != related_links.c.path)
    )


# One article's list, read for every post: statements built once, bound to ``owner`` (and
# ``until``, the moment as epoch seconds); building them per post cost more than running them.
_ONE_LIST = {
    policy: _links_select(
        related_links.c.path == bindparam("owner"), policy, live_at(bindparam("until"))
    )
    for policy in KINDS
}
_STORED = (
    select(related_links.c.path)
    .where(
        related_links.c.path == bindparam("owner"),
        related_links.c.position == MARK_POSITION,
        related_links.c.kind == MARK,
    )
    .limit(1)
)


def _row(
    path: str, position: int, kind: str, target: str | None, ref_key: str | None, score: float
) -> dict[str, object]:
    return {
        "path": path,
        "position": position,
        "kind": kind,
        "target": target,
        "ref_key": ref_key,
        "score": score,
    }
