"""What a build could not read or write is tried again, once what stood in the way is gone.

An operator fixes a permission with ``chmod``, a mount, or a stray file in the
output folder; none of these changes an article. Each test breaks one thing,
builds, puts it right, builds again, and reads the output: the second build
must bring what the first missed, although no article changed in between.

Permissions need a process the kernel holds to them. The tests run as root
here (and in CI), so the commands run under ``setpriv`` without the two
capabilities that let root read and write past permission bits; as any other
user they run as they are. A build in this process (root's, past permission
bits) is stopped by what stops root too: a file where a folder is due, or a
folder where a file is.
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

from newsbot.build.stamp import MARK
from newsbot.settings import Settings
from newsbot.state.index import StoreIndex
from newsbot.times import utc_now
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


def _spy_on_rendering(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What builds render from now on, in order: each feed set (``tag/weather``) whose
    articles are looked up, and each article whose page is (its store path)."""
    rendered: list[str] = []
    real_newest, real_stored = StoreIndex.newest, StoreIndex.stored

    def newest_spy(self: StoreIndex, key: tuple[str, str], *args: Any) -> Any:
        rendered.append("/".join(key))
        return real_newest(self, key, *args)

    def stored_spy(self: StoreIndex, paths: Iterable[str]) -> Any:
        paths = list(paths)
        rendered.extend(paths)
        return real_stored(self, paths)

    monkeypatch.setattr(StoreIndex, "newest", newest_spy)
    monkeypatch.setattr(StoreIndex, "stored", stored_spy)
    return rendered


def _in_the_way(path: Path, *, folder: bool) -> None:
    """Put what stops even root from writing ``path``: a folder holding a file where the file
    is due, or a file where its folder is due."""
    if folder:
        path.mkdir(parents=True)
        (path / "kept").write_text("in the way")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("in the way")


