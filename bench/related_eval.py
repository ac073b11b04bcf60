"""Evaluation of related articles against stories and topics labelled by reading.

What is measured
    Every article of the Wikinews corpus (``../shared/corpus/wikinews_en_2019_2020.jsonl``,
    294 articles, Wikinews, CC BY 2.5) is labelled in ``bench/related_truth.yaml`` with
    its *stories* (a chain of events an editor would link without a second thought)
    and its *topics* (the broad subject a site files it under), by reading the
    articles, never from what newsbot links. newsbot links up to 3 related articles
    per article, as a reader sees them.

    - strict precision@k: for every article with at least one story-mate, the share
      of its first k links that share a story with it, k = min(3, story-mates); a
      missing link counts as wrong. Macro-averaged over those articles.
    - lenient precision@k: the same, a link counting when it shares a story or a topic.
    - wrong-link rate: over every link shown for every one of the 294 articles, the
      share that shares neither a story nor a topic with its article. A similarity
      floor that shows fewer links lowers it; one that shows none where a story-mate
      exists lowers the precisions.

How the store is made
    Each corpus article becomes a Markdown file with front matter (id, title,
    date, lang) and the Wikinews attribution line, in a temporary store; the
    real ``Builder`` builds it into a temporary SQLite state database, exactly as
    in production. ``now`` is after the last article, so all 294 are live.

The comparisons
    The same run scores trivial baselines on the same labels: ``nearest in time``
    (the 3 articles published closest) and ``title overlap`` (the 3 whose headlines
    share the most terms, Jaccard, ties to the closest in time). Failure examples
    at the end show the worst-served articles and where their links went.

Held out
    The floor, the agreement rule, the place factors and the headline weight
    (``related.scoring.Ranking``)
    were chosen on these labels. ``--cross-validate`` shows what that choice is
    worth on stories it did not see: the articles are split in two halves by story
    (an article without a story by its id), the setting with the best strict
    precision minus wrong-link rate on one half is measured on the other, both
    ways round.

Usage (from the repository root)::

    .venv/bin/python bench/related_eval.py [--corpus FILE] [--truth FILE] [--failures N]
    .venv/bin/python bench/related_eval.py --cross-validate
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import Engine

from newsbot.app import create_app
from newsbot.articles import Article
from newsbot.related.scoring import RANKING, Ranking
from newsbot.related.tokens import words
from newsbot.settings import FeedSettings, Settings, StateSettings, StoreSettings
from newsbot.state.related import RelatedFinder
from newsbot.state.related_lists import HORIZON, RelatedLists

CORPUS = next(
    (
        found
        for parent in Path(__file__).resolve().parents[1:4]
        if (found := parent / "shared" / "corpus" / "wikinews_en_2019_2020.jsonl").exists()
    ),
    Path("shared/corpus/wikinews_en_2019_2020.jsonl"),
)
"""The corpus beside the repository (or beside the folder of its worktrees)."""
TRUTH = Path(__file__).with_name("related_truth.yaml")
K = 3
NOW = datetime(2022, 1, 1, tzinfo=UTC)
MAIN = "newsbot"
BASELINE = "baseline: title overlap"

Method = Callable[[Article], list[str]]
"""Gives the ids of the related articles of an article, best first."""


@dataclass(frozen=True)
class Truth:
    """Stories and topics of each article id."""

    stories: dict[str, frozenset[str]]
    topics: dict[str, frozenset[str]]

    def mates(self, article_id: str) -> int:
        mine = self.stories[article_id]
        return sum(
            1 for other, theirs in self.stories.items() if other != article_id and theirs & mine
        )

    def same_story(self, a: str, b: str) -> bool:
        return bool(self.stories.get(a, frozenset()) & self.stories.get(b, frozenset()))

    def related(self, a: str, b: str) -> bool:
        shared_topic = self.topics.get(a, frozenset()) & self.topics.get(b, frozenset())
        return self.same_story(a, b) or bool(shared_topic)


@dataclass(frozen=True)
class Score:
    """How one method served one article."""

    article: Article
    links: list[str]
    k: int
    strict: int
    lenient: int
    wrong: int


@dataclass(frozen=True)
class Summary:
    strict: float
    lenient: float
    wrong_rate: float
    links: int
    queries: int
    empty: int


def load_corpus(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def load_truth(path: Path, known: set[str]) -> Truth:
    """The labels; refuses unknown ids, undescribed names and unlabelled articles."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    stories: dict[str, frozenset[str]] = {}
    topics: dict[str, frozenset[str]] = {}
    for entry in data["articles"]:
        if entry["id"] not in known:
            raise SystemExit(f"{path}: unknown article {entry['id']!r}")
        for name in entry["stories"]:
            if name not in data["stories"]:
                raise SystemExit(f"{path}: story {name!r} is not described")
        for name in entry["topics"]:
            if name not in data["topics"]:
                raise SystemExit(f"{path}: topic {name!r} is not described")
        stories[entry["id"]] = frozenset(entry["stories"])
        topics[entry["id"]] = frozenset(entry["topics"])
    missing = known - set(stories)
    if missing:
        raise SystemExit(f"{path}: {len(missing)} corpus articles are not labelled")
    return Truth(stories, topics)


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


