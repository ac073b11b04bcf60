"""A ``publish --no-build`` command with nothing due answers again without loading the
command line, and only while nothing its answer was made from has changed.

Real commands (``python -m newsbot`` in a fresh interpreter), a real SQLite state and the
fake Mastodon server on loopback. Whether a command took the full path is read from
``-X importtime``: the interpreter's own list of what it imported, no hook in newsbot.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

import newsbot
from newsbot.quiet import answers
from newsbot.state.pass_marks import SERVER_RECHECK, PassMark, quiet_until, write_mark
from newsbot.state.schema import articles, deliveries, output_folders, post_related
from newsbot.state.unwritten import HOLDING_SECONDS
from newsbot.times import epoch_seconds, from_epoch
from support.fakemastodon import FakeMastodon
from support.posting import TOKEN, environment, settings_for, target, write_article
from support.stores import opened

SOURCES = str(Path(newsbot.__file__).resolve().parents[1])
"""The code under test, for commands run in another folder."""
HEAVY = {"click", "pydantic", "pydantic_settings", "sqlalchemy", "httpx"}
QUIET = ["publish", "--no-build", "--no-pacing"]
NOTHING = (
    "main: 0 posted, 0 edited, 0 deleted, 0 skipped, 0 failed, 0 to retry, "
    "0 waiting for pacing, 0 replies, 0 length errors, 0 uncertain\n"
)


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    loaded: set[str]
    """Top-level modules imported, with ``-X importtime``; empty without."""


class Room:
    """A store, its settings as environment variables, a cache folder and the fake server."""

    def __init__(self, tmp: Path, server: FakeMastodon, database_url: str | None = None) -> None:
        self.tmp = tmp
        self.content = tmp / "content"
        self.content.mkdir()
        self.server = server
        targets = {"main": target(server.base_url)}
        self.settings = settings_for(tmp, self.content, targets, database_url)
        kept = {k: v for k, v in os.environ.items() if not k.upper().startswith("NEWSBOT_")}
        self.env = {
            **kept,
            **environment(self.settings),
            "XDG_CACHE_HOME": str(tmp / "cache"),
            "PYTHONPATH": os.pathsep.join([SOURCES, *kept.get("PYTHONPATH", "").split(os.pathsep)]),
        }
        self.database = self.settings.state.sqlite_file
        self.work = tmp / "work"
        self.work.mkdir()
        """The commands' working folder, which nothing else writes: with ``python -m`` it is
        the first folder on ``sys.path``, and a file added there changes what is imported."""

    def write(self, path: str, title: str, published: datetime) -> None:
        write_article(self.content, path, title, published)

    def run(self, *args: str, watch: bool = False, **env: str) -> Ran:
        flags = ["-X", "importtime"] if watch else []
        done = subprocess.run(
            [sys.executable, *flags, "-m", "newsbot", *args],
            env={**self.env, **env}, cwd=self.work, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        loaded = set()
        lines = []
        for line in done.stderr.splitlines():
            if line.startswith("import time:"):
                loaded.add(line.rsplit("|", 1)[1].strip().split(".")[0])
            else:
                lines.append(line)
        return Ran(done.returncode, done.stdout, "\n".join(lines), loaded)

    def tickets(self) -> list[Path]:
        return sorted((self.tmp / "cache" / "newsbot" / "quiet").glob("*.json"))

    def recorded(self, *args: str) -> Ran:
        """A full command with nothing due, which leaves a ticket (a first one after the
        store changed makes a real pass, which leaves the database's pass mark)."""
        for _ in range(2):
            before = {path: path.stat().st_mtime_ns for path in self.tickets()}
            ran = self.run(*(args or QUIET))
            assert (ran.code, ran.stdout, ran.stderr) == (0, NOTHING, "")
            if {path: path.stat().st_mtime_ns for path in self.tickets()} != before:
                return ran
            time.sleep(0.05)  # past the file system clock's tick of the pass's write
        raise AssertionError("no ticket")

    def recalled(self, *args: str, **env: str) -> bool:
        """Whether the command gave its answer without loading the command line."""
        ran = self.run(*(args or QUIET), watch=True, **env)
        return not ran.loaded & HEAVY


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    """A room whose one article is posted: the next command has nothing due."""
    with FakeMastodon(token=TOKEN) as server:
        room = Room(tmp_path, server)
        room.write("a.md", "Harbour reopens", datetime.now(UTC) - timedelta(hours=2))
        posted = room.run("publish", "--no-pacing")
        assert posted.code == 0 and "main: 1 posted" in posted.stdout
        time.sleep(0.05)  # past the file system clock's tick of the last write (newsbot.quiet)
        yield room


def test_a_quiet_command_answers_again_without_loading_the_command_line(room: Room) -> None:
    """The old code loaded click, pydantic-settings and SQLAlchemy for every command."""
    full = room.recorded()
    asked = len(room.server.requests)

    again = room.run(*QUIET, watch=True)

    assert (again.code, again.stdout, again.stderr) == (full.code, full.stdout, full.stderr)
    assert not again.loaded & HEAVY
    assert "newsbot" in again.loaded
    assert len(room.server.requests) == asked
    [ticket] = room.tickets()
    assert stat.S_IMODE(ticket.stat().st_mode) == 0o600
    assert TOKEN not in ticket.read_text(encoding="utf-8")


def test_an_environment_change_takes_the_full_command(room: Room) -> None:
    room.recorded()
    assert not room.recalled(NEWSBOT_TARGETS__MAIN__ENABLED="false", NEWSBOT_LOG__LEVEL="ERROR")
    assert not room.recalled(UNRELATED="1")  # any variable: what matters is not guessed
    assert room.recalled()


def test_a_config_file_edit_takes_the_full_command(room: Room) -> None:
    config = room.tmp / "newsbot.toml"
    config.write_text('[log]\nlevel = "INFO"\n', encoding="utf-8")
    args = ["--config", str(config), *QUIET]
    room.recorded(*args)
    assert room.recalled(*args)

    config.write_text("[targets.main]\nenabled = false\n", encoding="utf-8")
    ran = room.run(*args)
    assert ran.code == 2 and "no target configured" in ran.stderr


def test_a_token_file_changed_or_gone_takes_the_full_command(room: Room) -> None:
    token = room.tmp / "token"
    token.write_text(TOKEN, encoding="utf-8")
    env = {"NEWSBOT_TARGETS__MAIN__TOKEN": "", "NEWSBOT_TARGETS__MAIN__TOKEN_FILE": str(token)}
    room.env = {k: v for k, v in {**room.env, **env}.items() if v}
    room.recorded()
    assert room.recalled()

    token.write_text("tok-another-one", encoding="utf-8")
    assert not room.recalled()
    token.unlink()
    ran = room.run(*QUIET)
    assert ran.code == 2 and "token_file" in ran.stderr


def test_a_new_article_built_into_the_state_takes_the_full_command(room: Room) -> None:
    room.recorded()
    room.write("b.md", "Ferry strike ends", datetime.now(UTC) - timedelta(minutes=5))
    assert room.run("build").code == 0

    ran = room.run(*QUIET, watch=True)

    assert ran.loaded & HEAVY
    assert "main: 1 posted" in ran.stdout


def test_an_article_scheduled_to_appear_takes_the_full_command_once_it_is_due(
    room: Room,
) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    room.write("later.md", "Bridge opens", soon)
    assert room.run("build").code == 0
    room.recorded()
    assert room.recalled()
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)

    ran = room.run(*QUIET, watch=True)

    assert ran.loaded & HEAVY
    assert "main: 1 posted" in ran.stdout