def _out_of_the_way(path: Path) -> None:
    """What an operator does once they see the error: take away what stood in the way."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


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
    with opened(settings) as app:
        first = app.builder.build(NOW)
        assert list(first.pages_unwritten) == ["2025/storm.md"]
        assert "Storm hits the coast" in _titles(settings.feeds.output_dir / "rss.xml")
        rendered = _spy_on_rendering(monkeypatch)
        again = app.builder.build(NOW)
    assert again.unwritten == 1
    assert "File exists" in again.pages_unwritten["2025/storm.md"]
    assert rendered == ["2025/storm.md"]


# -- a feed, navigation or image file that cannot be written costs only itself -------------------

OTHERS = (
    "rss.xml", "atom.xml", "feed.json", "index.html", "tags/weather/index.html",
    "tags/politics/atom.xml", "articles/storm/index.html", "articles/budget/index.html",
    "archive/index.html", "archive/2025/05/index.html", "sitemap.xml", "robots.txt", "feeds.opml",
)  # fmt: skip
"""Files of every step of a build, of which each test blocks one."""

UNWRITABLE = [
    # (the file, whether a folder stands where it is due (else a file where its folder is),
    #  what the build still broken renders: the feed set, or nothing beyond navigation)
    pytest.param("tags/weather/atom.xml", True, ["tag/weather"], id="tag-feed"),
    pytest.param("atom.xml", True, ["site/"], id="site-feed"),
    pytest.param("index.html", True, ["site/"], id="site-index"),
    pytest.param("archive/2025/05/index.html", False, [], id="archive-month"),
    pytest.param("robots.txt", True, [], id="robots"),
]


@pytest.mark.parametrize(("name", "folder", "retried"), UNWRITABLE)
def test_a_feed_or_navigation_file_that_could_not_be_written_costs_only_itself(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str, folder: bool, retried: list[str]
) -> None:
    """The build writes every other file, names the file and the error (no traceback) and
    exits 3; while it stays unwritable, builds retry it and render nothing else nothing
    changed; once the way is clear, the next build writes it and exits 0."""
    out = settings.feeds.output_dir
    blocked = out / name
    blocker = blocked if folder else blocked.parent.parent
    _in_the_way(blocker, folder=folder)
    failed = _newsbot(settings, "build")
    assert failed.returncode == 3, failed.stderr
    assert "Traceback" not in failed.stderr
    assert f"cannot write {blocked}: " in failed.stderr
    assert "1 output file(s) could not be written" in failed.stderr
    for other in OTHERS:
        assert other == name or (out / other).is_file(), other
    assert "Storm hits the coast" in _titles(out / "tags/weather/rss.xml")

    rendered = _spy_on_rendering(monkeypatch)
    with opened(settings) as app:
        again = app.builder.build(utc_now())
    assert list(again.files_unwritten) == [name]
    assert again.unwritten == 1 and again.pages_unwritten == {}
    assert rendered == retried

    _out_of_the_way(blocker)
    fixed = _newsbot(settings, "build")
    assert fixed.returncode == 0, fixed.stderr
    assert blocked.is_file() and blocked.stat().st_size > 0
    assert "nothing changed" in _newsbot(settings, "build").stdout


HARBOUR = (
    "---\nid: harbour\ntitle: Harbour reopens\ndate: 2025-05-04\ntags: Weather\n"
    "image: {url: photos/harbour.png, alt: Boats}\n---\n\nBody.\n"
)
PNG = b"\x89PNG\r\n\x1a\nnot really"


def test_an_image_that_could_not_be_copied_costs_only_itself(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page showing it is written and its article not held (the post uploads the image
    from the store); builds retry that page's copy alone until the image is in place."""
    content, out = settings.store.content_dir, settings.feeds.output_dir
    (content / "2025/harbour.md").write_text(HARBOUR, encoding="utf-8")
    (content / "2025/photos").mkdir()
    (content / "2025/photos/harbour.png").write_bytes(PNG)
    image = out / "media/2025/photos/harbour.png"
    _in_the_way(image.parent, folder=False)
    failed = _newsbot(settings, "build")
    assert failed.returncode == 3, failed.stderr
    assert "Traceback" not in failed.stderr
    assert f"cannot write {image}: File exists" in failed.stderr
    assert "media/2025/photos/harbour.png" in (out / "articles/harbour/index.html").read_text()
    for other in OTHERS:
        assert (out / other).is_file(), other

    rendered = _spy_on_rendering(monkeypatch)
    with opened(settings) as app:
        again = app.builder.build(utc_now())
    assert list(again.files_unwritten) == ["media/2025/photos/harbour.png"]
    assert again.pages_unwritten == {}
    assert rendered == ["2025/harbour.md"]

    _out_of_the_way(image.parent)
    fixed = _newsbot(settings, "build")
    assert fixed.returncode == 0, fixed.stderr
    assert image.read_bytes() == PNG
    assert "nothing changed" in _newsbot(settings, "build").stdout


