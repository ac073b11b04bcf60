"""Evaluation of computed related articles: precision@3 on hand-labelled Wikinews stories.

What is measured
    For every labelled article of ``bench/related_labels.yaml`` (story groups
    labelled by reading the 294 articles of
    ``../shared/corpus/wikinews_en_2019_2020.jsonl``, Wikinews, CC BY 2.5),
    newsbot computes k=3 related articles against all 294; a link is correct
    when the linked article shares a group with the article. Only computed
    links are evaluated (the corpus has no editors' picks, and none are added).

    precision@3 = correct links / 3, averaged over labelled articles. A missing
    link (fewer than 3 returned) counts as wrong.

    Groups of 3 members leave only 2 correct links possible, so the script also
    prints the *attainable* precision: correct links / min(3, others), where
    ``others`` is the number of other articles sharing a group with the article.
    It is 1.0 when every link that could be right is right. Both figures are
    macro-averaged over articles; the per-group table averages over each
    group's members (an article in two groups counts in both).

How the store is made
    Each corpus article becomes a Markdown file with front matter (id, title,
    date, lang) and the Wikinews attribution line, in a temporary store; the
    real ``Builder`` builds it into a temporary SQLite state database, so the
    term index is filled exactly as in production (``StoreIndex.store``).
    ``now`` is after the last article, so all 294 are live.

Why this method, and the comparisons
    Precision of the links a reader sees is what matters for a post (3 links,
    no ranking beyond them), and story groups are what an editor would link.
    Labels are strict: sibling stories (the 2020 primaries vs. the general
    election) are different groups, so the figure is conservative.
    To give the figure meaning the same run scores trivial baselines and
    variants on the same labels:

    - ``nearest in time``: the 3 articles published closest to the article
      (what "latest articles" would give for a fresh post);
    - ``title overlap``: the 3 articles whose headlines share the most terms
      (Jaccard, ties to the closest in time);
    - newsbot without the recency factor, without plural folding, and with
      half or double the terms kept per article (the index is rebuilt for
      those through ``terms.index``, the function ``StoreIndex.store`` calls).

    Failure examples at the end show the worst-served articles and where
    their wrong links went.

Usage (from the repository root)::

    .venv/bin/python bench/related_eval.py [--corpus FILE] [--labels FILE] [--failures N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import Engine, delete

from newsbot.app import create_app
from newsbot.articles import Article
from newsbot.related import RANKING, WEIGHTING, Weighting, words
from newsbot.settings import FeedSettings, Settings, StateSettings, StoreSettings
from newsbot.state import terms
from newsbot.state.related import RelatedFinder
from newsbot.state.schema import article_terms, term_stats

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "wikinews_en_2019_2020.jsonl"
LABELS = Path(__file__).with_name("related_labels.yaml")
K = 3
NOW = datetime(2022, 1, 1, tzinfo=UTC)
MIN_GROUP = 3
MAIN = "newsbot (tf-idf cosine x recency)"
BASELINE = "baseline: title overlap"

Method = Callable[[Article], list[str]]
"""Gives the ids of the related articles of an article."""


@dataclass(frozen=True)
class Score:
    """How one method served one article."""

    article: Article
    links: list[str]
    correct: int
    attainable: int

    @property
    def precision(self) -> float:
        return self.correct / K

    @property
    def attained(self) -> float:
        return self.correct / self.attainable if self.attainable else 1.0


# -- the labels and the store ------------------------------------------------------------------


def load_corpus(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_labels(path: Path, known: set[str]) -> dict[str, set[str]]:
    """Groups of each labelled id; refuses unknown ids and groups under ``MIN_GROUP``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    groups: dict[str, set[str]] = {}
    for label in data["labels"]:
        if label["id"] not in known:
            raise SystemExit(f"{path}: unknown article {label['id']!r}")
        if label["group"] not in data["groups"]:
            raise SystemExit(f"{path}: group {label['group']!r} is not described")
        groups.setdefault(label["id"], set()).add(label["group"])
    sizes: dict[str, int] = {}
    for names in groups.values():
        for name in names:
            sizes[name] = sizes.get(name, 0) + 1
    small = sorted(name for name, size in sizes.items() if size < MIN_GROUP)
    if small:
        raise SystemExit(f"{path}: groups with fewer than {MIN_GROUP} articles: {small}")
    return groups