# -- methods -----------------------------------------------------------------------------------


def newsbot(engine: Engine, timings: list[float] | None = None) -> Method:
    """The related articles newsbot shows for an article (k=3): its list stored by the build."""
    lists = RelatedLists(RelatedFinder(engine))

    def method(article: Article) -> list[str]:
        started = time.perf_counter()
        found = lists.related(article, K, NOW)
        if timings is not None:
            timings.append(time.perf_counter() - started)
        return [a.id for a in found]

    return method


def ranked_with(engine: Engine, ranking: Ranking) -> Method:
    """The computed list another ranking would store (the build's search, at any date)."""
    finder = RelatedFinder(engine, ranking=ranking)

    def method(article: Article) -> list[str]:
        with engine.connect() as conn:
            found = finder.ranked(conn, article, HORIZON, K, widen=False).distinct(K)
        return [c.id for c in found]

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


def score(method: Method, articles: Sequence[Article], truth: Truth) -> list[Score]:
    scores = []
    for article in articles:
        links = method(article)[:K]
        k = min(K, truth.mates(article.id))
        first = links[:k]
        strict = sum(1 for link in first if truth.same_story(article.id, link))
        lenient = sum(1 for link in first if truth.related(article.id, link))
        wrong = sum(1 for link in links if not truth.related(article.id, link))
        scores.append(Score(article, links, k, strict, lenient, wrong))
    return scores


def summary(scores: Sequence[Score]) -> Summary:
    queries = [s for s in scores if s.k]
    links = sum(len(s.links) for s in scores)
    return Summary(
        strict=statistics.fmean(s.strict / s.k for s in queries),
        lenient=statistics.fmean(s.lenient / s.k for s in queries),
        wrong_rate=sum(s.wrong for s in scores) / links if links else 0.0,
        links=links,
        queries=len(queries),
        empty=sum(1 for s in scores if not s.links),
    )


def by_story(scores: Sequence[Score], truth: Truth) -> dict[str, list[Score]]:
    found: dict[str, list[Score]] = {}
    for s in scores:
        for name in sorted(truth.stories[s.article.id]):
            if s.k:
                found.setdefault(name, []).append(s)
    return dict(sorted(found.items()))


def half(article_id: str, truth: Truth) -> int:
    """0 or 1: the half of the labels an article falls in (a story's articles stay together)."""
    stories = sorted(truth.stories[article_id])
    return zlib.crc32((stories[0] if stories else article_id).encode()) % 2


def cross_validate(engine: Engine, articles: Sequence[Article], truth: Truth) -> None:
    """Choose floor, agreement, the place factors and the headline weight on one half of
    the stories, measure on the other."""
    places = [(1.0, 1.0), (RANKING.place_disagreement, RANKING.place_only)]
    settings = [
        replace(
            RANKING,
            floor=floor,
            agreeing_terms=terms,
            place_disagreement=d,
            place_only=o,
            headline_weight=headline,
        )
        for floor in (0.08, 0.10, 0.12, 0.14)
        for terms in (1, 2, 3)
        for d, o in places
        for headline in (0.0, RANKING.headline_weight)
    ]
    halves = [[a for a in articles if half(a.id, truth) == n] for n in (0, 1)]
    scored = [[score(ranked_with(engine, r), h, truth) for h in halves] for r in settings]
    print(
        f"\n{'chosen on':<10} {'floor':>5} {'terms':>5} {'places':>9} {'headline':>8}"
        f"   {'held-out strict / lenient / wrong':>34}"
    )
    for n in (0, 1):
        best = max(
            range(len(settings)),
            key=lambda i: summary(scored[i][n]).strict - summary(scored[i][n]).wrong_rate,
        )
        held = summary(scored[best][1 - n])
        r = settings[best]
        print(
            f"half {n:<5} {r.floor:>5.2f} {r.agreeing_terms:>5} "
            f"{r.place_disagreement:>4.1f}/{r.place_only:<4.1f} {r.headline_weight:>8.1f}   "
            f"half {1 - n}: {held.strict:.3f} / {held.lenient:.3f} / {held.wrong_rate:.1%}"
            f" ({held.links} links)"
        )


