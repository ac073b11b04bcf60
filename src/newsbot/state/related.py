"""Related articles for a post, from the state database: editors' picks, then computed ones.

The editors' references are resolved with `resolve.TitleIndex` over the few
articles the database finds for each (see `state.titles`); computed ones come
from the term index (see `state.terms`) and are ranked by `related.rank`. Only
articles readers can open are returned: live at ``now`` and with a link. The
work per call is a handful of indexed queries, whatever the size of the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from newsbot.articles import Article, tag_slug
from newsbot.related import scoring as related
from newsbot.related import tokens
from newsbot.related import vectors as tfidf
from newsbot.related.references import TitleIndex
from newsbot.related.scoring import RANKING, Candidate, Profile, Ranking
from newsbot.related.tokens import WEIGHTING, Weighting
from newsbot.settings import RelatedPolicy
from newsbot.state import terms, titles
from newsbot.state.index import decode_article
from newsbot.state.schema import articles
from newsbot.state.titles import title_key


@dataclass(frozen=True, slots=True)
class Ranked:
    """One search's ranked candidates, and how to read the vectors that tell
    near-duplicates apart (on the connection of the search)."""

    candidates: list[Candidate]
    conn: Connection
    ranking: Ranking

    def distinct(self, limit: int) -> list[Candidate]:
        """The first ``limit`` candidates that are not near-duplicates of one taken before.

        Vectors are read a few at a time, as far down the ranking as the choice goes:
        in a large store many candidates pass the floor and few are needed.
        """
        vectors: dict[str, dict[str, float]] = {}
        end = 0
        while True:
            start, end = end, end + 2 * max(limit, 1)
            paths = [c.path for c in self.candidates[start:end]]
            vectors |= terms.vectors(self.conn, paths)
            taken = related.distinct(self.candidates[:end], vectors, self.ranking, limit)
            if len(taken) >= limit or end >= len(self.candidates):
                return taken


class RelatedFinder:
    """Finds related articles over one engine; holds no data between calls."""

    def __init__(
        self,
        engine: Engine,
        weighting: Weighting = WEIGHTING,
        ranking: Ranking = RANKING,
    ) -> None:
        self.engine = engine
        self.weighting = weighting
        self.ranking = ranking

    def related(
        self, article: Article, k: int, now: datetime, policy: RelatedPolicy = "both"
    ) -> list[Article]:
        """Up to ``k`` articles: the editors' picks first, then computed ones, all distinct.

        ``policy`` leaves out the computed ones ("editors") or the picks ("computed").
        """
        with self.engine.connect() as conn:
            chosen = self.editors(conn, article, now) if policy != "computed" else []
            wanted = policy != "editors" and len(chosen) < k
            computed = self.computed(conn, article, k + len(chosen), now) if wanted else []
            ids = related.pick([a.id for a in chosen], computed, k, exclude=article.id)
            by_id = {a.id: a for a in chosen} | _by_id(conn, computed, ids)
        return [by_id[article_id] for article_id in ids if article_id in by_id]

    def editors(self, conn: Connection, article: Article, now: datetime) -> list[Article]:
        """The live, linked articles the editors' references resolve to, in their order."""
        found: dict[str, Article] = {}
        for ref in article.related:
            target = self.resolve(conn, article, ref)
            if target is not None and _readable(target, now):
                found.setdefault(target.id, target)
        return list(found.values())

    def computed(
        self, conn: Connection, article: Article, limit: int, now: datetime
    ) -> list[Candidate]:
        """The ``limit`` best computed candidates, best first."""
        return self.ranked(conn, article, now, limit).distinct(limit)

    def ranked(
        self, conn: Connection, article: Article, now: datetime, wanted: int, widen: bool = True
    ) -> Ranked:
        """The pool's candidates over the similarity floor, best first (``wanted`` at least,
        when the store has them)."""
        # An indexed article's own stored vector is its query: no tokenising per post.
        stored = terms.vectors(conn, [article.path]).get(article.path)
        query = stored or terms.vector_of(conn, article, self.weighting)
        probe = tfidf.probe(query, terms.postings(conn, query), self.ranking.probe_budget)
        profile = profile_of(article)
        found = terms.candidates(conn, probe, profile, now, self.ranking, wanted, widen)
        # Only the weights of the query's terms decide the score: whole vectors are
        # read only for the few `Ranked.distinct` looks at (near-duplicates).
        shared = terms.shared(conn, [c.path for c in found], query)
        rescored = related.rescore(
            found, query, shared, profile.names, self.ranking.agreement_share
        )
        if self.ranking.headline_weight:
            idf = terms.idf_of(conn, related.headline_terms(profile, rescored))
            rescored = related.headlines(profile, rescored, idf)
        ranked = related.rank(profile, rescored, self.ranking)
        return Ranked(ranked, conn, self.ranking)

    def resolve(self, conn: Connection, article: Article, ref: str) -> Article | None:
        """The article ``ref`` names, or None; never ``article`` itself."""
        stored = titles.exact(conn, ref) or titles.similar(conn, ref, article.lang, self.weighting)
        candidates = [decode_article(data) for data in stored]
        target = TitleIndex(candidates).resolve(ref, exclude=article.id)
        return next((c for c in candidates if c.id == target), None)


def profile_of(article: Article) -> Profile:
    """What the ranking weighs of the article whose related ones are sought."""
    return Profile(
        article.id,
        article.path,
        article.published,
        title_key(article.title),
        section=article.section,
        tags=frozenset(tag_slug(tag) for tag in article.tags),
        lang=article.lang,
        names=frozenset(
            tokens.names(article.title, article.body[: WEIGHTING.names_chars], article.lang)
        ),
    )


def related_for(engine: Engine, article: Article, k: int, now: datetime) -> list[Article]:
    """Up to ``k`` related articles of ``article`` for a post made at ``now``."""
    return RelatedFinder(engine).related(article, k, now)


def _by_id(
    conn: Connection, computed: Sequence[Candidate], ids: Sequence[str]
) -> dict[str, Article]:
    """The computed candidates among ``ids``, as articles."""
    paths = [c.path for c in computed if c.id in ids]
    if not paths:
        return {}
    query = select(articles.c.data).where(articles.c.path.in_(paths))
    rows: Sequence[str] = conn.execute(query).scalars().all()
    return {a.id: a for a in map(decode_article, rows)}


def _readable(article: Article, now: datetime) -> bool:
    return article.is_live(now) and bool(article.url)