def write_store(rows: Sequence[dict[str, str]], root: Path) -> None:
    """One Markdown file per corpus article, with the attribution the licence asks for."""
    for number, row in enumerate(rows):
        front = {"id": row["id"], "title": row["title"], "date": row["date"], "lang": "en"}
        credit = f"*This article is from [Wikinews]({row['url']}), licensed under CC BY 2.5.*"
        text = f"---\n{yaml.safe_dump(front, allow_unicode=True)}---\n\n{row['text']}\n\n{credit}\n"
        path = root / row["date"][:4] / f"article-{number:03d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def build(root: Path, work: Path) -> tuple[Engine, list[Article], float]:
    """Build the store with the real builder; returns the engine, the articles, the seconds."""
    settings = Settings(
        store=StoreSettings(content_dir=root),
        feeds=FeedSettings(output_dir=work / "public", pages=False),
        state=StateSettings(data_dir=work / "data"),
    )
    app = create_app(settings)
    report = app.builder.build(NOW)
    if report.problems:
        raise SystemExit(f"the store has problems: {report.problems[:3]}")
    return app.engine, list(app.index.articles()), report.seconds


def reindex(engine: Engine, articles: Sequence[Article], weighting: Weighting) -> None:
    """Rebuild the term index of every article with another weighting."""
    with engine.begin() as conn:
        conn.execute(delete(article_terms))
        conn.execute(delete(term_stats))
        terms.index(conn, [(a.path, a, None) for a in articles], weighting)


# -- methods -----------------------------------------------------------------------------------


def computed(finder: RelatedFinder, timings: list[float] | None = None) -> Method:
    def method(article: Article) -> list[str]:
        started = time.perf_counter()
        with finder.engine.connect() as conn:
            found = finder.computed(conn, article, K, NOW)
        if timings is not None:
            timings.append(time.perf_counter() - started)
        return [candidate.id for candidate in found]

    return method


def nearest_in_time(articles: Sequence[Article]) -> Method:
    def method(article: Article) -> list[str]:
        others = [a for a in articles if a.id != article.id]
        others.sort(key=lambda a: (abs((a.published - article.published).total_seconds()), a.id))
        return [a.id for a in others[:K]]

    return method


def title_overlap(articles: Sequence[Article]) -> Method:
    titles = {a.id: set(words(a.title, a.lang)) for a in articles}

    def method(article: Article) -> list[str]:
        mine = titles[article.id]

        def key(other: Article) -> tuple[float, float, str]:
            theirs = titles[other.id]
            jaccard = len(mine & theirs) / len(mine | theirs) if mine | theirs else 0.0
            distance = abs((other.published - article.published).total_seconds())
            return (-jaccard, distance, other.id)

        others = sorted((a for a in articles if a.id != article.id), key=key)
        return [a.id for a in others[:K]]

    return method


# -- scoring -----------------------------------------------------------------------------------


def score(method: Method, labelled: Sequence[Article], groups: dict[str, set[str]]) -> list[Score]:
    scores = []
    for article in labelled:
        mine = groups[article.id]
        links = method(article)[:K]
        correct = sum(1 for link in links if groups.get(link, set()) & mine)
        others = sum(1 for other, theirs in groups.items() if other != article.id and theirs & mine)
        scores.append(Score(article, links, correct, min(K, others)))
    return scores


def summary(scores: Sequence[Score]) -> tuple[float, float]:
    return (
        statistics.fmean(s.precision for s in scores),
        statistics.fmean(s.attained for s in scores),
    )


def by_group(scores: Sequence[Score], groups: dict[str, set[str]]) -> dict[str, list[Score]]:
    found: dict[str, list[Score]] = {}
    for s in scores:
        for name in sorted(groups[s.article.id]):
            found.setdefault(name, []).append(s)
    return dict(sorted(found.items()))


# -- report ------------------------------------------------------------------------------------


