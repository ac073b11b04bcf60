"""What a build could not read or write is tried again, once what stood in the way is gone.

An operator fixes a permission with ``chmod``, a mount, or a stray file in the
output folder; none of these changes an article. Each test breaks one thing,
builds, puts it right, builds again, and reads the output: the second build
must bring what the first missed, although no article changed in between.

Permissions need a process the kernel holds to them. The tests run as root
here (and in CI), so the commands run under ``setpriv`` without the two
capabilities that let root read and write past permission bits; as any other
user they run as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsbot.settings import Settings
from newsbot.state.index import StoreIndex
from support.processes import held_to_permissions
from support.stores import make_settings, opened, rss_items, settings_env

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _article(id: str, title: str, tag: str) -> str:
    day = len(id) % 9 + 1
    return f"---\nid: {id}\ntitle: {title}\ndate: 2025-05-0{day}\ntags: {tag}\n---\n\nBody.\n"


STORE = {
    "2025/budget.md": _article("budget", "Parliament passes the budget", "Politics"),
    "2025/storm.md": _article("storm", "Storm hits the coast", "Weather"),
    "2025/flood.md": _article("flood", "Flood warning for the valley", "Weather"),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    content = tmp_path / "content"
    for rel, text in STORE.items():
        path = content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return make_settings(tmp_path, content)


def _newsbot(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*held_to_permissions(), sys.executable, "-m", "newsbot", *args]
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def _titles(feed: Path) -> set[str]:
    return {item.title for item in rss_items(feed)}


def test_a_file_made_readable_is_read_by_the_next_build(settings: Settings) -> None:
    """``chmod`` leaves the modification time alone: the file must not count as unchanged."""
    unreadable = settings.store.content_dir / "2025/storm.md"
    unreadable.chmod(0o000)
    try:
        first = _newsbot(settings, "build")
        assert first.returncode == 1, first.stderr
        assert "2025/storm.md: not read: the file cannot be read: Permission denied" in first.stderr
        assert "Storm hits the coast" not in _titles(settings.feeds.output_dir / "rss.xml")
    finally:
        unreadable.chmod(0o644)
    second = _newsbot(settings, "build")
    assert second.returncode == 0, second.stderr
    assert "Storm hits the coast" in _titles(settings.feeds.output_dir / "rss.xml")
    checked = _newsbot(settings, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_page_that_could_not_be_written_is_written_by_the_next_build(
    settings: Settings,
) -> None:
    """One page blocked (a file where its folder is due): the others are written, the command
    says so, and the next build writes it once the way is clear."""
    blocker = settings.feeds.output_dir / "articles" / "storm"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    with opened(settings) as app:
        report = app.builder.build(NOW)
    assert report.unwritten == 1
    assert (settings.feeds.output_dir / "articles/budget/index.html").is_file()
    failed = _newsbot(settings, "build")
    assert failed.returncode == 3, failed.stderr
    assert "1 output file(s) could not be written" in failed.stderr
    blocker.unlink()
    again = _newsbot(settings, "build")
    assert again.returncode == 0, again.stderr
    assert "Storm hits the coast" in (
        settings.feeds.output_dir / "articles/storm/index.html"
    ).read_text(encoding="utf-8")
    assert "nothing changed" in _newsbot(settings, "build").stdout


def test_a_page_that_stays_unwritable_costs_later_builds_only_itself(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each build tries the page again (and says it could not), but renders no feed, and no
    other page, that nothing changed: the failed build listed what it left unwritten."""
    blocker = settings.feeds.output_dir / "articles" / "storm"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    rendered: list[str] = []
    real_newest, real_stored = StoreIndex.newest, StoreIndex.stored

    def newest_spy(self: StoreIndex, key: tuple[str, str], *args: Any) -> Any:
        rendered.append("/".join(key))
        return real_newest(self, key, *args)

    def stored_spy(self: StoreIndex, paths: Iterable[str]) -> Any:
        paths = list(paths)
        rendered.extend(paths)
        return real_stored(self, paths)

    with opened(settings) as app:
        first = app.builder.build(NOW)
        assert list(first.pages_unwritten) == ["2025/storm.md"]
        assert "Storm hits the coast" in _titles(settings.feeds.output_dir / "rss.xml")
        monkeypatch.setattr(StoreIndex, "newest", newest_spy)
        monkeypatch.setattr(StoreIndex, "stored", stored_spy)
        again = app.builder.build(NOW)
    assert again.unwritten == 1
    assert "File exists" in again.pages_unwritten["2025/storm.md"]
    assert rendered == ["2025/storm.md"]


def test_feeds_a_failed_build_left_behind_are_written_by_the_next_build(
    settings: Settings,
) -> None:
    """A build that stops half-way has already stored the articles it read: the next build
    must not take the feeds it did not write for up to date."""
    assert _newsbot(settings, "build").returncode == 0
    tag_feed = settings.feeds.output_dir / "tags/weather/rss.xml"
    assert "Storm hits the coast" in _titles(tag_feed)
    storm = settings.store.content_dir / "2025/storm.md"
    storm.write_text(STORE["2025/storm.md"].replace("Storm hits", "Gale hits"), encoding="utf-8")
    shutil.rmtree(tag_feed.parent)
    tag_feed.parent.write_text("in the way")  # a file where the tag's folder is due
    failed = _newsbot(settings, "build")
    assert failed.returncode == 3, failed.stderr
    assert "Traceback" not in failed.stderr
    tag_feed.parent.unlink()
    again = _newsbot(settings, "build")
    assert again.returncode == 0, again.stderr
    assert "Gale hits the coast" in _titles(tag_feed)
    assert "Gale hits the coast" in _titles(settings.feeds.output_dir / "rss.xml")


def test_a_read_only_state_database_is_named_not_traced(settings: Settings) -> None:
    """One line that says what to look at, exit 3; no traceback quoting SQL."""
    assert _newsbot(settings, "build").returncode == 0
    (settings.store.content_dir / "2025/storm.md").write_text(
        STORE["2025/storm.md"].replace("Storm hits", "Gale hits"), encoding="utf-8"
    )
    database = settings.state.sqlite_file
    held = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
    for path in held:
        path.chmod(0o444)
    try:
        failed = _newsbot(settings, "build")
    finally:
        for path in held:
            path.chmod(0o644)
    assert failed.returncode == 3, failed.stderr
    assert "Traceback" not in failed.stderr
    assert "SQL" not in failed.stderr
    assert failed.stderr.startswith("newsbot: the state database cannot be written")
    assert "-wal and -shm" in failed.stderr
