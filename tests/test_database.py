"""The state database module knows the newest schema revision without loading Alembic."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine

from newsbot.forked import Child
from newsbot.state import database
from newsbot.state.database import DatabaseError, open_database

if TYPE_CHECKING:
    from newsbot.settings import Settings


def test_the_known_head_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from newsbot.state.database import HEAD, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def _at_revision(database_url: str, revision: str) -> Engine:
    """A new database upgraded only as far as ``revision``, as an older version left it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, make_url

    from newsbot.state.database import MIGRATIONS

    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return engine


def test_a_database_at_0003_upgrades_to_the_head(database_url: str) -> None:
    """The guards' revision and the server rules' one both apply, in order, on existing data."""
    from sqlalchemy import insert, inspect, select

    from newsbot.state.database import HEAD, current_revision, open_database
    from newsbot.state.schema import deliveries, targets

    engine = _at_revision(database_url, "0003")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO targets (name, account_id) VALUES ('main', '7')")
        connection.exec_driver_sql(
            "INSERT INTO deliveries (target, article_id, state, action, revision,"
            " idempotency_key, uncertain, article_url, tries, next_try)"
            " VALUES ('main', '2026/a', 'posted', 'create', 'r1', 'k1', false,"
            " 'https://news.example/a', 0, 0)"
        )
    assert current_revision(engine) == "0003"
    engine.dispose()

    upgraded = open_database(database_url)
    try:
        assert current_revision(upgraded) == HEAD == "0019"
        indexes = {index["name"] for index in inspect(upgraded).get_indexes("articles")}
        assert ("articles_live" in indexes) == (upgraded.dialect.name == "sqlite")
        assert "articles_not_live" in indexes
        with upgraded.begin() as connection:
            row = connection.execute(select(targets)).one()._mapping
            assert (row["account_id"], row["server"], row["moved_to"]) == ("7", None, None)
            assert (row["software"], row["length_errors"], row["stopped_since"]) == (None, 0, None)
            assert connection.execute(select(deliveries.c.state)).scalar() == "posted"
            connection.execute(insert(targets).values(name="other"))  # defaults of both
            connection.exec_driver_sql("SELECT path FROM output_files")
            connection.exec_driver_sql("SELECT reply_state FROM post_related")
            connection.exec_driver_sql("SELECT path FROM related_links")
            connection.exec_driver_sql("SELECT name FROM ap_keys")
            connection.exec_driver_sql("SELECT path, error FROM unwritten_pages")
            connection.exec_driver_sql("SELECT name, kind, source, error FROM unwritten_files")
    finally:
        upgraded.dispose()


def test_work_given_up_before_0016_is_found_by_what_it_recorded(database_url: str) -> None:
    """Rows given up by a version that marked them as handled or refused are told apart at the
    upgrade, so the operator sees and re-queues them; rows refused for good stay so."""
    from newsbot.state.ap_deliveries import DeliveryRows
    from newsbot.state.inbox import InboxRows

    engine = _at_revision(database_url, "0015")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO ap_inbox (actor, type, body, received, processed, tries, next_try,"
            " last_error) VALUES"
            " ('https://a.example/u', 'Follow', '{}', 1, 2, 16, 0, 'gave up after 16 tries: 503'),"
            " ('https://b.example/u', 'Follow', '{}', 1, 2, 17, 0, 'its handling never finished'),"
            " ('https://c.example/u', 'Follow', '{}', 1, 2, 1, 0, 'answered 410'),"
            " ('https://d.example/u', 'Follow', '{}', 1, 2, 1, 0, NULL)"
        )
        connection.exec_driver_sql(
            "INSERT INTO ap_activities (id, seq, type, public, body, created)"
            " VALUES ('a', 1, 'Create', true, '{}', 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO ap_deliveries (activity_id, inbox, host, state, tries, next_try,"
            " created, last_status, last_error) VALUES"
            " ('a', 'https://e1/i', 'e1', 'failed', 16, 0, 0, 503, '503 Service Unavailable'),"
            " ('a', 'https://e2/i', 'e2', 'failed', 16, 0, 0, 429, '429 Too Many Requests'),"
            " ('a', 'https://e3/i', 'e3', 'failed', 16, 0, 0, NULL, 'ClientConnectorError'),"
            " ('a', 'https://e4/i', 'e4', 'failed', 1, 0, 0, 410, '410 Gone'),"
            " ('a', 'https://e5/i', 'e5', 'failed', 1, 0, 0, NULL, 'e5 is a loopback name'),"
            " ('a', 'https://e6/i', 'e6', 'done', 1, 0, 0, 202, NULL)"
        )
    engine.dispose()

    upgraded = open_database(database_url)
    try:
        assert InboxRows(upgraded).counts() == {"given_up": 2, "dropped": 1, "handled": 1}
        assert DeliveryRows(upgraded).counts() == {"given_up": 3, "failed": 2, "done": 1}
    finally:
        upgraded.dispose()


