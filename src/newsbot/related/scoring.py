"""Picking related articles: the editors' choice first, then the most similar recent ones.

The score of a candidate weighs what an editor weighs: the similarity of the
two texts (see `related.vectors`), the share of their headlines' terms, time
proximity, shared tags and section. A candidate with the same headline as the
article, or too similar to it or to a candidate already taken, is a
near-duplicate and never offered.

Everything here is pure: no database, no clock (dates are passed in).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from newsbot.related.places import countries, is_place
from newsbot.related.tokens import words
from newsbot.related.vectors import carrying, similarity

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Ranking:
    """How candidates are scored and which are left out.

    ``duplicate_similarity``: in the Wikinews corpus the closest two distinct
    articles (templated COVID-19 milestone reports) have a cosine of 0.72, and
    none other passes 0.62; the same text under a new headline scores about
    0.9 (title terms weigh more). 0.8 lies between. ``pool`` is how many
    candidates the database returns for the recency factor to reorder.
    ``probe_budget``: how many postings (stored term weights) a query may read
    to find candidates, the heaviest terms first, skipping those whose postings
    do not fit; the pool is then ranked on all the query's terms. It bounds the
    work of a query in any store. In the labelled Wikinews corpus every term
    fits; in a generated 100,000-article store (``bench/related_bench.py``) a
    query's 30 terms have 16,000 postings in the median. A smaller budget is
    faster (5,000: a quarter less work, as many same-story links there) but
    loses the topic in a store whose topics share only common words (a test
    with 20,000 articles on five topics then links across topics).

    ``floor``, ``agreeing_terms``, ``agreement_share`` and ``lone_score``
    decide what is shown at all: a link scores at least ``floor``, and unless
    it scores ``lone_score`` it rests on ``agreeing_terms`` shared terms or
    more, each carrying ``agreement_share`` of the similarity. Wrong links
    mostly rest on one or two shared words (a place name, "Supreme Court",
    "national emergency"); stories share several. Chosen on the labelled
    Wikinews stories (``bench/related_eval.py``, which also reports the
    figures of a choice made on one half of the stories and measured on the
    other): wrong links 15.5 % to 2.7 % of those shown, strict precision
    0.867 to 0.797 (fewer links, right ones).

    ``place_disagreement`` and ``place_only`` weigh places (`related.places`):
    the score is multiplied by the first when the two headlines name places
    and none in common (a prime minister of Slovakia and one of the United
    Kingdom; COVID-19 in Bangladesh and in the United States), and by the
    second when every term the link rests on is a place name (a bus crash in
    Cuba and flight restrictions to Cuba). On the labelled stories they take
    wrong links from 2.7 % to 1.4 % of those shown at the same strict
    precision; ``bench/related_eval.py --cross-validate`` chooses them with
    the floor on one half of the stories and measures the other.

    ``headline_weight`` weighs the two headlines' own similarity (`headlines`),
    apart from the bodies': a rare word two headlines share (a person's or an
    event's name) says more than a common one ("new", "report"), which the
    plain share of headline terms counts alike; the idf is the store's. On
    the labelled stories, at the same floor, it takes strict precision from
    0.797 to 0.822 for wrong links 1.4 % to 1.7 %; ``--cross-validate``
    chooses it on either half, and each other half gains held out (0.833 to
    0.869, and 0.780 to 0.785 with wrong links 10.8 % to 4.5 %).
    """

    half_life_days: float = 60.0
    recency_floor: float = 0.4
    duplicate_similarity: float = 0.8
    pool: int = 40
    probe_budget: int = 20_000
    title_weight: float = 0.6
    tag_bonus: float = 0.3
    section_bonus: float = 0.1
    floor: float = 0.12
    story_level: float = 0.2
    names_weight: float = 0.0
    names_floor: float = 0.02
    overlap_floor: float = 0.3
    strong_similarity: float = 0.3
    agreeing_terms: int = 3
    agreement_share: float = 0.1
    lone_score: float = 0.3
    place_disagreement: float = 0.7
    place_only: float = 0.5
    headline_weight: float = 0.2


RANKING = Ranking()


@dataclass(frozen=True, slots=True)
class Profile:
    """What the ranking needs to know of the article it finds related ones for."""

    id: str
    path: str
    published: datetime
    title_key: str
    section: str | None = None
    tags: frozenset[str] = frozenset()
    lang: str | None = None
    names: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A computed related article: its cosine ``similarity``, and ``score`` once dated."""

    id: str
    path: str
    published: datetime
    title_key: str
    similarity: float
    score: float = 0.0
    section: str | None = None
    tags: frozenset[str] = frozenset()
    names: float = 0.0
    agreeing: int = 0
    places_only: bool = False
    headline: float = 0.0

    def kind(self, ranking: Ranking) -> str:
        """ "story" when its score says it follows the same events, "topic" otherwise."""
        return "story" if self.score >= ranking.story_level else "topic"


