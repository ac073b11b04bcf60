"""Counted terms into small unit tf-idf vectors, and how two of them compare.

A term weighs ``(1 + ln tf) * idf``, title occurrences counting
``title_boost`` times; only the ``max_terms`` strongest are kept (every title
term among them) and the vector has unit length. Small vectors can live in
the state database, and the dot product of two of them, summed by the
database over the shared terms only, is their cosine.

Pure: no database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from newsbot.related.tokens import Counts, Weighting


def idf(df: int, documents: int) -> float:
    """Inverse document frequency, smoothed so a term in every document still weighs a little."""
    return math.log1p(max(documents, 1) / max(df, 1))


def vector(counts: Counts, idf_of: Mapping[str, float], weighting: Weighting) -> dict[str, float]:
    """The unit tf-idf vector of the kept terms: every title term, then the strongest others."""
    weight = {term: tf * idf_of.get(term, 0.0) for term, tf in _tf(counts, weighting).items()}
    order = sorted(sorted(weight), key=weight.__getitem__, reverse=True)  # ties by term
    titled = [term for term in order if term in counts.title][: weighting.max_terms]
    room = max(weighting.max_terms - len(titled), 0)
    kept = titled + [term for term in order if term not in counts.title][:room]
    norm = math.sqrt(sum(weight[term] ** 2 for term in kept))
    return {term: weight[term] / norm for term in kept if weight[term] > 0} if norm else {}


def _tf(counts: Counts, weighting: Weighting) -> dict[str, float]:
    """Sublinear term frequency: title and lead occurrences boosted, named entities raised."""
    raw: dict[str, float] = dict(counts.body)
    for term, n in counts.title.items():
        raw[term] = raw.get(term, 0) + weighting.title_boost * n
    for term, n in counts.lead.items():
        raw[term] = raw.get(term, 0) + weighting.lead_boost * n
    for term, n in counts.names.items():
        if " " in term:  # phrases are not counted elsewhere
            raw[term] = raw.get(term, 0) + n
    return {
        term: (1.0 + math.log(n)) * (weighting.name_boost if term in counts.names else 1.0)
        for term, n in raw.items()
        if n > 0
    }


def probe(
    vector: Mapping[str, float], postings: Mapping[str, int], budget: int
) -> dict[str, float]:
    """The terms of ``vector`` to look candidates up by: the heaviest whose postings fit ``budget``.

    A term that does not fit is skipped, not the end: the lighter terms after it
    may be rarer. ``postings`` gives each term's number of postings (0 if absent).
    """
    chosen: dict[str, float] = {}
    spent = 0
    for term, weight in sorted(vector.items(), key=lambda item: (-item[1], item[0])):
        cost = postings.get(term, 0)
        if spent + cost <= budget:
            chosen[term] = weight
            spent += cost
    return chosen


def similarity(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two unit vectors."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return sum(weight * large[term] for term, weight in small.items() if term in large)


def agreeing(a: Mapping[str, float], b: Mapping[str, float], share: float) -> int:
    """How many terms of two unit vectors carry ``share`` of their cosine or more each."""
    return len(carrying(a, b, share))


def carrying(a: Mapping[str, float], b: Mapping[str, float], share: float) -> list[str]:
    """The terms of two unit vectors that carry ``share`` of their cosine or more each:
    the evidence a link rests on."""
    products = {term: weight * b[term] for term, weight in a.items() if term in b}
    least = share * sum(products.values())
    return sorted(term for term, product in products.items() if product >= least)