def test_an_inbox_row_left_at_0010_is_due_after_the_upgrade(database_url: str) -> None:
    """An activity stored (its 202 sent) by a version without retries is handled by the next."""
    from datetime import UTC, datetime, timedelta

    from newsbot.state.inbox import InboxRows

    engine = _at_revision(database_url, "0010")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO ap_inbox (actor, type, body, received) VALUES"
            " ('https://a.example/u', 'Follow', '{}', 5), ('https://b.example/u', 'Undo', '{}', 6)"
        )
        connection.exec_driver_sql("UPDATE ap_inbox SET processed = 7 WHERE type = 'Undo'")
    engine.dispose()

    upgraded = open_database(database_url)
    try:
        claimed = InboxRows(upgraded).claim("me", datetime.now(UTC), 10, timedelta(minutes=1))
        assert [(r.actor, r.tries) for r in claimed] == [("https://a.example/u", 1)]
    finally:
        upgraded.dispose()


def test_an_upgrade_runs_in_a_child_and_leaves_no_alembic_behind(tmp_path: Path) -> None:
    """A service that upgraded its schema at start would keep Alembic loaded until its restart."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    code = (
        "import sys\n"
        "from newsbot.state.database import HEAD, current_revision, open_database\n"
        f"engine = open_database({url!r})\n"
        "assert current_revision(engine) == HEAD, current_revision(engine)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))\n"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_an_upgrade_that_fails_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in the child comes back as the error it would have been in this process."""
    file = tmp_path / "state.db"
    with sqlite3.connect(file) as connection:  # a table of the first revision, already there
        connection.execute("CREATE TABLE articles (x INTEGER)")
    with pytest.raises(DatabaseError, match=r"cannot open the state database sqlite:///.*articles"):
        open_database(f"sqlite:///{file}")
    monkeypatch.setattr(database, "Child", _KilledChild)
    with pytest.raises(DatabaseError, match="schema upgrade's process was killed by SIGKILL"):
        open_database(f"sqlite:///{tmp_path / 'killed.db'}")


def _kill_self() -> None:
    os.kill(os.getpid(), 9)