def test_a_file_that_could_not_be_written_removes_nothing_as_stale(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build that writes everything (the folder's mark is gone) removes the files it did
    not write: those it could not write, and the rest of their feed set, stay. It lists
    them, so the folder's mark says written whole and the next build retries just them."""
    out = settings.feeds.output_dir
    assert _newsbot(settings, "build").returncode == 0
    before = _files(out)
    (out / MARK).unlink()
    blocked = ["tags/weather/atom.xml", "archive/index.html", "sitemap.xml"]
    for name in blocked:
        (out / name).unlink()
        _in_the_way(out / name, folder=True)
    with opened(settings) as app:
        report = app.builder.build(utc_now())
        assert sorted(report.files_unwritten) == sorted(blocked)
        assert report.stale_removed == 0
        assert _files(out) >= before - set(blocked) - {MARK}
        rendered = _spy_on_rendering(monkeypatch)
        again = app.builder.build(utc_now())
    assert again.unwritten == 3 and again.stale_removed == 0
    assert rendered == ["tag/weather"]


def test_feeds_a_failed_build_left_behind_are_written_by_the_next_build(
    settings: Settings,
) -> None:
    """A build that could not write a feed set has already stored the articles it read: the
    next build must not take the feeds it did not write for up to date."""
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


# -- a file that cannot be removed costs only itself ---------------------------------------------

SPY = """\
import sys
from newsbot.cli import main
from newsbot.state.index import StoreIndex

record = open(sys.argv[1], "a", encoding="utf-8")
real_newest, real_stored = StoreIndex.newest, StoreIndex.stored

def newest(self, key, *args):
    record.write("/".join(key) + "\\n")
    return real_newest(self, key, *args)

def stored(self, paths):
    paths = list(paths)
    record.writelines(path + "\\n" for path in paths)
    return real_stored(self, paths)

StoreIndex.newest, StoreIndex.stored = newest, stored
main(sys.argv[2:], prog_name="newsbot")
"""
"""`newsbot` with what its builds render noted (as `_spy_on_rendering` does), for a build
held to permission bits: in this process root's build removes from any folder."""

STUCK = [
    # (the folder made read-only, the file of it named, the articles changed and how)
    pytest.param(
        "tags/weather", "tags/weather/rss.xml", ("2025/storm.md", "2025/flood.md"),
        "tags: Politics", id="tag-feed",
    ),
    pytest.param(
        "articles/storm", "articles/storm/index.html", ("2025/storm.md",),
        "tags: Weather\nwithdrawn: true", id="withdrawn-page",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("folder", "name", "changed", "new"), STUCK)
def test_a_file_that_could_not_be_removed_costs_only_itself(
    settings: Settings, tmp_path: Path, folder: str, name: str, changed: tuple[str, ...], new: str
) -> None:
    """A file to remove (the feeds of a tag left without articles, a withdrawn article's page)
    in a folder the service cannot write: the build writes every other file, names the file
    and the error (no traceback) and exits 3; the operator sees it listed; while it stays,
    builds retry its removal and render nothing else; once the folder is writable again, the
    next build removes it and exits 0."""
    out = settings.feeds.output_dir
    assert _newsbot(settings, "build").returncode == 0
    content = settings.store.content_dir
    for rel in changed:
        (content / rel).write_text(STORE[rel].replace("tags: Weather", new), encoding="utf-8")
    stuck = out / folder
    stuck.chmod(0o555)
    try:
        failed = _newsbot(settings, "build")
        assert failed.returncode == 3, failed.stderr
        assert "Traceback" not in failed.stderr
        assert f"output file not removed: cannot remove {out / name}: Permission denied" in (
            failed.stderr
        )
        assert (out / name).is_file()
        for other in OTHERS:
            assert other.startswith(folder) or (out / other).is_file(), other
        if "withdrawn" in new:
            assert "Storm hits the coast" not in _titles(out / "rss.xml")
        else:
            assert "Storm hits the coast" in _titles(out / "tags/politics/rss.xml")
        state = _newsbot(settings, "state")
        assert f"unremoved  {name}  cannot remove {out / name}: Permission denied" in state.stdout

        spy, record = tmp_path / "spy.py", tmp_path / "rendered"
        spy.write_text(SPY, encoding="utf-8")
        record.touch()
        command = [*held_to_permissions(), sys.executable, str(spy), str(record), "build"]
        env = {**os.environ, **settings_env(settings)}
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 3, again.stderr
        assert f"cannot remove {out / name}" in again.stderr
        assert record.read_text(encoding="utf-8") == ""
    finally:
        stuck.chmod(0o755)
    fixed = _newsbot(settings, "build")
    assert fixed.returncode == 0, fixed.stderr
    assert not (out / name).exists()
    assert not stuck.exists()  # its folder left empty goes too
    assert "unwritten" not in _newsbot(settings, "state").stdout
    assert "nothing changed" in _newsbot(settings, "build").stdout
