"""State databases for tests: a SQLite file, or a fresh PostgreSQL database per test.

``NEWSBOT_TEST_POSTGRES_URL`` names a PostgreSQL server (``./dev test`` starts
one with ``tests/setup/postgres.sh``); each test gets a database of its own,
created from that URL and dropped afterwards, so tests never see each
other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "NEWSBOT_TEST_POSTGRES_URL"


def postgres_server() -> str:
    """The test server's URL; skips the test without one, fails it on CI."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: CI must run the PostgreSQL tests")
        pytest.skip(f"{POSTGRES_ENV} is not set (tests/setup/postgres.sh starts a server)")
    return url


@contextmanager
def fresh_postgres_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server``; its URL. Dropped on exit, connections or not."""
    name = "newsbot_test_" + secrets.token_hex(6)
    admin_url = make_url(server).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
