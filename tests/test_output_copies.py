"""Several copies of newsbot on one database, each writing an output folder of its own.

Replicas share the state database (PostgreSQL, or one SQLite file) but often
not a volume: each container writes its own ``/srv/public``. The database
then knows what any copy read, and an incremental build of another copy
found nothing to read and wrote nothing: its folder kept the old headline
for good. Each test builds with the real `Builder` on a real database and
reads the files a reader would be served.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsbot.activitypub.federation import SYNC_LEASE, SYNC_LEASE_TTL, Federation
from newsbot.activitypub.outbox import SyncReport
from newsbot.app import BUILD_LEASE, BUILD_LEASE_TTL
from newsbot.build.stamp import MARK, compare
from newsbot.settings import Settings, StateSettings
from newsbot.state.leases import process_owner
from newsbot.state.schema import ap_notes
from support.stores import make_settings, opened, write_later

NOW = datetime(2026, 1, 1, tzinfo=UTC)

STORY = "---\nid: {id}\ntitle: {title}\ndate: 2025-03-0{day}\ntags: Politics\n---\n\nBody.\n"


@pytest.fixture
def content(tmp_path: Path) -> Path:
    for day, (id, title) in enumerate([("budget", "Budget passes"), ("storm", "Storm hits")], 1):
        write_later(tmp_path / "content" / f"{id}.md", STORY.format(id=id, title=title, day=day))
    return tmp_path / "content"


def copy_settings(tmp_path: Path, content: Path, name: str, database_url: str) -> Settings:
    """A copy's settings: the shared store and database, an output folder of its own."""
    base = make_settings(tmp_path / name, content)
    state = StateSettings(data_dir=tmp_path / name / "data", database_url=database_url)
    return base.model_copy(update={"state": state})


def built_copies(tmp_path: Path, content: Path, database_url: str) -> tuple[Settings, Settings]:
    """Two copies on one database, each having built its folder once."""
    first = copy_settings(tmp_path, content, "first", database_url)
    second = copy_settings(tmp_path, content, "second", database_url)
    build(first)
    build(second)
    return first, second


def build(settings: Settings) -> None:
    with opened(settings) as app:
        report = app.builder.build(NOW)
    assert report.suspect is None and not report.unwritten


def shown(settings: Settings) -> str:
    return (settings.feeds.output_dir / "rss.xml").read_text(encoding="utf-8")


def test_a_copy_writes_what_another_copy_read(
    tmp_path: Path, content: Path, database_url: str
) -> None:
    first, second = built_copies(tmp_path, content, database_url)
    write_later(
        content / "storm.md", STORY.format(id="storm", title="Storm batters the coast", day=2)
    )
    write_later(content / "flood.md", STORY.format(id="flood", title="Flood warning", day=5))
    build(first)
    build(second)
    for copy in (first, second):
        assert "Storm batters the coast" in shown(copy)
        assert "Flood warning" in shown(copy)
        assert (copy.feeds.output_dir / "articles/flood/index.html").is_file()
    (content / "flood.md").unlink()
    build(second)
    build(first)
    for copy in (first, second):
        assert "Flood warning" not in shown(copy)
        assert not (copy.feeds.output_dir / "articles/flood/index.html").exists()


def test_a_folder_at_the_same_path_from_another_volume_is_brought_up_to_date(
    tmp_path: Path, content: Path
) -> None:
    """Two containers, one SQLite file on a shared volume, ``/srv/public`` each: one path,
    two folders. Swapping the folder's contents under the path is what the second sees."""
    settings = make_settings(tmp_path, content)
    out = settings.feeds.output_dir
    build(settings)
    shutil.copytree(out, tmp_path / "other-volume")
    write_later(
        content / "storm.md", STORY.format(id="storm", title="Storm batters the coast", day=2)
    )
    build(settings)
    assert compare(settings, NOW)[0] is not None  # nothing changed, for the folder built
    shutil.rmtree(out)
    (tmp_path / "other-volume").rename(out)
    assert compare(settings, NOW)[0] is None  # the stamp is not this folder's
    build(settings)
    assert "Storm batters the coast" in shown(settings)


