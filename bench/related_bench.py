"""Related articles at size: what the term index costs a build, and what a query costs.

The store is generated from the Wikinews corpus (CC BY 2.5), in memory, as
*stories*: article ``n`` belongs to story ``n // 20`` (20 articles a story,
5,000 stories in 100,000 articles), which follows one corpus article. Each
article takes 3-5 of its story's paragraphs and 2-4 paragraphs of other
stories, a date in 2019-2020 and a credit line; follow-ups get headlines of
their own. Proper nouns (capitalised words) are respelt per story
("Soleimani" becomes "Soleimanibq" in story 42), so that distinct stories
have distinct names, as in a real newsroom, while common words stay common:
term postings then have realistic lengths (a name in tens of articles, an
everyday word in thousands). ``bench/build.py`` instead reuses the 294
corpus headlines about 340 times each, which is fine for timing a build but
makes every article a near-duplicate of hundreds of others, which no real
store is; ``--copies`` generates that kind of store to show the worst case.

Articles go into a fresh SQLite state database through `StoreIndex.store` in
batches of 500, as the build's main process stores them (parsing happens
before, in worker processes, and is not measured here).

Measured, per size:

- ``store``: milliseconds per article in `StoreIndex.store`, and the part of
  it spent in `terms.index` (tokenising, document frequencies, vector rows):
  that part is what related articles add to a cold build, since the build
  stores every batch in its main process;
- the rows of ``article_terms`` / ``term_stats`` (and the SQLite file's size);
- ``query``: wall and CPU time of `RelatedFinder.related` (k=3) for 200
  articles spread over the store (median, 95th percentile, max), the SQL
  statements per query, and the peak of Python allocations during 20 queries
  (``tracemalloc``). SQLite runs in the process, so CPU time is the query's
  work; on a shared machine it is steadier than wall time. Also the links a
  query returns and the share of them in the article's own generated story
  (a check that speed is not bought with recall; meaningless with
  ``--copies``).

Usage::

    .venv/bin/python bench/related_bench.py --sizes 20000,100000 [--keep DIR] [--copies]
    .venv/bin/python bench/related_bench.py --sizes 20000 --postgres postgresql://...
    .venv/bin/python bench/related_bench.py --sizes 100000 --keep DIR --reuse

``--reuse`` takes the database a run with ``--keep DIR`` left in DIR instead of
filling a new one (the fill of 100,000 articles takes minutes); the new
articles and the lists of an earlier run are taken out first, so the same
work is measured.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, select, text
from sqlalchemy.engine import make_url

from newsbot.articles import Article
from newsbot.state import terms
from newsbot.state.database import open_database
from newsbot.state.index import StoreIndex
from newsbot.state.related import RelatedFinder
from newsbot.state.related_lists import RelatedLists
from newsbot.state.schema import article_terms, related_links, term_stats
from newsbot.store.reader import Parsed
from newsbot.store.scan import FileStat

CORPUS = next(
    (
        found
        for parent in Path(__file__).resolve().parents[1:4]
        if (found := parent / "shared" / "corpus" / "wikinews_en_2019_2020.jsonl").exists()
    ),
    Path("shared/corpus/wikinews_en_2019_2020.jsonl"),
)
"""The corpus beside the repository (or beside the folder of its worktrees)."""
START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2021, 1, 1, tzinfo=UTC) - START).total_seconds())
NOW = datetime(2021, 6, 1, tzinfo=UTC)
BATCH = 500
QUERIES = 200
NEW = 40


def load_sources(path: Path) -> list[tuple[str, list[str]]]:
    sources = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            paragraphs = [p.strip() for p in row["text"].split("\n\n") if p.strip()]
            if paragraphs:
                sources.append((row["title"], paragraphs))
    return sources


STORY = 20
FOLLOW_UPS = ("", "Update: ", "Analysis: ", "Reactions: ", "Latest: ", "Explainer: ")
_NAME = re.compile(r"\b[A-Z][a-z]{3,}\b")
_NOT_NAMES = frozenset(
    """Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April
    June July August September October November December The This That There They These Those
    When While With According During After Before Since However Also Some Many Most Other Both
    About Under Over From Into Last First Several Such What Which Where Their Here Following
    Officials Police President Minister Government Reports Text""".split()
)


def generate(count: int, seed: int = 1, copies: bool = False) -> Iterator[Article]:
    """Article ``n`` of a store of ``count``; the same for a given seed."""
    sources = load_sources(CORPUS)
    rng = random.Random(seed)
    for n in range(count):
        when = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        story = rng.randrange(len(sources)) if copies else n // STORY
        title, lead = sources[story % len(sources)]
        body = [_respell(p, story, copies) for p in lead[: rng.randint(3, 5)]]
        for _ in range(rng.randint(2, 4)):
            other = rng.randrange(count // STORY + 1)
            paragraphs = sources[other % len(sources)][1]
            body.append(_respell(paragraphs[rng.randrange(len(paragraphs))], other, copies))
        body.append("*Text recombined from Wikinews, licensed under CC BY 2.5.*")
        follow_up = "" if copies else FOLLOW_UPS[n % STORY % len(FOLLOW_UPS)]
        part = "" if copies or n % STORY < len(FOLLOW_UPS) else f" ({n % STORY})"
        yield Article(
            id=f"bench-{n:06d}",
            path=f"bench/{n:06d}.md",
            title=follow_up + _respell(title, story, copies) + part,
            published=when,
            updated=when,
            body="\n\n".join(body),
            url=f"https://news.example/bench-{n:06d}/",
            lang="en",
        )


def _respell(text: str, story: int, copies: bool) -> str:
    """``text`` with its proper nouns spelt the way story ``story`` spells them."""
    if copies:
        return text
    suffix = "".join(chr(ord("a") + int(d)) for d in str(story))
    return _NAME.sub(
        lambda m: m.group(0) if m.group(0) in _NOT_NAMES else m.group(0) + suffix, text
    )


class Timer:
    """Adds up the wall and CPU time spent in one function while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def wrap(self, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.cpu_seconds += time.process_time() - cpu_started

        return timed


def held_out(count: int) -> set[int]:
    """Articles left out of the fill, stored afterwards one by one as new articles."""
    return {k * count // NEW + 7 for k in range(NEW)}


def fill(engine: Engine, count: int, copies: bool) -> dict[str, float]:
    """Store ``count`` generated articles but the held-out ones; returns seconds per article,
    in all and in terms."""
    index = StoreIndex(engine)
    timer = Timer()
    original = terms.index
    terms.index = timer.wrap(original)  # StoreIndex.store calls it as terms.index
    total = 0.0
    try:
        batch: list[Parsed] = []
        later = held_out(count)
        for n, article in enumerate(generate(count, copies=copies)):
            if n in later:
                continue
            batch.append(
                Parsed(FileStat(article.path, len(article.body), 1), article.id, article, "", ())
            )
            if len(batch) == BATCH:
                total += _store(index, batch)
                batch = []
        if batch:
            total += _store(index, batch)
    finally:
        terms.index = original
    return {
        "store_ms": total / count * 1000,
        "terms_ms": timer.seconds / count * 1000,
        "terms_cpu_ms": timer.cpu_seconds / count * 1000,
    }


def _store(index: StoreIndex, batch: list[Parsed]) -> float:
    started = time.perf_counter()
    with index.engine.begin() as conn:
        index.store(conn, batch, 1, now=datetime.now(UTC))
    return time.perf_counter() - started


def query(engine: Engine, count: int, copies: bool) -> dict[str, float]:
    """Time `RelatedFinder.related` on articles spread over the store."""
    finder = RelatedFinder(engine)
    wanted = {f"bench-{n:06d}" for n in range(0, count, max(count // QUERIES, 1))}
    articles = [a for a in generate(count, copies=copies) if a.id in wanted]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    finder.related(articles[0], 3, NOW)  # warm the connection pool and statement cache
    statements.clear()
    timings, cpu, same, links = [], [], 0, 0
    for article in articles:
        started, cpu_started = time.perf_counter(), time.process_time()
        found = finder.related(article, 3, NOW)
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        assert article.id not in {a.id for a in found}
        links += len(found)
        same += sum(1 for a in found if _story(a.id) == _story(article.id))
    tracemalloc.start()  # apart: tracing slows Python down
    for article in articles[:20]:
        finder.related(article, 3, NOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    timings.sort()
    return {
        "query_median_ms": statistics.median(timings) * 1000,
        "query_p95_ms": timings[int(len(timings) * 0.95)] * 1000,
        "query_max_ms": timings[-1] * 1000,
        "query_cpu_median_ms": statistics.median(cpu) * 1000,
        "query_cpu_p95_ms": sorted(cpu)[int(len(cpu) * 0.95)] * 1000,
        "statements_per_query": len(statements) / len(articles),
        "links_per_query": links / len(articles),
        "same_story_share": same / links if links else 0.0,
        "peak_python_mb": peak / 1e6,
    }


def _story(article_id: str) -> int:
    """The generated story of ``bench-NNNNNN`` (see `generate`; not with ``--copies``)."""
    return int(article_id.removeprefix("bench-")) // STORY


def new_articles(engine: Engine, count: int, copies: bool) -> dict[str, float]:
    """The related step of a build for one new article, in a store of ``count``.

    The lists of the new articles' story-mates are computed first (as a build
    would have), so that offering the newcomer to them does the real work. Then
    each held-out article is stored, and `RelatedLists.refresh` timed: its own
    list (a search) plus its offers to the lists it belongs in. Last, the
    lookup that pages, feeds and posts do (`RelatedLists.related`).
    """
    index = StoreIndex(engine)
    lists = RelatedLists(RelatedFinder(engine))
    later = held_out(count)
    newcomers = [a for n, a in enumerate(generate(count, copies=copies)) if n in later]
    with engine.begin() as conn:  # what an earlier run on a kept database left
        conn.execute(delete(related_links))
        index.remove(conn, sorted(index.with_article(conn, [a.path for a in newcomers])))
    mates = {
        f"bench/{n:06d}.md"
        for k in later
        for n in range(k // STORY * STORY, (k // STORY + 1) * STORY)
    }
    mates -= {a.path for a in newcomers}
    with engine.begin() as conn:
        stored = dict(lists._articles(conn, sorted(mates)))
        prepared = time.perf_counter()
        for article in stored.values():
            lists.compute(conn, article)
        prepare_ms = (time.perf_counter() - prepared) / max(len(stored), 1) * 1000
    step, cpu, changed = [], [], []
    for article in newcomers:
        parsed = Parsed(FileStat(article.path, len(article.body), 1), article.id, article, "", ())
        with engine.begin() as conn:
            index.store(conn, [parsed], 2, now=datetime.now(UTC))
            started, cpu_started = time.perf_counter(), time.process_time()
            changed.append(len(lists.refresh(conn, [article.path], [])))
            step.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
    lookups = []
    for article in newcomers:
        started = time.perf_counter()
        lists.related(article, 3, NOW)
        lookups.append(time.perf_counter() - started)
    step.sort()
    return {
        "list_compute_ms": prepare_ms,
        "new_article_related_median_ms": statistics.median(step) * 1000,
        "new_article_related_p95_ms": step[int(len(step) * 0.95)] * 1000,
        "new_article_related_max_ms": step[-1] * 1000,
        "new_article_related_cpu_median_ms": statistics.median(cpu) * 1000,
        "new_article_lists_changed_mean": statistics.fmean(changed),
        "stored_lookup_median_ms": statistics.median(lookups) * 1000,
    }


def sizes(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(article_terms)).scalar_one()
        stats = conn.execute(select(func.count()).select_from(term_stats)).scalar_one()
    return {"article_terms_rows": rows, "term_stats_rows": stats}


def bench(count: int, url: str, copies: bool, reuse: bool = False) -> dict[str, Any]:
    engine = open_database(url)
    result: dict[str, Any] = {"articles": count, "copies": copies, "database": engine.dialect.name}
    if not reuse:
        result |= fill(engine, count, copies)
    result |= sizes(engine)
    result |= query(engine, count, copies)
    result |= new_articles(engine, count, copies)
    engine.dispose()
    return result


def sqlite_file(folder: Path, count: int) -> Path:
    return folder / f"related-{count}.db"


@contextmanager
def database(count: int, folder: Path, postgres: str | None, reuse: bool = False) -> Iterator[str]:
    """A fresh database: a SQLite file in ``folder``, or a new database on the PostgreSQL server
    (or, with ``reuse``, the SQLite file an earlier run kept in ``folder``)."""
    if postgres is None:
        path = sqlite_file(folder, count)
        if reuse and not path.exists():
            raise SystemExit(f"--reuse: no database {path}")
        if not reuse:
            path.unlink(missing_ok=True)
        yield f"sqlite:///{path}"
        return
    name = f"newsbot_related_bench_{count}"
    admin = create_engine(
        make_url(postgres).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--keep", type=Path, help="folder for the databases (kept afterwards)")
    parser.add_argument("--copies", action="store_true", help="reuse corpus headlines (worst case)")
    parser.add_argument("--postgres", help="a PostgreSQL server URL to use instead of SQLite")
    parser.add_argument("--reuse", action="store_true", help="the database --keep DIR holds")
    args = parser.parse_args(argv)
    if args.reuse and (args.keep is None or args.postgres):
        parser.error("--reuse needs --keep DIR (SQLite)")
    counts = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="newsbot-related-bench-") as work:
        folder = args.keep or Path(work)
        folder.mkdir(parents=True, exist_ok=True)
        for count in counts:
            with database(count, folder, args.postgres, args.reuse) as url:
                result = bench(count, url, args.copies, args.reuse)
            if args.postgres is None:
                result["db_mb"] = sqlite_file(folder, count).stat().st_size / 1e6
            print(
                json.dumps(
                    {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
