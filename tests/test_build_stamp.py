"""The build stamp: a build with nothing changed ends after a scan, and only then.

Each test builds a small store with the real `Builder` on a real SQLite file,
then asks `unchanged` (what ``newsbot build`` asks before opening the app)
after one change of what the output depends on. Every such change must mean
"build", and the build that follows must bring the change into the output:
a stamp that matched wrongly would leave the output stale for good.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import newsbot
import newsbot.build.builder
import newsbot.build.stamp
from newsbot.build.feed_files import FeedFiles
from newsbot.build.stamp import Stamp, compare
from newsbot.cli import main
from newsbot.settings import Settings
from newsbot.state.stamp import STAMP, read_stamp
from newsbot.store.scan import walk
from support.stores import (
    ID_PREFIX,
    opened,
    rss_items,
    settings_env,
    write_later,
    written_store,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def unchanged(settings: Settings, now: datetime) -> int | None:
    """What ``newsbot build`` asks before opening the app: how many files, or None (build)."""
    return compare(settings, now)[0]


LATER = datetime(2026, 6, 1, tzinfo=UTC)


def _article(id: str, title: str, date: str, tags: str = "Politics") -> str:
    return f"---\nid: {id}\ntitle: {title}\ndate: {date}\ntags: {tags}\n---\n\nBody of {id}.\n"


STORE = {
    "2025/budget.md": _article("budget", "Parliament passes the budget", "2025-03-01"),
    "2025/election.md": _article("election", "Election called", "2025-05-07"),
    "2025/storm.md": _article("storm", "Storm hits the coast", "2025-01-03", "Weather"),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return written_store(tmp_path, STORE)


def build(settings: Settings, now: datetime = NOW) -> None:
    with opened(settings) as app:
        report = app.builder.build(now)
    assert report.suspect is None


def ids(settings: Settings) -> set[str]:
    return {
        item.guid.removeprefix(ID_PREFIX)
        for item in rss_items(settings.feeds.output_dir / "rss.xml")
    }


def test_a_complete_build_leaves_a_stamp_a_scan_matches(settings: Settings) -> None:
    assert unchanged(settings, NOW) is None  # never built
    build(settings)
    assert unchanged(settings, NOW) == len(STORE)
    stamp = Stamp.loads(read_stamp(settings.state.sqlite_file) or "")
    assert stamp is not None and stamp.due is None
    assert stamp.output == str(settings.feeds.output_dir.resolve())


def _touched(settings: Settings) -> Callable[[], object]:
    path = settings.store.content_dir / "2025/storm.md"
    write_later(path, STORE["2025/storm.md"].replace("Storm hits", "Storm batters"))
    return lambda: "Storm batters the coast" in (settings.feeds.output_dir / "rss.xml").read_text()


def _added(settings: Settings) -> Callable[[], object]:
    write_later(
        settings.store.content_dir / "2025/flood.md", _article("flood", "Flood", "2025-09-09")
    )
    return lambda: "flood" in ids(settings)


def _removed(settings: Settings) -> Callable[[], object]:
    (settings.store.content_dir / "2025/storm.md").unlink()
    return lambda: "storm" not in ids(settings)


def _index_lost(settings: Settings) -> Callable[[], object]:
    (settings.feeds.output_dir / "index.html").unlink()
    return lambda: (settings.feeds.output_dir / "index.html").is_file()


@pytest.mark.parametrize("change", [_touched, _added, _removed, _index_lost])
def test_a_change_of_the_store_or_the_output_means_build(
    settings: Settings, change: Callable[[Settings], Callable[[], object]]
) -> None:
    build(settings)
    done = change(settings)
    assert unchanged(settings, NOW) is None
    build(settings)
    assert done()
    assert unchanged(settings, NOW) is not None


def test_other_settings_or_another_output_folder_mean_build(
    settings: Settings, tmp_path: Path
) -> None:
    build(settings)
    fewer = settings.model_copy(update={"feeds": settings.feeds.model_copy(update={"items": 2})})
    assert unchanged(fewer, NOW) is None
    elsewhere = settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"output_dir": tmp_path / "other"})}
    )
    shutil.copytree(settings.feeds.output_dir, tmp_path / "other")
    assert unchanged(elsewhere, NOW) is None
    build(fewer)
    assert len(ids(settings)) == 2
    assert unchanged(fewer, NOW) == len(STORE)
    assert unchanged(settings, NOW) is None


def test_a_scheduled_article_means_build_once_its_time_comes(settings: Settings) -> None:
    write_later(
        settings.store.content_dir / "2026/later.md", _article("later", "Later", "2026-06-01")
    )
    build(settings)
    assert "later" not in ids(settings)
    assert unchanged(settings, NOW) == len(STORE) + 1
    assert unchanged(settings, LATER) is None
    build(settings, LATER)
    assert "later" in ids(settings)
    assert unchanged(settings, LATER) == len(STORE) + 1


def test_a_revision_date_to_come_means_build_once_its_time_comes(settings: Settings) -> None:
    storm = settings.store.content_dir / "2025/storm.md"
    write_later(storm, STORE["2025/storm.md"].replace("tags:", "updated: 2026-06-01\ntags:"))
    build(settings)
    atom = settings.feeds.output_dir / "atom.xml"
    assert "2026-06-01" not in atom.read_text(encoding="utf-8")
    assert unchanged(settings, NOW) == len(STORE)
    assert unchanged(settings, LATER) is None
    build(settings, LATER)
    assert "<updated>2026-06-01T00:00:00+00:00</updated>" in atom.read_text(encoding="utf-8")
    assert unchanged(settings, LATER) == len(STORE)


def test_a_store_with_a_problem_leaves_no_stamp(settings: Settings) -> None:
    write_later(
        settings.store.content_dir / "2025/broken.md", "---\ntitle: [unclosed\n---\n\nBody.\n"
    )
    build(settings)
    assert read_stamp(settings.state.sqlite_file) is None
    assert unchanged(settings, NOW) is None


def test_related_lists_left_for_later_leave_no_stamp(settings: Settings) -> None:
    hurried = settings.model_copy(
        update={"site": settings.site.model_copy(update={"related_seconds": 0.0})}
    )
    build(hurried)
    assert read_stamp(settings.state.sqlite_file) is None
    build(settings)  # other settings: a full build, with the time to store every list
    assert unchanged(settings, NOW) == len(STORE)


def test_a_suspect_store_drops_the_stamp_until_a_build_clears_it(settings: Settings) -> None:
    build(settings)
    kept = settings.store.content_dir.with_name("kept")
    shutil.copytree(settings.store.content_dir, kept)  # copy2: the same modification times
    shutil.rmtree(settings.store.content_dir)
    settings.store.content_dir.mkdir()
    with opened(settings) as app:
        assert app.builder.build(NOW).suspect is not None
    shutil.rmtree(settings.store.content_dir)
    kept.rename(settings.store.content_dir)
    assert unchanged(settings, NOW) is None  # the listing is back, the verdict is not cleared
    build(settings)
    assert unchanged(settings, NOW) == len(STORE)


def test_a_build_that_fails_half_way_leaves_no_stamp(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(settings)
    _touched(settings)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(FeedFiles, "write", broken)
    with pytest.raises(RuntimeError), opened(settings) as app:
        app.builder.build(NOW)
    assert read_stamp(settings.state.sqlite_file) is None


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[]",
        '{"fingerprint": "x"}',
        '{"fingerprint": 1, "output": 2, "store": 3, "due": 4, "more": 5}',
    ],
)
def test_a_damaged_stamp_means_build(settings: Settings, stored: str) -> None:
    build(settings)
    with sqlite3.connect(settings.state.sqlite_file) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (stored, STAMP))
    assert unchanged(settings, NOW) is None


def test_no_database_file_is_made_by_the_check(settings: Settings) -> None:
    assert unchanged(settings, NOW) is None
    assert not settings.state.sqlite_file.exists()


def test_postgresql_state_always_builds(settings: Settings) -> None:
    build(settings)
    on_postgres = settings.model_copy(
        update={"state": settings.state.model_copy(update={"database_url": "postgresql://x/y"})}
    )
    assert unchanged(on_postgres, NOW) is None


def test_the_command_ends_without_importing_the_state_layer(settings: Settings) -> None:
    """What the stamp is for: ``newsbot build`` with nothing changed loads no SQLAlchemy."""
    env = {**os.environ, **settings_env(settings)}
    command = [sys.executable, "-X", "importtime", "-m", "newsbot", "build"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert " sqlalchemy" in first.stderr  # the first build opens the database
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "nothing changed since the last build" in second.stdout
    assert " sqlalchemy" not in second.stderr
    write_later(
        settings.store.content_dir / "2025/flood.md", _article("flood", "Flood", "2025-09-09")
    )
    third = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "1 read" in third.stdout


def test_other_code_means_a_full_build(settings: Settings, tmp_path: Path) -> None:
    """An upgrade reaches the articles already stored: a stamp of other code never matches.

    The build runs from a copy of the package; changing one template of the
    copy (as an upgrade would) must make the next build write every page again.
    """
    code = tmp_path / "code"
    shutil.copytree(
        Path(newsbot.__file__).parent,
        code / "newsbot",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    env = {**os.environ, **settings_env(settings), "PYTHONPATH": str(code)}
    command = [sys.executable, "-m", "newsbot", "build"]
    subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "nothing changed since the last build" in again.stdout
    template = code / "newsbot/render/templates/article.html"
    template.write_text(template.read_text().replace("</body>", "<!-- upgraded --></body>"))
    upgraded = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "nothing changed" not in upgraded.stdout
    pages = sorted((settings.feeds.output_dir / "articles").rglob("index.html"))
    assert len(pages) == len(STORE)
    assert all("<!-- upgraded -->" in page.read_text() for page in pages)


def test_a_build_after_a_change_scans_the_store_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``newsbot build`` takes the scan the stamp check made: one scan per build, where a
    second cost as much as the first."""
    build(settings)
    write_later(
        settings.store.content_dir / "2025/flood.md", _article("flood", "Flood", "2025-09-09")
    )
    scans: list[Path] = []

    def counted(root: Path) -> Any:
        scans.append(root)
        return walk(root)

    monkeypatch.setattr(newsbot.build.stamp, "walk", counted)
    monkeypatch.setattr(newsbot.build.builder, "walk", counted)
    result = CliRunner().invoke(main, ["build", "--quiet"], env=settings_env(settings))
    assert result.exit_code == 0, result.output
    assert scans == [settings.store.content_dir]
    assert "flood" in ids(settings)
    assert unchanged(settings, NOW) == len(STORE) + 1