def rescore(
    found: Iterable[Candidate],
    query: Mapping[str, float],
    vectors: Mapping[str, Mapping[str, float]],
    names: Iterable[str] = (),
    share: float = 0.1,
) -> list[Candidate]:
    """``found`` with their similarity computed on whole vectors (by path), the part
    of it the query's named entities ``names`` make, how many shared terms carry
    ``share`` of it or more, and whether those are all place names."""
    named = {term: weight for term, weight in query.items() if term in set(names)}
    rescored = []
    for c in found:
        vector = vectors.get(c.path, {})
        evidence = carrying(query, vector, share)
        rescored.append(
            replace(
                c,
                similarity=similarity(query, vector),
                names=similarity(named, vector),
                agreeing=len(evidence),
                places_only=bool(evidence) and all(is_place(term) for term in evidence),
            )
        )
    return rescored


def headlines(
    query: Profile, found: Iterable[Candidate], idf: Mapping[str, float]
) -> list[Candidate]:
    """``found`` with the cosine of their headline and the query's (terms weighed by ``idf``,
    0 for a term it lacks): symmetric, as offers to other lists need."""
    mine = _unit(words(query.title_key, query.lang), idf)
    return [
        replace(c, headline=similarity(mine, _unit(words(c.title_key, query.lang), idf)))
        for c in found
    ]


def headline_terms(query: Profile, found: Iterable[Candidate]) -> set[str]:
    """The terms of the query's and the candidates' headlines (whose idf `headlines` needs)."""
    found_terms = (words(c.title_key, query.lang) for c in found)
    return set(words(query.title_key, query.lang)).union(*found_terms)


def _unit(terms: Iterable[str], idf: Mapping[str, float]) -> dict[str, float]:
    weights = {term: idf.get(term, 0.0) for term in set(terms)}
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {term: w / norm for term, w in weights.items() if w > 0} if norm else {}


def recency(published: datetime, reference: datetime, ranking: Ranking) -> float:
    """Between the floor and 1: halves towards the floor every ``half_life_days`` apart."""
    days = abs((reference - published).total_seconds()) / SECONDS_PER_DAY
    decay = math.pow(0.5, days / ranking.half_life_days)
    return ranking.recency_floor + (1.0 - ranking.recency_floor) * decay


def is_near_duplicate(title_a: str, title_b: str, cosine: float, ranking: Ranking) -> bool:
    """Whether two articles tell the same story: same headline, or nearly the same terms."""
    return (bool(title_a) and title_a == title_b) or cosine > ranking.duplicate_similarity


