"""Builds that render pages and feeds in forked processes write what one process writes.

`newsbot.build.parallel` is exercised with real forks: results come back in
share order, a child's exception is raised in the build, and a store large
enough to be split (over 200 pages, over 40 feed sets) builds byte for byte
as it does with the split turned off, with related lists stored, and the
manifest knows every file the children wrote.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import newsbot.build.article_pages
import newsbot.build.feed_files
from newsbot.build import parallel
from newsbot.build.stamp import read_mark
from newsbot.errors import OutputError
from newsbot.state.index import FeedKey, StoreIndex
from newsbot.state.manifest import OutputManifest
from support.stores import make_settings, opened, snapshot

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ARTICLES = 240
TAGS = 60

needs_two = pytest.mark.skipif(parallel.processes() < 2, reason="one core, or no fork")


def _pids(items: Sequence[int]) -> tuple[list[int], int]:
    return list(items), os.getpid()


@needs_two
def test_shares_run_in_children_and_come_back_in_order() -> None:
    results = parallel.split(_pids, list(range(10)), minimum=2)
    count = parallel.processes()
    assert [items for items, _ in results] == [list(range(10))[i::count] for i in range(count)]
    assert results[0][1] == os.getpid()
    assert all(pid != os.getpid() for _, pid in results[1:])


def test_few_items_stay_in_this_process() -> None:
    assert parallel.split(_pids, [1, 2], minimum=3) == [([1, 2], os.getpid())]


def _fail_in_child(items: Sequence[int]) -> int:
    if 1 in items:
        raise OutputError("cannot write here")
    return len(items)


@needs_two
def test_an_exception_of_a_child_is_raised_in_the_build() -> None:
    with pytest.raises(OutputError, match="cannot write here"):
        parallel.split(_fail_in_child, [0, 1, 2, 3], minimum=2)


def _store(content: Path) -> None:
    for n in range(ARTICLES):
        folder = content / f"{2020 + n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        tags = f"Topic {n % TAGS}, Topic {(n * 7) % TAGS}"
        words = " ".join(f"word{(n * k) % 97}" for k in range(1, 40))
        (folder / f"story-{n:03d}.md").write_text(
            f"---\nid: story-{n:03d}\ntitle: Story number {n} about topic {n % TAGS}\n"
            f"date: 2020-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z\nsection: Desk {n % 5}\n"
            f"tags: {tags}\n---\n\nStory {n} says {words}.\n\nTopic {n % TAGS} again.\n",
            encoding="utf-8",
        )


def _build(tmp: Path, content: Path) -> tuple[dict[str, bytes], set[str]]:
    settings = make_settings(tmp, content)
    with opened(settings) as app:
        report = app.builder.build(NOW)
        mark = read_mark(settings.feeds.output_dir)
        assert mark is not None
        manifest = OutputManifest(app.builder.index.engine, mark.folder).paths()
    assert report.pages_written > ARTICLES
    files = snapshot(settings.feeds.output_dir)
    return {name: written.data for name, written in files.items()}, manifest


@needs_two
def test_a_split_build_writes_what_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = tmp_path / "content"
    _store(content)
    split_files, split_manifest = _build(tmp_path / "split", content)

    monkeypatch.setattr(newsbot.build.article_pages, "PARALLEL_FROM", 10**9)
    monkeypatch.setattr(newsbot.build.feed_files, "PARALLEL_FROM", 10**9)
    one_files, one_manifest = _build(tmp_path / "one", content)

    assert split_files.keys() == one_files.keys()
    assert [name for name in one_files if split_files[name] != one_files[name]] == []
    assert b"Related" in split_files["articles/story-000/index.html"]
    assert split_manifest == one_manifest
    pages = {name for name in split_files if name.startswith("articles/")}
    feeds = {name for name in split_files if name.startswith("tags/")}
    assert len(pages) == ARTICLES
    assert len(feeds) > 40 * 4
    assert pages | feeds <= split_manifest


@needs_two
def test_files_a_child_could_not_write_come_back_to_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feed sets side by side go to different processes: each file that could not be written
    is listed by the build, which marks the folder and retries just those feed sets."""
    content = tmp_path / "content"
    _store(content)
    settings = make_settings(tmp_path, content)
    blocked = ["tags/topic-0/atom.xml", "tags/topic-1/atom.xml"]  # one in each share
    for name in blocked:
        (settings.feeds.output_dir / name / "kept").mkdir(parents=True)
    with opened(settings) as app:
        first = app.builder.build(NOW)
        assert sorted(first.files_unwritten) == blocked
        assert first.unwritten == 2 and first.pages_written > ARTICLES
        mark = read_mark(settings.feeds.output_dir)
        assert mark is not None and mark.generation == 1
        rendered: list[FeedKey] = []
        real_newest = StoreIndex.newest

        def newest_spy(self: StoreIndex, key: FeedKey, *args: Any) -> Any:
            rendered.append(key)
            return real_newest(self, key, *args)

        monkeypatch.setattr(StoreIndex, "newest", newest_spy)
        again = app.builder.build(NOW)
    assert sorted(again.files_unwritten) == blocked
    assert rendered == [("tag", "topic-0"), ("tag", "topic-1")]
    assert again.pages_written == 0 and again.stale_removed == 0
    assert (settings.feeds.output_dir / "tags/topic-0/rss.xml").is_file()
