"""A learned pairwise ranking of related articles, against the hand-tuned rule, held out.

What it does
    Builds the labelled Wikinews store exactly as ``bench/related_eval.py`` does,
    takes every article's candidate pool (the search's ``pool`` candidates, with
    the similarity, named-entity share and shared-term evidence the ranking
    computes) and gives each (article, candidate) pair a handful of features:
    cosine, headline overlap, named-entity share, shared headline terms, shared
    terms carrying the similarity, whether those are all places, whether the
    headlines name different countries, days apart (log), tag and section
    agreement, and the hand-tuned rule's score. A logistic regression ("same
    story"), fitted by Newton's method with a small ridge in pure Python,
    ranks the pool; a probability floor decides what is shown.

Held out
    The stories are split in the two halves of ``related_eval.py
    --cross-validate``. The model and its floor are fitted on one half's
    queries and measured on the other's, both ways round; the hand-tuned rule
    gets the same treatment (its floor, agreement and place factors chosen on
    one half, measured on the other) and is also shown as shipped.

Usage (from the repository root)::

    .venv/bin/python bench/related_fit.py
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import related_eval as ev
from sqlalchemy import Connection, Engine

from newsbot.articles import Article
from newsbot.related import scoring
from newsbot.related import vectors as tfidf
from newsbot.related.places import countries
from newsbot.related.scoring import RANKING, Candidate, Ranking
from newsbot.related.tokens import words
from newsbot.state import terms
from newsbot.state.related import profile_of
from newsbot.state.related_lists import HORIZON

FEATURES = (
    "cosine",
    "title overlap",
    "names",
    "shared title terms",
    "agreeing terms",
    "places only",
    "places differ",
    "log days apart",
    "tags",
    "section",
    "rule score",
)
RIDGE = 1.0
FLOORS = tuple(round(0.05 * n, 2) for n in range(1, 19))


@dataclass(frozen=True)
class Pair:
    """One candidate of one query: its features and whether it shares a story."""

    query: str
    candidate: Candidate
    features: tuple[float, ...]
    story: bool


def pool(conn: Connection, article: Article, ranking: Ranking) -> list[Candidate]:
    """The search's candidates of ``article``, rescored, before the rule's floors."""
    stored = terms.vectors(conn, [article.path]).get(article.path, {})
    probe = tfidf.probe(stored, terms.postings(conn, stored), ranking.probe_budget)
    profile = profile_of(article)
    found = terms.candidates(conn, probe, profile, HORIZON, ranking, ranking.pool, widen=False)
    shared = terms.shared(conn, [c.path for c in found], stored)
    rescored = scoring.rescore(found, stored, shared, profile.names, ranking.agreement_share)
    idf = terms.idf_of(conn, scoring.headline_terms(profile, rescored))
    return scoring.headlines(profile, rescored, idf)


def features(article: Article, c: Candidate, ranking: Ranking) -> tuple[float, ...] | None:
    """The pair's features, or None when the rule never offers it (itself, a near-duplicate)."""
    profile = profile_of(article)
    if (
        c.id == profile.id
        or c.similarity <= 0.0
        or scoring.is_near_duplicate(profile.title_key, c.title_key, c.similarity, ranking)
    ):
        return None
    mine = set(words(profile.title_key, profile.lang))
    theirs = set(words(c.title_key, profile.lang))
    union = mine | theirs
    overlap = len(mine & theirs) / len(union) if union else 0.0
    here, there = countries(profile.title_key), countries(c.title_key)
    days = abs((c.published - profile.published).total_seconds()) / scoring.SECONDS_PER_DAY
    tags = (
        len(profile.tags & c.tags) / len(profile.tags | c.tags) if profile.tags and c.tags else 0.0
    )
    rule = scoring.link_score(profile, c, overlap, here, ranking)
    return (
        c.similarity,
        overlap,
        c.names,
        float(len(mine & theirs)),
        float(min(c.agreeing, 8)),
        float(c.places_only),
        float(bool(here and there and not here & there)),
        math.log1p(days),
        tags,
        float(bool(profile.section and profile.section == c.section)),
        rule,
    )


def built(
    rows: Sequence[dict[str, str]], truth: ev.Truth, work: Path
) -> tuple[Engine, list[Article], list[list[Article]]]:
    """The labelled store built in ``work`` as ``related_eval.py`` builds it: the engine,
    the articles by date, and the two halves of ``--cross-validate``."""
    root = work / "content"
    ev.write_store(rows, root)
    engine, articles, _ = ev.build(root, work)
    ordered = sorted(articles, key=lambda a: (a.published, a.id))
    return engine, ordered, [[a for a in ordered if ev.half(a.id, truth) == n] for n in (0, 1)]