def rank(query: Profile, found: Iterable[Candidate], ranking: Ranking) -> list[Candidate]:
    """``found`` scored and best first, without the article itself, near-duplicates of it
    and anything under the similarity floor (two right links beat three with a wrong one).

    The score is what an editor weighs: the similarity of the two texts
    (named entities, title and lead above the body), plus the share of their
    headlines' terms and the similarity of the headlines alone, times the time
    proximity, raised by shared tags and section, lowered when the headlines'
    places differ or the link rests on places alone. Shown only over the floor
    and, below ``lone_score``, when several shared terms carry the similarity
    (see `Ranking`).
    """
    mine = set(words(query.title_key, query.lang))
    here = countries(query.title_key)
    kept = []
    for c in found:
        if (
            c.id == query.id
            or c.path == query.path
            or c.similarity <= 0.0
            or is_near_duplicate(query.title_key, c.title_key, c.similarity, ranking)
        ):
            continue
        overlap = _overlap(mine, c.title_key, query.lang)
        if (
            c.names < ranking.names_floor
            and overlap < ranking.overlap_floor
            and c.similarity < ranking.strong_similarity
        ):
            continue  # no named entity, little of the headline, few words in common
        score = link_score(query, c, overlap, here, ranking)
        if score < ranking.floor:
            continue
        if c.agreeing < ranking.agreeing_terms and score < ranking.lone_score:
            continue  # one or two shared words: a place name, a stock phrase
        kept.append(replace(c, score=score))
    return sorted(kept, key=lambda c: (-c.score, c.path))


def link_score(
    query: Profile, c: Candidate, overlap: float, here: frozenset[str], ranking: Ranking
) -> float:
    """The score `rank` gives ``c``, whose headline shares ``overlap`` of the query's terms
    (``here``: the countries the query's headline names)."""
    return (
        c.similarity
        + ranking.title_weight * overlap
        + ranking.names_weight * c.names
        + ranking.headline_weight * c.headline
    ) * (
        recency(c.published, query.published, ranking)
        * agreement(query, c, ranking)
        * _placed(here, c, ranking)
    )


def agreement(query: Profile, candidate: Candidate, ranking: Ranking) -> float:
    """1, raised by the share of tags the two articles have in common and by one section."""
    factor = 1.0
    if query.tags and candidate.tags:
        shared = len(query.tags & candidate.tags) / len(query.tags | candidate.tags)
        factor += ranking.tag_bonus * shared
    if query.section and query.section == candidate.section:
        factor += ranking.section_bonus
    return factor


def _placed(here: frozenset[str], candidate: Candidate, ranking: Ranking) -> float:
    """1, lowered when the headlines name different countries or the link rests on places only."""
    factor = ranking.place_only if candidate.places_only else 1.0
    there = countries(candidate.title_key)
    if here and there and not here & there:
        factor *= ranking.place_disagreement
    return factor


def _overlap(mine: set[str], title_key: str, lang: str | None) -> float:
    """Jaccard share of headline terms (series and follow-ups share their headline's words)."""
    theirs = set(words(title_key, lang))
    union = mine | theirs
    return len(mine & theirs) / len(union) if union else 0.0


def distinct(
    ranked: Sequence[Candidate],
    vectors: Mapping[str, Mapping[str, float]],
    ranking: Ranking,
    limit: int,
) -> list[Candidate]:
    """The first ``limit`` of ``ranked`` that are not near-duplicates of one taken before.

    ``vectors`` holds the vectors of the candidates by path; one without is taken as unique.
    """
    taken: list[Candidate] = []
    for candidate in ranked:
        if len(taken) >= limit:
            break
        if not any(_same_story(kept, candidate, vectors, ranking) for kept in taken):
            taken.append(candidate)
    return taken


def pick(
    editors: Sequence[str], computed: Sequence[Candidate], k: int, exclude: str | None = None
) -> list[str]:
    """Up to ``k`` ids: the editors' picks in their order, then computed ones; no repeats."""
    chosen: list[str] = []
    for article_id in [*editors, *(candidate.id for candidate in computed)]:
        if len(chosen) >= k:
            break
        if article_id != exclude and article_id not in chosen:
            chosen.append(article_id)
    return chosen


def _same_story(
    a: Candidate, b: Candidate, vectors: Mapping[str, Mapping[str, float]], ranking: Ranking
) -> bool:
    if a.id == b.id:
        return True
    cosine = similarity(vectors.get(a.path, {}), vectors.get(b.path, {}))
    return is_near_duplicate(a.title_key, b.title_key, cosine, ranking)