def test_a_folder_restored_from_an_old_backup_is_written_whole(
    tmp_path: Path, content: Path
) -> None:
    """An operator puts back a copy of the folder taken before the last builds: the index
    says every article is written, and only the mark says this folder has not seen them."""
    settings = make_settings(tmp_path, content)
    out = settings.feeds.output_dir
    build(settings)
    shutil.copytree(out, tmp_path / "backup")
    write_later(content / "flood.md", STORY.format(id="flood", title="Flood warning", day=5))
    build(settings)
    shutil.rmtree(out)
    shutil.copytree(tmp_path / "backup", out)
    build(settings)
    assert "Flood warning" in shown(settings)
    assert (out / "articles/flood/index.html").is_file()


def test_the_mark_is_hidden_and_names_the_last_build(tmp_path: Path, content: Path) -> None:
    settings = make_settings(tmp_path, content)
    build(settings)
    first = (settings.feeds.output_dir / MARK).read_text(encoding="utf-8").split()
    write_later(content / "flood.md", STORY.format(id="flood", title="Flood warning", day=5))
    build(settings)
    second = (settings.feeds.output_dir / MARK).read_text(encoding="utf-8").split()
    assert MARK.startswith(".")  # never served (`newsbot.web.paths`)
    # The folder's id, the database's, the build's generation.
    assert first[:2] == second[:2] and int(second[2]) == int(first[2]) + 1


def test_a_copy_that_died_in_another_container_holds_builds_back_two_minutes_at_most(
    tmp_path: Path, content: Path, database_url: str
) -> None:
    """A copy killed mid-build (the kernel's out-of-memory killer, ``docker kill``) in a
    container of its own (and a data volume of its own, so that its owner file is not in
    sight) cannot be seen to be gone: only the lease's expiry frees it, and
    until then the other copies build nothing and post nothing new."""
    settings = copy_settings(tmp_path, content, "live", database_url)
    with opened(settings) as app:
        killed = datetime.now(UTC) - timedelta(seconds=121)
        gone = app.leases("another-container/1/1/elsewhere/y")
        assert gone.acquire(BUILD_LEASE, killed, BUILD_LEASE_TTL)
        assert app.build_lease(lambda: datetime.now(UTC)).acquire()


def test_a_copy_builds_behind_writes_what_those_builds_changed_and_nothing_else(
    tmp_path: Path, content: Path, database_url: str
) -> None:
    """Two copies running take turns: after each change one reads it and the other builds
    next with nothing to read. Writing the whole folder each time made every build of both
    a full one. The page of an article no build touched is the witness: a copy catching up
    leaves it as it is (here, altered by hand), and writes everything the others changed."""
    write_later(content / "harbour.md", STORY.format(id="harbour", title="Harbour opens", day=3))
    first, second = built_copies(tmp_path, content, database_url)
    witness = second.feeds.output_dir / "articles/harbour/index.html"
    witness.write_text("left as it was", encoding="utf-8")
    write_later(content / "flood.md", STORY.format(id="flood", title="Flood warning", day=5))
    build(first)
    write_later(
        content / "storm.md", STORY.format(id="storm", title="Storm batters the coast", day=2)
    )
    build(first)
    (content / "budget.md").unlink()
    build(first)
    build(second)
    for copy in (first, second):
        out = copy.feeds.output_dir
        assert "Storm batters the coast" in shown(copy)
        assert "Flood warning" in shown(copy) and (out / "articles/flood/index.html").is_file()
        assert "Budget passes" not in shown(copy)
        assert not (out / "articles/budget").exists()
        assert "Storm batters the coast" in (out / "tags/politics/rss.xml").read_text("utf-8")
    assert witness.read_text(encoding="utf-8") == "left as it was"
    build(first)  # a step behind the second now: the same again
    assert "Storm batters the coast" in shown(first)


