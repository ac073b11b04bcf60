"""The service's builds: each in a new interpreter, while the service's threads use the
database, with the build lease kept by the service meanwhile."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from newsbot.app import App
from newsbot.service.runner import Service
from newsbot.settings import Settings
from newsbot.state.leases import Leases
from support.stores import make_settings, opened

SAMPLE = Path(__file__).resolve().parents[1] / "content"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NEW = """---
id: harbour
title: Harbour reopens after the storm
date: 2025-12-31 08:00
---
Boats are back in the harbour after the storm closed it for a week.
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    content = tmp_path / "content"
    shutil.copytree(SAMPLE, content)
    settings: Settings = make_settings(tmp_path, content)
    with opened(settings) as app:
        yield app


def test_builds_run_while_another_thread_writes_to_the_database(app: App) -> None:
    """A thread of the service inside SQLite while a build starts: the build's process is
    a new interpreter, so it inherits no lock that thread holds (a fork once hung in
    ``sqlite3.connect``), and the thread's writes and the build's both go through."""
    stop = threading.Event()
    writes = 0

    def write() -> None:
        nonlocal writes
        leases = Leases(app.engine, "another thread")
        while not stop.is_set():
            leases.acquire("other", datetime.now(UTC), timedelta(minutes=1))
            writes += 1

    writer = threading.Thread(target=write)
    writer.start()
    service = Service(app, clock=lambda: NOW)
    try:
        first = service.build()
        (app.settings.store.content_dir / "harbour.md").write_text(NEW, encoding="utf-8")
        second = service.build()
        third = service.build()
    finally:
        stop.set()
        writer.join()
        service.http.close()
    assert first is not None and first.read > 30
    assert second is not None and second.read == 1
    assert third is not None and third.read == 0
    assert "Harbour reopens after the storm" in (app.output.root / "rss.xml").read_text()
    assert writes > 0


class _Lease:
    """A build lease whose renewals answer from a table: True, False, or an error."""

    def __init__(self, answers: list[bool | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    def keep(self) -> bool:
        answer = self.answers[self.calls]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_the_lease_keeper_tries_again_after_an_error_and_says_once_that_it_ran_out(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service(app, clock=lambda: NOW)
    busy = OperationalError("UPDATE leases", {}, Exception("database is locked"))
    lease = _Lease([True, busy, True, False])
    service._build_lease = lease  # type: ignore[assignment]
    keep = service._lease_keeper()
    with caplog.at_level(logging.WARNING, logger="newsbot.service.runner"):
        for _ in range(6):
            keep()
    service.http.close()
    assert lease.calls == 4  # not asked again once lost
    assert [r.getMessage() for r in caplog.records] == [
        "the build lease not renewed (OperationalError); trying again",
        "the build lease ran out; another process may build at the same time",
    ]


def test_a_revision_date_to_come_is_shown_by_the_first_build_after_it(app: App) -> None:
    """The service builds on its schedule with its clock: a build before an article's
    ``updated`` gives its date in the feeds and on its page; the first build after it
    gives the revision date, as it makes a scheduled article appear."""
    revised = NEW.replace(
        "date: 2025-12-31 08:00", "date: 2025-12-31 08:00\nupdated: 2026-01-01 12:00"
    )
    (app.settings.store.content_dir / "harbour.md").write_text(revised, encoding="utf-8")
    clock = [NOW]
    service = Service(app, clock=lambda: clock[0])
    out = app.output.root
    shown = "2026-01-01T12:00:00+00:00"
    try:
        first = service.build()
        assert shown not in (out / "atom.xml").read_text(encoding="utf-8")
        assert shown not in (out / "articles/harbour/index.html").read_text(encoding="utf-8")
        clock[0] = NOW + timedelta(hours=11)
        second = service.build()
        clock[0] = NOW + timedelta(hours=12, seconds=1)
        third = service.build()
    finally:
        service.http.close()
    assert first is not None and second is not None and third is not None
    assert (second.read, second.feeds_written, second.pages_written) == (0, 0, 0)
    assert third.read == 0 and third.feeds_written > 0
    assert f"<updated>{shown}</updated>" in (out / "atom.xml").read_text(encoding="utf-8")
    page = (out / "articles/harbour/index.html").read_text(encoding="utf-8")
    assert f'content="{shown}"' in page