class _KilledChild(Child[None]):
    """A child process that is killed (out of memory, say) instead of doing its work."""

    def run(self, work: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().run(_kill_self, *args, **kwargs)


def test_posts_keep_their_articles_when_the_id_rule_changes(tmp_path: Path) -> None:
    """A state file left by the older id rule (北京.md was '_', 上海.md shadowed by it):
    after the upgrade and a build, nothing posted is new again or withdrawn."""
    from datetime import UTC, datetime, timedelta

    from support.posting import write_article
    from support.stores import make_settings, opened

    now = datetime.now(UTC)
    content = tmp_path / "content"
    for hours, name in enumerate(["北京", "上海", "Calais deal", "2020-北京"], 1):
        write_article(content, f"{name}.md", f"Article {name}", now - timedelta(hours=hours))
    settings = make_settings(tmp_path, content)
    with opened(settings) as app:
        app.builder.build(now)
        file = app.engine.url.database
    assert file is not None
    old_ids = {"北京.md": ("_", 0), "上海.md": ("_", 1), "2020-北京.md": ("2020", 0)}
    with sqlite3.connect(file) as db:  # what the older version left
        for path, (old, shadowed) in old_ids.items():
            (data,) = db.execute("SELECT data FROM articles WHERE path = ?", (path,)).fetchone()
            data = data.replace(f'"id":"{path.removesuffix(".md")}"', f'"id":"{old}"')
            db.execute(
                "UPDATE articles SET id = ?, shadowed = ?, data = ? WHERE path = ?",
                (old, shadowed, data, path),
            )
        for old in ("_", "calais-deal", "2020"):
            db.execute(
                "INSERT INTO deliveries (target, article_id, state, action, revision,"
                " idempotency_key, uncertain, article_url, tries, next_try)"
                " VALUES ('main', ?, 'posted', 'create', 'r1', ?, 0, 'https://x/', 0, 0)",
                (old, f"k-{old}"),
            )
        db.execute(
            "INSERT INTO post_related (target, article_id, links, editors, in_reply)"
            " VALUES ('main', '_', '[]', '[]', 0)"
        )
        _back_to_0009(db)
        db.execute("UPDATE alembic_version SET version_num = '0008'")

    with opened(settings) as app:
        deliveries = app.deliveries()
        assert deliveries.withdrawn("main", 10) == []  # before the next build, too
        assert [s.article.id for s in deliveries.new_articles("main", now, None)] == []
        app.builder.build(now)
        assert deliveries.withdrawn("main", 10) == []
        assert [s.article.id for s in deliveries.new_articles("main", now, None)] == ["上海"]
        for article_id in ("北京", "calais-deal", "2020-北京"):
            delivery = deliveries.get("main", article_id)
            assert delivery is not None and delivery.state == "posted"
        with app.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT article_id FROM post_related").scalar() == "北京"


FINGERPRINT = "SELECT value FROM meta WHERE key = 'fingerprint'"
"""The build fingerprint: dropped by a migration, the next build reads every file again."""


def _built_then_back(
    settings: Settings, now: datetime, back: Callable[[sqlite3.Connection], None]
) -> None:
    """Build the store of ``settings`` at ``now``, then make its state file what an older
    version left (``back``)."""
    from support.stores import opened

    with opened(settings) as app:
        app.builder.build(now)
        file = app.engine.url.database
    assert file is not None
    with sqlite3.connect(file) as db:
        back(db)


def _back_to_0018(db: sqlite3.Connection) -> None:
    """Make a head state file what 0018 left: no index of the articles not live (0019)."""
    db.execute("DROP INDEX articles_not_live")
    db.execute("UPDATE alembic_version SET version_num = '0018'")


def _back_to_0017(db: sqlite3.Connection) -> None:
    """Make a head state file what 0017 left: no list of unwritten files (migration 0018)."""
    _back_to_0018(db)
    db.execute("DROP TABLE unwritten_files")
    db.execute("UPDATE alembic_version SET version_num = '0017'")


def _back_to_0016(db: sqlite3.Connection) -> None:
    """Make a head state file what 0016 left: no leads split by the build (migration 0017)."""
    _back_to_0017(db)
    db.execute("ALTER TABLE articles DROP COLUMN leads")
    db.execute("UPDATE alembic_version SET version_num = '0016'")


def _back_to_0015(db: sqlite3.Connection) -> None:
    """Make a head state file what 0015 left: given-up rows not told apart (migration 0016)."""
    _back_to_0016(db)
    db.execute("ALTER TABLE ap_inbox DROP COLUMN given_up")
    db.execute("UPDATE ap_deliveries SET state = 'failed' WHERE state = 'given_up'")
    db.execute("UPDATE alembic_version SET version_num = '0015'")


def _back_to_0014(db: sqlite3.Connection) -> None:
    """Make a head state file what 0014 left: no list of unwritten pages (migration 0015)."""
    _back_to_0015(db)
    db.execute("DROP TABLE unwritten_pages")
    db.execute("UPDATE alembic_version SET version_num = '0014'")


def _back_to_0013(db: sqlite3.Connection) -> None:
    """Make a head state file what 0013 left: no revision date of each article (0014)."""
    _back_to_0014(db)
    db.execute("DROP INDEX articles_updated")
    db.execute("ALTER TABLE articles DROP COLUMN updated")
    db.execute("UPDATE alembic_version SET version_num = '0013'")


def _back_to_0012(db: sqlite3.Connection) -> None:
    """Make a head state file what 0012 left: one list of output files, of the folder the
    ``output_root`` meta key names (migration 0013)."""
    _back_to_0013(db)
    db.execute("DROP TABLE output_folders")
    db.execute("CREATE TABLE output_files_one (path VARCHAR(1024) PRIMARY KEY)")
    db.execute("INSERT INTO output_files_one SELECT DISTINCT path FROM output_files")
    db.execute("DROP TABLE output_files")
    db.execute("ALTER TABLE output_files_one RENAME TO output_files")
    db.execute("UPDATE alembic_version SET version_num = '0012'")


def _back_to_0010(db: sqlite3.Connection) -> None:
    """Make a head state file what 0010 left: no retries of inbox rows (migration 0011), no
    build since which each article is live (0012)."""
    _back_to_0012(db)
    for column in ("tries", "next_try", "owner", "lease_until", "last_error"):
        db.execute(f"ALTER TABLE ap_inbox DROP COLUMN {column}")
    db.execute("ALTER TABLE articles DROP COLUMN live_since")
    db.execute("UPDATE alembic_version SET version_num = '0010'")


def test_the_last_articles_of_an_output_0012_left_unfinished_wait_for_the_next_build(
    tmp_path: Path,
) -> None:
    """A state file of 0012 whose last build could not write a page: it kept no list of which,
    only its output marked unfinished. After the upgrade, the articles that build stored
    wait; the next build lists the page it still cannot write, and the others are posted."""
    from datetime import UTC, datetime, timedelta

    from support.posting import write_article
    from support.stores import make_settings, opened

    now = datetime.now(UTC)
    content = tmp_path / "content"
    write_article(content, "a.md", "First", now - timedelta(hours=3))
    settings = make_settings(tmp_path, content)
    with opened(settings) as app:
        app.builder.build(now)
    write_article(content, "b.md", "Second", now - timedelta(hours=2))
    write_article(content, "c.md", "Third", now - timedelta(hours=1))
    (settings.feeds.output_dir / "articles/c").write_text("in the way")
    with opened(settings) as app:
        assert list(app.builder.build(now).pages_unwritten) == ["c.md"]
        file = app.engine.url.database
    assert file is not None
    with sqlite3.connect(file) as db:  # what 0012 left: the output unfinished, no list
        _back_to_0012(db)
        db.execute("INSERT INTO meta (key, value) VALUES ('output_unfinished', 'x')")

    with opened(settings) as app:
        deliveries = app.deliveries()
        assert [s.article.id for s in deliveries.new_articles("main", now, None)] == ["a"]
        assert list(app.builder.build(now).pages_unwritten) == ["c.md"]
        assert [s.article.id for s in deliveries.new_articles("main", now, None)] == ["a", "b"]


def _back_to_0009(db: sqlite3.Connection) -> None:
    """Make a head state file what 0009 left: no page of each article (migration 0010)."""
    _back_to_0010(db)
    db.execute("DROP INDEX articles_page")
    db.execute("ALTER TABLE articles DROP COLUMN page")
    db.execute("ALTER TABLE articles DROP COLUMN page_field")
    db.execute("UPDATE alembic_version SET version_num = '0009'")


def test_two_posted_articles_with_one_page_are_told_apart_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """A state file of an older version, where Cafe and cafe were both published with one
    page: the upgrade changes nothing a publish pass sees; the next build leaves the second
    out (a problem names it) and its post is withdrawn, as a second file with one id is."""
    from datetime import UTC, datetime, timedelta

    from support.posting import write_article
    from support.stores import make_settings, opened

    now = datetime.now(UTC)
    content = tmp_path / "content"
    write_article(content, "a.md", "First", now - timedelta(hours=2), id="Cafe")
    write_article(content, "b.md", "Second", now - timedelta(hours=1), id="cafe")
    settings = make_settings(tmp_path, content)
    with opened(settings) as app:
        app.builder.build(now)
        file = app.engine.url.database
    assert file is not None
    with sqlite3.connect(file) as db:  # what the older version left: both live, both posted
        _back_to_0009(db)
        db.execute("UPDATE articles SET shadowed = 0")
        for article_id in ("Cafe", "cafe"):
            db.execute(
                "INSERT INTO deliveries (target, article_id, state, action, revision,"
                " idempotency_key, uncertain, article_url, tries, next_try)"
                " VALUES ('main', ?, 'posted', 'create', 'r1', ?, 0, 'https://x/', 0, 0)",
                (article_id, f"k-{article_id}"),
            )

    with opened(settings) as app:
        deliveries = app.deliveries()
        assert deliveries.withdrawn("main", 10) == []  # before the next build, nothing moves
        assert deliveries.new_articles("main", now, None) == []
        report = app.builder.build(now)
        assert [(p.path, p.field) for p in report.problems] == [("b.md", "id")]
        assert [d.article_id for d in deliveries.withdrawn("main", 10)] == ["cafe"]
        assert deliveries.new_articles("main", now, None) == []


def test_drafts_give_way_and_pages_compare_without_case_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """A state file of 0010: a draft stored first owns the page of a live article, and two
    live articles whose pages differ only in case are both published. The upgrade marks
    the live rows live since they were stored; the next build gives the page to the live
    article and leaves the second of the two pages out, a problem naming each."""
    import hashlib
    from datetime import UTC, datetime, timedelta

    from support.posting import write_article
    from support.stores import BASE_URL, make_settings, opened

    now = datetime.now(UTC)
    content = tmp_path / "content"
    write_article(content, "draft.md", "Draft", now - timedelta(hours=3), id="Cafe", draft=True)
    write_article(content, "live.md", "Published", now - timedelta(hours=2), id="cafe")
    write_article(content, "x.md", "Upper", now - timedelta(hours=2), url=BASE_URL + "a/Up/")
    write_article(content, "y.md", "Lower", now - timedelta(hours=1), url=BASE_URL + "a/up/")
    settings = make_settings(tmp_path, content)
    with opened(settings) as app:
        app.builder.build(now)
        file = app.engine.url.database
    assert file is not None
    with sqlite3.connect(file) as db:  # what 0010 left: the draft first, exact page keys
        db.execute("UPDATE articles SET shadowed = (path = 'live.md')")
        exact = hashlib.sha256(b"a/Up/index.html").hexdigest()
        db.execute("UPDATE articles SET page = ? WHERE path = 'x.md'", (exact,))
        _back_to_0010(db)

    out = settings.feeds.output_dir
    with opened(settings) as app:
        with app.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT path, live_since, added FROM articles").all()
        assert {path: since for path, since, _ in rows} == {
            "draft.md": None,
            **{path: added for path, _, added in rows if path != "draft.md"},
        }
        report = app.builder.build(now)
    assert [(p.path, p.field) for p in report.problems] == [("draft.md", "id"), ("y.md", "url")]
    assert "Published" in (out / "articles/cafe/index.html").read_text(encoding="utf-8")
    assert "Upper" in (out / "a/Up/index.html").read_text(encoding="utf-8")


def test_the_list_of_output_files_of_before_goes_to_its_folder_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """A state file of a version with one list of output files (0012), for the folder the
    ``output_root`` meta key names: after the upgrade that folder's first build still knows
    its files as newsbot's, and removes the tag feeds turned off; the operator's stay."""
    from datetime import UTC, datetime

    from newsbot.build.stamp import MARK
    from support.posting import write_article
    from support.stores import make_settings, opened

    now = datetime.now(UTC)
    content = tmp_path / "content"
    write_article(content, "a.md", "Harbour reopens", now, tags=["Harbour"])
    settings = make_settings(tmp_path, content)
    public = settings.feeds.output_dir
    with opened(settings) as app:
        app.builder.build(now)
        file = app.engine.url.database
    assert file is not None and (public / "tags/harbour/rss.xml").is_file()
    with sqlite3.connect(file) as db:  # what the older version left
        _back_to_0012(db)
        db.execute("INSERT INTO meta (key, value) VALUES ('output_root', ?)", (str(public),))
    (public / MARK).unlink()
    (public / "mine.txt").write_text("the operator's", encoding="utf-8")

    off = settings.model_copy(
        update={"feeds": settings.feeds.model_copy(update={"per_tag": False})}
    )
    with opened(off) as app:
        report = app.builder.build(now)
        with app.engine.connect() as conn:
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM output_files WHERE folder = ''"
            ).scalar()
            root = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'output_root'")
            assert (left, root.first()) == (0, None)
    assert report.stale_removed == 4  # rss, atom, json and the page of the tag
    assert not (public / "tags").exists()
    assert (public / "mine.txt").is_file()


