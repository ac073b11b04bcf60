"""Related links that reach readers, and length errors, per server profile.

For each store (the sample store ``content/``, and a store of the shared
Wikinews corpus, CC BY 2.5, one Markdown file per corpus article with its
attribution) and each server profile of the fake server
(``tests/support/fakemastodon.py``: Mastodon, Takahē, Pleroma, GoToSocial, Sharkey,
Friendica; each counts and refuses as its software does; and "mislabelled",
a server that says Mastodon but counts as Takahē), the script builds
the store, publishes every article to one target with default settings
(``related = 3``, ``related_in = "auto"``, profile detected; pacing off, a
backlog age that lets every article through) in passes until nothing is left,
and reports:

- posts, and replies holding related links;
- related links per post, counted where readers see them (the post and its
  reply);
- of the posts whose article has at least 2 related articles (as the
  related finder gives them at posting time), the share that carry at least 2
  related links in the post or its reply (goal: at least 90 %);
- length errors the server answered (400/422 on a create) per target (goal:
  at most one, ever), and statuses over the limit by the server's own count
  (goal: none).

Run: ``.venv/bin/python bench/profiles.py [--store sample|corpus|both]
[--profile NAME ...] [--corpus FILE]``. It takes about a minute per store and profile on the
corpus on a small machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from related_eval import CORPUS, load_corpus, write_store  # noqa: E402

from newsbot.app import create_app, publishers  # noqa: E402
from newsbot.publish.compose import RELATED_MARK  # noqa: E402
from newsbot.publish.targets import targets  # noqa: E402
from newsbot.settings import (  # noqa: E402
    FeedSettings,
    Settings,
    SiteSettings,
    StateSettings,
    StoreSettings,
    TargetSettings,
)
from newsbot.state.related import RelatedFinder  # noqa: E402
from support.fakemastodon import SOFTWARE, FakeMastodon  # noqa: E402

BASE_URL = "https://news.example.org/"
BACKLOG_HOURS = 24 * 365 * 40.0
"""Old enough for the 2015 sample articles and the 2019-2020 corpus."""
MAX_PASSES = 50


@dataclass
class Figures:
    store: str
    profile: str
    articles: int = 0
    posts: int = 0
    replies: int = 0
    related_shown: int = 0
    eligible: int = 0
    eligible_with_two: int = 0
    length_errors: int = 0
    over_limit: int = 0
    seconds: float = 0.0

    def row(self) -> str:
        per_post = self.related_shown / self.posts if self.posts else 0.0
        share = 100 * self.eligible_with_two / self.eligible if self.eligible else 100.0
        return (
            f"{self.store:7} {self.profile:11} {self.articles:5} {self.posts:5} {self.replies:7}"
            f" {per_post:9.2f} {self.eligible_with_two:5}/{self.eligible:<5} {share:6.1f} %"
            f" {self.length_errors:7} {self.over_limit:5} {self.seconds:7.1f}"
        )


HEADER = (
    "store   profile     arts. posts replies rel./post  >=2 of >=2rel  share"
    "  len.err  over  seconds"
)


def sample_store(root: Path) -> Path:
    shutil.copytree(REPO / "content", root, ignore=shutil.ignore_patterns(".*"))
    return root


def corpus_store(root: Path, corpus: Path) -> Path:
    root.mkdir(parents=True)
    write_store(load_corpus(corpus), root)
    return root


MISLABELLED = {
    "software": "mastodon",
    "count_urls_in_full": True,
    "count_units": "code_points",
    "too_long_status": 400,
    "too_long_message": "Status is too long",
}
"""A server that says it runs Mastodon but counts as Takahē: only a length error tells."""


def measure(store_name: str, content: Path, software: str, work: Path) -> Figures:
    figures = Figures(store_name, software)
    config = MISLABELLED if software == "mislabelled" else {"software": software}
    with FakeMastodon(**config) as server:
        target = TargetSettings(
            server=server.base_url,  # type: ignore[arg-type]
            token=SecretStr(server.token),
            backlog_max_age_hours=BACKLOG_HOURS,
            pacing=False,
        )
        settings = Settings(
            site=SiteSettings(base_url=BASE_URL),  # type: ignore[arg-type]
            store=StoreSettings(content_dir=content),
            feeds=FeedSettings(output_dir=work / "public", pages=False),
            state=StateSettings(data_dir=work / "data"),
            targets={"main": target},
        )
        app = create_app(settings)
        app.builder.build(datetime.now(UTC))
        articles = {a.url: a for a in app.index.articles()}
        figures.articles = len(articles)
        finder = RelatedFinder(app.engine)
        started = time.perf_counter()
        with publishers(settings, app.engine, targets(settings), pacing=False) as runners:
            for _ in range(MAX_PASSES):
                report = runners[0].run()
                if report.stopped:
                    raise SystemExit(f"{software}: the pass stopped: {report.stopped}")
                if not (report.posted or report.replies):
                    break
        figures.seconds = time.perf_counter() - started
        statuses = server.live_statuses()
        by_id = {s["id"]: s for s in statuses}
        replies = {s["in_reply_to_id"]: s for s in statuses if s["in_reply_to_id"] in by_id}
        figures.replies = len(replies)
        now = datetime.now(UTC)
        for status in statuses:
            if status["in_reply_to_id"]:
                continue
            figures.posts += 1
            shown = _related(status["text"])
            if status["id"] in replies:
                shown += _related(replies[status["id"]]["text"])
            figures.related_shown += shown
            article = next((articles[u] for u in _links(status["text"]) if u in articles), None)
            if article is not None and len(finder.related(article, 3, now)) >= 2:
                figures.eligible += 1
                figures.eligible_with_two += shown >= 2
        for status in statuses:
            if server.counted_length(status["text"], status["spoiler_text"]) > (
                server.config.max_characters
            ):
                figures.over_limit += 1
        figures.length_errors = sum(
            1 for r in server.requests if r["kind"] == "post_status" and r["status"] in (400, 422)
        )
        app.close()
    return figures


def _related(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(RELATED_MARK))


def _links(text: str) -> list[str]:
    return [
        word
        for line in text.splitlines()
        if not line.startswith(RELATED_MARK)
        for word in line.split()
        if word.startswith("http")
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--store", choices=("sample", "corpus", "both"), default="both")
    parser.add_argument("--profile", action="append", choices=[*sorted(SOFTWARE), "mislabelled"])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the Wikinews JSON lines")
    args = parser.parse_args(argv)
    stores = ("sample", "corpus") if args.store == "both" else (args.store,)
    print(HEADER)
    for store_name in stores:
        for software in args.profile or [*sorted(SOFTWARE), "mislabelled"]:
            with tempfile.TemporaryDirectory(prefix="newsbot-profiles-") as tmp:
                work = Path(tmp)
                if store_name == "sample":
                    content = sample_store(work / "content")
                else:
                    content = corpus_store(work / "content", args.corpus)
                print(measure(store_name, content, software, work).row(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