def test_a_write_to_the_state_kept_open_elsewhere_takes_the_full_command(room: Room) -> None:
    """Another process (the service) holds the database open: its WAL stays. A commit grows
    the WAL; after a checkpoint, the next commit writes the WAL from its start again, to
    the same size: its times still tell."""
    held = sqlite3.connect(room.database)
    try:
        held.execute("INSERT INTO meta (key, value) VALUES ('test', 'aaaa')")
        held.commit()
        time.sleep(0.05)
        room.recorded()
        assert room.recalled()
        held.execute("UPDATE meta SET value = 'bbbb' WHERE key = 'test'")
        held.commit()
        assert not room.recalled()

        held.execute("PRAGMA wal_checkpoint(PASSIVE)")
        wal = Path(f"{room.database}-wal")
        size = wal.stat().st_size
        time.sleep(0.05)
        room.recorded()
        assert room.recalled()
        held.execute("UPDATE meta SET value = 'cccc' WHERE key = 'test'")
        held.commit()
        assert wal.stat().st_size == size  # the WAL was restarted: only its times changed
        assert not room.recalled()
    finally:
        held.close()


def test_a_state_named_by_url_takes_the_full_command_every_time(
    tmp_path: Path, database_url: str
) -> None:
    """PostgreSQL has no file whose identity tells a write (and a SQLite URL is not looked
    into): no ticket is left, each command reads the database."""
    with FakeMastodon(token=TOKEN) as server:
        room = Room(tmp_path, server, database_url)
        room.write("a.md", "Harbour reopens", datetime.now(UTC) - timedelta(hours=2))
        assert "main: 1 posted" in room.run("publish", "--no-pacing").stdout
        for _ in range(2):
            ran = room.run(*QUIET, watch=True)
            assert ran.code == 0 and ran.stdout == NOTHING and ran.loaded & HEAVY
        assert room.tickets() == []