def test_a_revision_date_to_come_is_scheduled_after_the_upgrade(tmp_path: Path) -> None:
    """A state file of 0013, which kept no revision date per article, holding one whose
    ``updated`` is still to come: the next build reads every file again (the fingerprint is
    dropped) and stores it, so the build after that date shows it."""
    from datetime import UTC, datetime, timedelta

    from support.posting import write_article
    from support.stores import make_settings, opened

    now = datetime(2026, 3, 1, tzinfo=UTC)
    revised = now + timedelta(days=1)
    content = tmp_path / "content"
    write_article(content, "a.md", "Revised", now - timedelta(days=2), updated=revised.isoformat())
    settings = make_settings(tmp_path, content)
    _built_then_back(settings, now, _back_to_0013)

    atom = settings.feeds.output_dir / "atom.xml"
    with opened(settings) as app:
        with app.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT updated FROM articles").scalar() is None
            assert conn.exec_driver_sql(FINGERPRINT).first() is None
        assert app.builder.build(now).read == 1
        assert "2026-03-02" not in atom.read_text(encoding="utf-8")
        assert app.builder.build(revised).read == 0
    assert "<updated>2026-03-02T00:00:00+00:00</updated>" in atom.read_text(encoding="utf-8")


def test_articles_stored_before_0017_get_their_leads_from_the_next_build(tmp_path: Path) -> None:
    """A state file of 0016 kept no leads: the next build reads every file again (the
    fingerprint is dropped) and stores the leads of the articles a target may post."""
    from datetime import UTC, datetime, timedelta

    from support.posting import settings_for, target, write_article
    from support.stores import opened

    now = datetime.now(UTC)
    content = tmp_path / "content"
    write_article(content, "a.md", "Budget", now - timedelta(hours=1), body="One. Two.")
    settings = settings_for(tmp_path, content, {"main": target("https://social.example")})
    _built_then_back(settings, now, _back_to_0016)

    with opened(settings) as app:
        with app.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT leads FROM articles").scalar() is None
            assert conn.exec_driver_sql(FINGERPRINT).first() is None
        assert app.builder.build(now).read == 1
        with app.engine.connect() as conn:
            leads = conn.exec_driver_sql("SELECT leads FROM articles").scalar()
    assert json.loads(leads) == {"budget": 240, "sentences": {"en": ["One.", "Two."]}}


