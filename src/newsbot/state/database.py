"""Opening the state database and bringing its schema up to date.

SQLite files get WAL journaling (readers never block the writer) and a busy
timeout; PostgreSQL is used as it is. Migrations run at every start, under
Alembic's version table, so an old database upgrades itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine as Engine  # the handle the layers above pass around, unopened
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from newsbot.errors import NewsbotError
from newsbot.forked import Child, ChildEnded
from newsbot.settings import StateSettings

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x6E657773626F74  # "newsbot": the advisory lock key of schema upgrades
HEAD = "0019"
"""The newest revision in ``migrations/versions`` (a test checks it against Alembic's head)."""


IN_LIST = 900
"""Bound parameters per ``IN`` list: under SQLite's oldest limit (999), fine for PostgreSQL."""

_Item = TypeVar("_Item")


def chunks(items: Iterable[_Item], size: int = IN_LIST) -> Iterator[list[_Item]]:
    """``items`` in lists of at most ``size``, in order: one query each keeps every
    statement under the database's limit of bound parameters."""
    ordered = list(items)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


class DatabaseError(NewsbotError):
    """The state database cannot be opened or upgraded."""


def database_url(state: StateSettings) -> str:
    """The URL of ``state``, with its separate password set in (a SQLite file in the data folder
    when no URL is given)."""
    if state.database_url is None:
        return f"sqlite:///{state.sqlite_file}"
    url = state.database_url.get_secret_value()
    if state.database_password is None:
        return url
    password = state.database_password.get_secret_value()
    return _parse(url).set(password=password).render_as_string(hide_password=False)


def shown_url(state: StateSettings) -> str:
    """The state database as logs may show it: the SQLite file, or the URL without its password."""
    if state.database_url is None:
        return str(state.sqlite_file)
    try:
        return _parse(state.database_url.get_secret_value()).render_as_string(hide_password=True)
    except DatabaseError:
        return "state.database_url (not a valid URL)"


def _parse(url: str) -> URL:
    """``url`` parsed; a malformed one is refused without a word of it.

    SQLAlchemy's own errors quote the URL or a part of it: with the host
    forgotten (``postgresql://user:password/db``) the password is read as the
    port, and the error shows it.
    """
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseError("state.database_url is not a valid database URL") from None


def open_database(url: str) -> Engine:
    """An engine on ``url`` with the schema at the newest version."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = _engine(parsed)
    try:
        migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        where = parsed.render_as_string(hide_password=True)
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseError(
            f"cannot open the state database {where}: {reason}{_hint(parsed)}"
        ) from None
    return engine


def _hint(url: URL) -> str:
    """What to do when a SQLite file cannot be opened because its folder is not writable.

    SQLite says only "unable to open database file"; the usual cause is a data
    folder the service's user cannot write to (a volume owned by root, say).
    SQLite writes its journal beside the file, so the folder must be writable.
    """
    if url.get_backend_name() != "sqlite" or not url.database:
        return ""
    folder = Path(url.database).parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f" (the folder {folder} is not writable: let the service's user write to it, "
            "or set state.data_dir to a folder it can write to)"
        )
    return ""


def failure_of(exc: BaseException) -> str | None:
    """What went wrong, in one line, when ``exc`` is the database's own error; else None.

    A command ends with this line rather than a traceback: the traceback
    quotes the SQL and its parameters, and says nothing an operator can act on.
    """
    if not isinstance(exc, SQLAlchemyError):
        return None
    reason = " ".join(str(getattr(exc, "orig", None) or type(exc).__name__).split())
    if "readonly database" in reason:  # SQLite: the file, or its -wal or -shm beside it
        return (
            f"the state database cannot be written ({reason}): check the owner and permissions "
            "of the database file and of its -wal and -shm files"
        )
    return f"the state database failed: {reason}"


def _engine(url: URL) -> Engine:
    try:
        engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseError(f"cannot use the state database: {type(exc).__name__}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision (a no-op when it is there).

    On PostgreSQL, processes that start together on one database take turns
    (an advisory lock held until the upgrade commits): two upgrades at once
    would both create the same tables, and one of them would fail.
    """
    if current_revision(engine) == HEAD:
        return  # the usual case: no need to load Alembic (a third of a second per start)
    # Alembic and the migrations' modules stay loaded in the process that ran
    # them (~10 MB): a long-running service would keep them until its restart.
    # The child opens its own engine on the same URL (password included: it
    # travels through a pipe, never a command line).
    url = engine.url.render_as_string(hide_password=False)
    try:
        upgrade: Child[None] = Child("schema upgrade")
        upgrade.run(partial(_upgrade, url))
    except ChildEnded as exc:
        raise DatabaseError(f"cannot upgrade the state database: {exc}") from None


def _upgrade(url: str) -> None:
    """In a child: the schema of the database at ``url`` brought to the newest revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = _engine(make_url(url))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision Alembic recorded, or None for a new (or foreign) database."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