# -- report ------------------------------------------------------------------------------------


def print_methods(results: dict[str, list[Score]]) -> None:
    print(
        f"\n{'method':<32} {'strict P@k':>10} {'lenient P@k':>11} {'wrong links':>12} {'links':>6}"
    )
    for name, scores in results.items():
        s = summary(scores)
        print(f"{name:<32} {s.strict:>10.3f} {s.lenient:>11.3f} {s.wrong_rate:>11.1%} {s.links:>6}")


def print_stories(scores: Sequence[Score], truth: Truth) -> None:
    print(f"\n{'story':<32} {'n':>3} {'strict P@k':>10} {'lenient P@k':>11}")
    for name, members in by_story(scores, truth).items():
        strict = statistics.fmean(s.strict / s.k for s in members)
        lenient = statistics.fmean(s.lenient / s.k for s in members)
        print(f"{name:<32} {len(members):>3} {strict:>10.3f} {lenient:>11.3f}")


def print_failures(
    scores: Sequence[Score], truth: Truth, by_id: dict[str, Article], count: int
) -> None:
    missed = [s for s in scores if s.k and s.strict < s.k]
    wrong = [s for s in scores if s.wrong]
    print(f"\nStory queries short of k ({len(missed)}), first {count}:")
    for s in sorted(missed, key=lambda s: (s.strict / s.k, s.article.published))[:count]:
        show(s, truth, by_id)
    print(f"\nArticles with a wrong link ({len(wrong)}):")
    for s in wrong:
        show(s, truth, by_id)


def show(s: Score, truth: Truth, by_id: dict[str, Article]) -> None:
    mine = ", ".join(sorted(truth.stories[s.article.id] | truth.topics[s.article.id]))
    print(f"\n  {s.article.title}  [{mine}]  {s.strict}/{s.k}")
    for link in s.links:
        mark = (
            "ok "
            if truth.same_story(s.article.id, link)
            else "~  "
            if truth.related(s.article.id, link)
            else "-- "
        )
        print(f"    {mark}{by_id[link].title}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--truth", type=Path, default=TRUTH)
    parser.add_argument("--failures", type=int, default=10)
    parser.add_argument(
        "--cross-validate", action="store_true", help="choose on half the stories, test on the rest"
    )
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).with_name("out") / "related_eval.json"
    )
    args = parser.parse_args(argv)

    rows = load_corpus(args.corpus)
    truth = load_truth(args.truth, {row["id"] for row in rows})
    timings: list[float] = []
    with tempfile.TemporaryDirectory(prefix="newsbot-related-eval-") as work:
        root = Path(work) / "content"
        write_store(rows, root)
        engine, articles, seconds = build(root, Path(work))
        by_id = {a.id: a for a in articles}
        ordered = sorted(articles, key=lambda a: (a.published, a.id))
        stories = {name for names in truth.stories.values() for name in names}
        print(
            f"{len(articles)} articles built in {seconds:.2f} s; {len(stories)} stories; k <= {K}"
        )
        results = {
            MAIN: score(newsbot(engine, timings), ordered, truth),
            "baseline: nearest in time": score(nearest_in_time(articles), ordered, truth),
            BASELINE: score(title_overlap(articles), ordered, truth),
        }
        if args.cross_validate:
            cross_validate(engine, ordered, truth)
        engine.dispose()

    print_methods(results)
    print_stories(results[MAIN], truth)
    print_failures(results[MAIN], truth, by_id, args.failures)
    median, worst = statistics.median(timings) * 1000, max(timings) * 1000
    print(f"\nstored related list read per article: median {median:.2f} ms, max {worst:.2f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    figures = {name: summary(scores).__dict__ for name, scores in results.items()}
    args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