def test_copies_queue_the_fediverse_activities_one_at_a_time(
    tmp_path: Path, content: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Copies sync their outbox after each build, mostly at the same moment: each found the
    same articles new, one of them failed on the other's notes (an error with a traceback
    in its log), and an article published again after a deletion got a Create from each.
    A sync waits while another copy's runs, then queues what is left."""
    settings = copy_settings(tmp_path, content, "first", database_url)
    build(settings)
    with opened(settings) as app:
        elsewhere = app.leases("another-container/1/1/elsewhere/y")
        assert elsewhere.acquire(SYNC_LEASE, datetime.now(UTC), SYNC_LEASE_TTL)
        federation = Federation(settings, app.engine, owner=process_owner())
        reports: list[SyncReport] = []
        syncing = threading.Thread(target=lambda: reports.append(federation.sync()))
        with caplog.at_level(logging.DEBUG, "newsbot.activitypub.federation"):
            syncing.start()
            deadline = time.monotonic() + 10
            while syncing.is_alive() and "ActivityPub sync" not in caplog.text:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        try:
            with app.engine.connect() as conn:
                assert conn.execute(select(func.count()).select_from(ap_notes)).scalar() == 0
            assert syncing.is_alive()
        finally:
            elsewhere.release(SYNC_LEASE)
            syncing.join(30)
            federation.stop()
    assert reports[0].created == 2


def test_a_copy_further_behind_than_the_builds_kept_is_written_whole(
    tmp_path: Path, content: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsbot.state.build_changes.KEPT", 2)
    first, second = built_copies(tmp_path, content, f"sqlite:///{tmp_path / 'state.db'}")
    witness = second.feeds.output_dir / "articles/budget/index.html"
    witness.write_text("left as it was", encoding="utf-8")
    for day, title in enumerate(["Storm nears", "Storm hits the coast", "Storm passes"], 2):
        write_later(content / "storm.md", STORY.format(id="storm", title=title, day=day))
        build(first)
    build(second)
    assert "Storm passes" in shown(second)
    assert "Budget passes" in witness.read_text(encoding="utf-8")  # written again


def held(settings: Settings, now: datetime) -> set[str]:
    """Ids of live articles not yet posted that a pass would leave for later (page unwritten)."""
    with opened(settings) as app:
        posted = {s.article.id for s in app.deliveries().new_articles("main", now, None)}
        live = {s.article.id for s in app.deliveries().new_articles("main", LATE, None)}
    return live - posted


LATE = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_page_one_copy_cannot_write_holds_its_post_until_that_copy_writes_it(
    tmp_path: Path, content: Path, database_url: str
) -> None:
    first, second = built_copies(tmp_path, content, database_url)
    write_later(content / "flood.md", STORY.format(id="flood", title="Flood warning", day=5))
    in_the_way = first.feeds.output_dir / "articles/flood"
    in_the_way.write_text("a file where the page's folder goes", encoding="utf-8")
    with opened(first) as app:
        assert list(app.builder.build(NOW).pages_unwritten) == ["flood.md"]
    assert held(first, NOW) == {"flood"}
    build(second)  # the other copy's folder has the page: the first's still lacks it
    assert (second.feeds.output_dir / "articles/flood/index.html").is_file()
    assert held(first, NOW) == {"flood"}
    in_the_way.unlink()
    build(first)
    assert (first.feeds.output_dir / "articles/flood/index.html").is_file()
    assert held(first, NOW) == set()


def test_a_folder_no_copy_builds_any_more_holds_no_post_for_good(
    tmp_path: Path, content: Path, database_url: str
) -> None:
    """A replaced container's volume listed a page it could not write: once no build has
    written that folder for a day, the post goes ahead (the other copies have the page)."""
    gone = copy_settings(tmp_path, content, "gone", database_url)
    kept = copy_settings(tmp_path, content, "kept", database_url)
    write_later(content / "flood.md", STORY.format(id="flood", title="Flood warning", day=5))
    (gone.feeds.output_dir / "articles").mkdir(parents=True)
    (gone.feeds.output_dir / "articles/flood").write_text("in the way", encoding="utf-8")
    with opened(gone) as app:
        assert list(app.builder.build(NOW).pages_unwritten) == ["flood.md"]
    later = NOW + timedelta(days=2)
    with opened(kept) as app:
        assert not app.builder.build(later).pages_unwritten
    assert held(kept, NOW + timedelta(hours=1)) == {"flood"}
    assert held(kept, later) == set()