def test_a_build_finds_the_articles_come_due_without_reading_the_others(tmp_path: Path) -> None:
    """`StoreIndex.go_live` reads only the rows not live (migration 0019's partial index),
    not every article's row: on SQLite, ``live_since`` sits after each row's text and
    HTML, and the search read through them all in each build. A state file of 0018 gets
    the index."""
    from datetime import UTC, datetime

    from sqlalchemy import event

    from support.stores import make_settings, opened, write_later

    now = datetime(2026, 1, 1, tzinfo=UTC)
    content = tmp_path / "content"
    for n in range(3):
        write_later(
            content / f"{n}.md", f"---\nid: a{n}\ntitle: A{n}\ndate: 2025-0{n + 1}-01\n---\n\nB.\n"
        )
    settings = make_settings(tmp_path, content)
    _built_then_back(settings, now, _back_to_0018)

    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("SELECT") and "live_since IS NULL" in statement:
            seen.append((statement, params))

    with opened(settings) as app:
        event.listen(app.engine, "before_cursor_execute", record)
        app.builder.build(now)
        assert seen, "the build looked for articles come due"
        with app.engine.connect() as conn:
            plans = [conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {q}", p).all() for q, p in seen]
    for plan in plans:
        assert any("articles_not_live" in str(row) for row in plan), plan
