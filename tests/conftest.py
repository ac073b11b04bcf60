"""Shared fixtures, and the hypothesis profiles.

Property tests run ``ci`` (bounded, for every ``./dev test``) unless
``HYPOTHESIS_PROFILE`` names another: ``long`` runs fifty times as many
examples, to be started by hand when the readers or renderers change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings

from support.databases import fresh_postgres_database, postgres_server
from support.fakemastodon import FakeMastodon
from support.stores import without_newsbot_environment

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]
_NO_EXPLAIN = [phase for phase in Phase if phase is not Phase.explain]
"""Hypothesis's explain phase traces every line of the shrunk example again: on the
composer it outlasted the test timeout, and a real failure showed as a timeout."""
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=_SLOW_IS_FINE,
    phases=_NO_EXPLAIN,
)  # fmt: skip
settings.register_profile(
    "long", max_examples=5_000, deadline=None, suppress_health_check=_SLOW_IS_FINE,
    phases=_NO_EXPLAIN,
)  # fmt: skip
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _cache_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Commands the tests run leave what they cache (`newsbot.quiet`'s tickets) in a folder
    of the run, never in the user's own cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    """A fresh fake Mastodon server on loopback (``.base_url``, ``.token``, ``.statuses``)."""
    with FakeMastodon() as server:
        yield server


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """``logs.configure`` (a command run in-process, a test of logging) sets process-wide
    loggers: each test gets them back as they were, or later tests' ``caplog`` sees nothing
    of newsbot."""
    names = ("newsbot", "newsbot.access", "apscheduler", "uvicorn", "httpx", "httpcore")
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate, logger.filters[:])
        for name in (*names, "watchfiles")
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, level, propagate, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.filters[:] = handlers, filters
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture(autouse=True)
def _no_newsbot_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no ``NEWSBOT_*`` setting of the machine they run on."""
    without_newsbot_environment(monkeypatch)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state database URL: a SQLite file, then a fresh PostgreSQL database (dropped after).

    The PostgreSQL case is skipped without ``NEWSBOT_TEST_POSTGRES_URL``, and
    fails instead when ``CI`` is set.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with fresh_postgres_database(postgres_server()) as url:
        yield url