def print_methods(results: dict[str, list[Score]]) -> None:
    print(f"\n{'method':<44} {'P@3':>6} {'attainable':>11}")
    for name, scores in results.items():
        precision, attained = summary(scores)
        print(f"{name:<44} {precision:>6.3f} {attained:>11.3f}")


def print_groups(
    scores: Sequence[Score], baseline: Sequence[Score], groups: dict[str, set[str]]
) -> None:
    base = {name: summary(members)[0] for name, members in by_group(baseline, groups).items()}
    print(f"\n{'group':<28} {'n':>3} {'P@3':>6} {'attainable':>11} {'title overlap P@3':>18}")
    for name, members in by_group(scores, groups).items():
        precision, attained = summary(members)
        print(
            f"{name:<28} {len(members):>3} {precision:>6.3f} {attained:>11.3f} {base[name]:>18.3f}"
        )


def print_failures(
    scores: Sequence[Score], groups: dict[str, set[str]], by_id: dict[str, Article], count: int
) -> None:
    worst = sorted(scores, key=lambda s: (s.attained, s.article.published))[:count]
    print(f"\nFailure examples (the {count} worst-served articles):")
    for s in worst:
        mine = ", ".join(sorted(groups[s.article.id]))
        print(f"\n  {s.article.title}  [{mine}]  {s.correct}/{s.attainable}")
        for link in s.links:
            theirs = groups.get(link, set())
            mark = "ok " if theirs & groups[s.article.id] else "-- "
            where = ", ".join(sorted(theirs)) or "unlabelled"
            print(f"    {mark}{by_id[link].title}  [{where}]")


def evaluate(
    engine: Engine,
    articles: Sequence[Article],
    labelled: Sequence[Article],
    groups: dict[str, set[str]],
    timings: list[float],
) -> dict[str, list[Score]]:
    """Every method and variant on the labelled articles (newsbot's query times to ``timings``)."""
    results = {MAIN: score(computed(RelatedFinder(engine), timings), labelled, groups)}
    no_recency = replace(RANKING, recency_floor=1.0)
    results["  variant: no recency factor"] = score(
        computed(RelatedFinder(engine, ranking=no_recency)), labelled, groups
    )
    results["baseline: nearest in time"] = score(nearest_in_time(articles), labelled, groups)
    results[BASELINE] = score(title_overlap(articles), labelled, groups)
    for label, weighting in weighting_variants():
        reindex(engine, articles, weighting)
        finder = RelatedFinder(engine, weighting=weighting)
        results[label] = score(computed(finder), labelled, groups)
    return results


def weighting_variants() -> list[tuple[str, Weighting]]:
    """Other ways to index the same articles, each against the default."""
    half, double = WEIGHTING.max_terms // 2, WEIGHTING.max_terms * 2
    return [
        ("  variant: no plural folding", replace(WEIGHTING, stem=False)),
        ("  variant: no title boost", replace(WEIGHTING, title_boost=1.0)),
        (f"  variant: {half} terms kept", replace(WEIGHTING, max_terms=half)),
        (f"  variant: {double} terms kept", replace(WEIGHTING, max_terms=double)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--failures", type=int, default=6)
    args = parser.parse_args(argv)

    rows = load_corpus(args.corpus)
    groups = load_labels(args.labels, {row["id"] for row in rows})
    timings: list[float] = []
    with tempfile.TemporaryDirectory(prefix="newsbot-related-eval-") as work:
        root = Path(work) / "content"
        write_store(rows, root)
        engine, articles, seconds = build(root, Path(work))
        by_id = {a.id: a for a in articles}
        labelled = sorted((by_id[i] for i in groups), key=lambda a: (a.published, a.id))
        names = {name for names in groups.values() for name in names}
        print(f"{len(articles)} articles built in {seconds:.2f} s; ", end="")
        print(f"{len(labelled)} labelled in {len(names)} groups; k={K}")
        results = evaluate(engine, articles, labelled, groups, timings)
        engine.dispose()

    print_methods(results)
    print_groups(results[MAIN], results[BASELINE], groups)
    print_failures(results[MAIN], groups, by_id, args.failures)
    median, worst = statistics.median(timings) * 1000, max(timings) * 1000
    print(
        f"\nquery time (computed links, 294 articles): median {median:.1f} ms, max {worst:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