def masked(values: tuple[float, ...], keep: Sequence[bool]) -> tuple[float, ...]:
    """``values`` with the features not kept set to 0 (their coefficient stays 0)."""
    return tuple(v if k else 0.0 for v, k in zip(values, keep, strict=True))


def collect(engine: Engine, articles: Sequence[Article], truth: ev.Truth) -> list[Pair]:
    pairs = []
    with engine.connect() as conn:
        for article in articles:
            for c in pool(conn, article, RANKING):
                found = features(article, c, RANKING)
                if found is not None:
                    pairs.append(Pair(article.id, c, found, truth.same_story(article.id, c.id)))
    return pairs


# -- logistic regression -------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """Standardisation and coefficients (intercept first)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]

    def probability(self, x: Sequence[float]) -> float:
        z = self.coef[0] + sum(
            w * (v - m) / s
            for w, v, m, s in zip(self.coef[1:], x, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))


def fit(pairs: Sequence[Pair], ridge: float = RIDGE, per_query: bool = False) -> Model:
    """Ridge logistic regression by Newton's method on standardised features.

    ``per_query`` weighs each query's pairs together as one (large stories,
    whose queries have many same-story candidates, would otherwise dominate).
    """
    n = len(FEATURES)
    sizes: dict[str, int] = {}
    for p in pairs:
        sizes[p.query] = sizes.get(p.query, 0) + 1
    weights = [len(pairs) / len(sizes) / sizes[p.query] if per_query else 1.0 for p in pairs]
    mean = [sum(p.features[j] for p in pairs) / len(pairs) for j in range(n)]
    scale = [
        math.sqrt(sum((p.features[j] - mean[j]) ** 2 for p in pairs) / len(pairs)) or 1.0
        for j in range(n)
    ]
    rows = [[1.0, *((p.features[j] - mean[j]) / scale[j] for j in range(n))] for p in pairs]
    ys = [1.0 if p.story else 0.0 for p in pairs]
    w = [0.0] * (n + 1)
    for _ in range(25):
        grad = [ridge * w[j] if j else 0.0 for j in range(n + 1)]
        hess = [[(ridge if i == j and i else 0.0) for j in range(n + 1)] for i in range(n + 1)]
        for x, y, weight in zip(rows, ys, weights, strict=True):
            z = sum(a * b for a, b in zip(w, x, strict=True))
            prob = 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))
            d = weight * prob * (1.0 - prob)
            for i in range(n + 1):
                grad[i] += weight * (prob - y) * x[i]
                di = d * x[i]
                row = hess[i]
                for j in range(i, n + 1):
                    row[j] += di * x[j]
        for i in range(n + 1):
            for j in range(i):
                hess[i][j] = hess[j][i]
        step = solve(hess, grad)
        w = [a - b for a, b in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-8:
            break
    return Model(tuple(mean), tuple(scale), tuple(w))


def solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting."""
    n = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


# -- evaluation ----------------------------------------------------------------------------------


def learned(engine: Engine, pairs: Sequence[Pair], model: Model, floor: float) -> ev.Method:
    """Links by the model's probability over ``floor``, near-duplicates left out."""
    by_query: dict[str, list[Pair]] = {}
    for p in pairs:
        by_query.setdefault(p.query, []).append(p)

    def method(article: Article) -> list[str]:
        scored = [
            replace(p.candidate, score=model.probability(p.features))
            for p in by_query.get(article.id, [])
        ]
        kept = sorted((c for c in scored if c.score >= floor), key=lambda c: (-c.score, c.path))
        with engine.connect() as conn:
            vectors = terms.vectors(conn, [c.path for c in kept[: 3 * ev.K]])
        return [c.id for c in scoring.distinct(kept, vectors, RANKING, ev.K)]

    return method


def objective(s: ev.Summary) -> float:
    """What a choice on one half maximises (as in ``related_eval.py --cross-validate``)."""
    return s.strict - s.wrong_rate


def capped(s: ev.Summary) -> float:
    """The other choice: the best strict precision with at most 2 % wrong links."""
    return s.strict if s.wrong_rate <= 0.02 else s.strict - 1.0


def rule_settings() -> list[Ranking]:
    places = [(1.0, 1.0), (RANKING.place_disagreement, RANKING.place_only)]
    return [
        replace(RANKING, floor=floor, agreeing_terms=terms, place_disagreement=d, place_only=o)
        for floor in (0.08, 0.10, 0.12, 0.14)
        for terms in (1, 2, 3)
        for d, o in places
    ]


def line(name: str, s: ev.Summary) -> str:
    return f"{name:<44} {s.strict:.3f} / {s.lenient:.3f} / {s.wrong_rate:5.1%} ({s.links} links)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ev.CORPUS)
    parser.add_argument("--truth", type=Path, default=ev.TRUTH)
    parser.add_argument("--ridge", type=float, default=RIDGE)
    parser.add_argument("--per-query", action="store_true", help="weigh each query's pairs as one")
    parser.add_argument(
        "--only", default="", help="comma-separated features to keep (the others are zeroed)"
    )
    args = parser.parse_args(argv)

    rows = ev.load_corpus(args.corpus)
    truth = ev.load_truth(args.truth, {row["id"] for row in rows})
    with tempfile.TemporaryDirectory(prefix="newsbot-related-fit-") as work:
        engine, ordered, halves = built(rows, truth, Path(work))
        pairs = collect(engine, ordered, truth)
        if args.only:
            keep = [name in args.only.split(",") for name in FEATURES]
            pairs = [
                replace(
                    p,
                    features=tuple(v if k else 0.0 for v, k in zip(p.features, keep, strict=False)),
                )
                for p in pairs
            ]
        print(
            f"{len(pairs)} pairs from {len(ordered)} queries, "
            f"{sum(p.story for p in pairs)} same-story"
        )
        settings = rule_settings()
        loose = replace(RANKING, floor=0.0, agreeing_terms=0, overlap_floor=0.0, names_floor=0.0)
        loose = replace(loose, strong_similarity=0.0)
        order = [ev.summary(ev.score(ev.ranked_with(engine, loose), h, truth)) for h in halves]
        rule_scores = [
            [ev.score(ev.ranked_with(engine, r), h, truth) for h in halves] for r in settings
        ]
        shipped = [ev.summary(ev.score(ev.ranked_with(engine, RANKING), h, truth)) for h in halves]
        print("\nheld out: strict / lenient / wrong links")
        for n in (0, 1):
            held = halves[1 - n]
            train_ids = {a.id for a in halves[n]}
            train = [p for p in pairs if p.query in train_ids]
            model = fit(train, args.ridge, args.per_query)
            test = [p for p in pairs if p.query not in train_ids]
            on_train = {
                f: ev.summary(ev.score(learned(engine, train, model, f), halves[n], truth))
                for f in FLOORS
            }
            floor = max(FLOORS, key=lambda f: objective(on_train[f]))
            floor2 = max(FLOORS, key=lambda f: capped(on_train[f]))
            model_held = ev.summary(ev.score(learned(engine, test, model, floor), held, truth))
            model_capped = ev.summary(ev.score(learned(engine, test, model, floor2), held, truth))
            model_order = ev.summary(ev.score(learned(engine, test, model, 0.0), held, truth))
            best = max(range(len(settings)), key=lambda i: objective(ev.summary(rule_scores[i][n])))
            rule_held = ev.summary(rule_scores[best][1 - n])
            print(f"\nchosen on half {n}, measured on half {1 - n}:")
            print(line(f"  model (probability floor {floor:.2f})", model_held))
            print(line(f"  model (floor {floor2:.2f}: best strict, wrong <= 2 %)", model_capped))
            print(line("  model order alone (no floor)", model_order))
            r = settings[best]
            print(
                line(
                    f"  rule (floor {r.floor:.2f}, terms {r.agreeing_terms}, "
                    f"places {r.place_disagreement:.1f}/{r.place_only:.1f})",
                    rule_held,
                )
            )
            print(line("  rule as shipped (chosen on both halves)", shipped[1 - n]))
            print(line("  rule order alone (no floor)", order[1 - n]))
            print(
                "  coefficients (standardised): "
                + ", ".join(
                    f"{name} {w:+.2f}"
                    for name, w in zip(("intercept", *FEATURES), model.coef, strict=True)
                )
            )
        model = fit(pairs, args.ridge, args.per_query)
        floor = max(
            FLOORS,
            key=lambda f: objective(
                ev.summary(ev.score(learned(engine, pairs, model, f), ordered, truth))
            ),
        )
        whole = ev.summary(ev.score(learned(engine, pairs, model, floor), ordered, truth))
        print(f"\nfitted on the whole corpus (floor {floor:.2f}, not held out):")
        print(line("  model", whole))
        print(line("  rule as shipped", ev.summary(ev.score(ev.newsbot(engine), ordered, truth))))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