def test_a_damaged_shared_or_spent_ticket_is_not_trusted(room: Room) -> None:
    room.recorded()
    [ticket] = room.tickets()
    ticket.chmod(0o644)  # readable by others: someone else may have written it
    assert not room.recalled()
    [ticket] = room.tickets()  # the full command left a fresh one
    assert stat.S_IMODE(ticket.stat().st_mode) == 0o600
    assert room.recalled()

    text = ticket.read_text(encoding="utf-8")
    ticket.write_text(text[: len(text) // 2], encoding="utf-8")
    assert not room.recalled()
    assert room.recalled()

    [ticket] = room.tickets()
    data = json.loads(ticket.read_text(encoding="utf-8"))
    data["until"] = epoch_seconds(datetime.now(UTC)) - 1  # its time has passed
    ticket.write_text(json.dumps(data), encoding="utf-8")
    assert not room.recalled()


def test_only_a_publish_without_build_is_answered() -> None:
    assert answers(["publish", "--no-build"])
    assert answers(["-c", "publish", "publish", "--no-build", "-t", "main", "--no-pacing"])
    assert answers(["--config=x.toml", "publish", "--target=a", "--no-build", "-tb"])
    for argv in (
        [],
        ["publish"],
        ["publish", "--no-pacing"],
        ["publish", "--no-build", "--dry-run"],
        ["publish", "--no-build", "--verbose"],
        ["publish", "--no-build", "--target"],
        ["publish", "--no-build", "--help"],
        ["--config", "publish", "--no-build"],
        ["--version", "publish", "--no-build"],
        ["build", "--no-build"],
    ):
        assert not answers(argv), argv


def test_a_quiet_answer_holds_until_the_first_moment_something_can_come_due(
    tmp_path: Path,
) -> None:
    """Each value `nothing_due` compares with the clock bounds how long the answer holds."""
    settings = settings_for(tmp_path, tmp_path / "content", {})
    now = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    started = now - timedelta(minutes=10)
    with opened(settings) as app:
        with app.engine.begin() as conn:
            write_mark(conn, "main", PassMark("1", started, "x"))
        assert quiet_until(app.engine, ["main"], now) == started + SERVER_RECHECK
        assert quiet_until(app.engine, ["main", "other"], now) == now  # no mark: no answer

        def bound_by(table: object, **values: object) -> datetime:
            with app.engine.begin() as conn:
                conn.execute(insert(table).values(**values))  # type: ignore[arg-type]
            return quiet_until(app.engine, ["main"], now)

        in_40 = epoch_seconds(now + timedelta(minutes=40))
        assert bound_by(output_folders, folder="f", built=in_40 - HOLDING_SECONDS) == from_epoch(
            in_40
        )
        in_30 = epoch_seconds(now + timedelta(minutes=30))
        article = {"id": "a", "path": "a.md", "data": "{}", "html": "", "published": in_30}
        assert bound_by(articles, **_article(app.engine, article)) == from_epoch(in_30)
        in_20 = epoch_seconds(now + timedelta(minutes=20))
        reply = {"target": "other", "article_id": "a", "links": "[]", "editors": "[]",
                 "in_reply": True, "reply_state": "retry", "next_try": in_20}  # fmt: skip
        assert bound_by(post_related, **reply) == from_epoch(in_20)
        in_10 = epoch_seconds(now + timedelta(minutes=10))
        retry = {"target": "main", "article_id": "a", "state": "retry", "action": "post",
                 "revision": "r", "idempotency_key": "k", "article_url": "u",
                 "next_try": in_10}  # fmt: skip
        assert bound_by(deliveries, **retry) == from_epoch(in_10)


def _article(engine: object, values: dict[str, object]) -> dict[str, object]:
    """``values`` with every other required column of ``articles`` filled in."""
    filled = dict(values)
    for column in articles.columns:
        if column.name in filled or column.nullable or column.default is not None:
            continue
        if column.primary_key and column.autoincrement is True:
            continue
        python = column.type.python_type
        filled[column.name] = {int: 0, str: "", bool: False}.get(python, "")
    return filled
