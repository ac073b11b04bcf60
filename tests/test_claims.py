"""Who owns an id or a page: a live article before a draft, a scheduled or a withdrawn
one; among live articles the one live first; pages compared as file systems that
ignore case compare them.

Each test builds a store with the real `Builder` on a real SQLite file, changes
it, builds again, and reads the output folder and the problems; `check` must
predict what the build does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsbot.build.builder import BuildReport
from newsbot.build.check import check_store
from newsbot.errors import Problem
from newsbot.settings import Settings
from support.posting import write_article
from support.stores import BASE_URL, ID_PREFIX, make_settings, opened, rss_items

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
PAGE = BASE_URL + "articles/cafe/"


class Desk:
    """A store, its settings, and builds of it at given moments."""

    def __init__(self, tmp: Path) -> None:
        self.content = tmp / "content"
        self.settings: Settings = make_settings(tmp, self.content)
        self.out = self.settings.feeds.output_dir

    def write(self, path: str, title: str, published: datetime, **fields: Any) -> None:
        write_article(self.content, path, title, published, **fields)

    def build(self, now: datetime = NOW) -> BuildReport:
        with opened(self.settings) as app:
            return app.builder.build(now)

    def check(self, now: datetime = NOW) -> list[Problem]:
        with opened(self.settings) as app:
            return check_store(self.settings, app.index, now)

    def page(self, name: str = "cafe") -> str:
        return (self.out / "articles" / name / "index.html").read_text(encoding="utf-8")

    def titles(self) -> dict[str, str]:
        return {i.guid.removeprefix(ID_PREFIX): i.title for i in rss_items(self.out / "rss.xml")}


def _where(problems: list[Problem]) -> list[tuple[str, str | None, str]]:
    return [(p.path, p.field, p.message) for p in problems]


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


# A draft and a live article that want one page: the same id, or two ids of one page.
RIVALS = [
    pytest.param("cafe", "id 'cafe' is already used by live.md; left out", id="one-id"),
    pytest.param("Cafe", f"its page {PAGE} is already that of live.md; left out", id="one-page"),
]


@pytest.mark.parametrize(("draft_id", "message"), RIVALS)
def test_a_draft_stored_first_keeps_no_live_article_off_its_page(
    desk: Desk, draft_id: str, message: str
) -> None:
    """The draft was in the store first; the published story still gets its page, item
    and id, and the draft is the one told why it is left out."""
    desk.write("draft.md", "Draft in progress", NOW - timedelta(days=2), id=draft_id, draft=True)
    desk.build(NOW - timedelta(days=1))
    desk.write("live.md", "Published story", NOW - timedelta(hours=1), id="cafe")
    report = desk.build()
    assert "Published story" in desk.page()
    assert desk.titles() == {"cafe": "Published story"}
    assert _where(report.problems) == [("draft.md", "id", message)]
    assert _where(desk.check()) == _where(report.problems)


@pytest.mark.parametrize(("draft_id", "message"), RIVALS)
def test_a_draft_that_goes_live_does_not_take_the_page_of_a_published_one(
    desk: Desk, draft_id: str, message: str
) -> None:
    desk.write("draft.md", "Draft in progress", NOW - timedelta(days=2), id=draft_id, draft=True)
    desk.write("live.md", "Published story", NOW - timedelta(hours=1), id="cafe")
    desk.build()
    desk.write("draft.md", "Draft now out", NOW - timedelta(days=2), id=draft_id)
    with opened(desk.settings) as app:  # check before the build predicts it
        before = _where(check_store(desk.settings, app.index, NOW))
    report = desk.build()
    assert "Published story" in desk.page()
    assert desk.titles() == {"cafe": "Published story"}
    assert before == _where(report.problems) == [("draft.md", "id", message)]


def test_a_scheduled_article_neither_blocks_nor_takes_a_page(desk: Desk) -> None:
    """Stored first but due later: the live article owns the page meanwhile and keeps it
    when the scheduled one's time comes (no build of its file is needed for that)."""
    due = NOW + timedelta(hours=2)
    desk.write("later.md", "Scheduled story", due, id="Cafe")
    desk.build(NOW - timedelta(days=1))
    desk.write("live.md", "Published story", NOW - timedelta(hours=1), id="cafe")
    taken = [("later.md", "id", f"its page {PAGE} is already that of live.md; left out")]
    assert _where(desk.build().problems) == taken
    assert "Published story" in desk.page()
    assert _where(desk.check(due + timedelta(minutes=1))) == taken
    report = desk.build(due + timedelta(minutes=1))
    assert _where(report.problems) == taken
    assert "Published story" in desk.page()
    assert desk.titles() == {"cafe": "Published story"}


def test_a_withdrawn_article_gives_its_page_to_a_live_one(desk: Desk) -> None:
    desk.write("old.md", "Withdrawn story", NOW - timedelta(days=2), id="Cafe", withdrawn=True)
    desk.build(NOW - timedelta(days=1))
    desk.write("live.md", "Published story", NOW - timedelta(hours=1), id="cafe")
    report = desk.build()
    assert "Published story" in desk.page()
    assert [(p.path, p.field) for p in report.problems] == [("old.md", "id")]


def test_an_article_withdrawn_after_it_was_live_keeps_its_id(desk: Desk) -> None:
    """Its posts were made, and deleted, under that id: a newer file taking the id up would
    be taken for it by every target (its post 'deleted') and never posted. It is left out
    with a problem instead, as before."""
    desk.write("old.md", "First story", NOW - timedelta(days=3), id="cafe")
    desk.build(NOW - timedelta(days=2))
    assert "First story" in desk.page()
    desk.write("old.md", "First story", NOW - timedelta(days=3), id="cafe", withdrawn=True)
    desk.build(NOW - timedelta(days=1))
    desk.write("new.md", "Another story", NOW - timedelta(hours=1), id="cafe")
    report = desk.build()
    assert [(p.path, p.field) for p in report.problems] == [("new.md", "id")]
    assert desk.titles() == {}
    assert [(p.path, p.field) for p in desk.check()] == [("new.md", "id")]


def test_the_first_of_two_live_articles_keeps_its_page_as_before(desk: Desk) -> None:
    """Among live articles nothing changes: the one stored (live) first keeps the page,
    edits included; the other takes it over when the owner goes."""
    desk.write("b.md", "First live", NOW - timedelta(days=2), id="Cafe")
    desk.build(NOW - timedelta(days=1))
    desk.write("a.md", "Second live", NOW - timedelta(hours=1), id="cafe")
    desk.build()
    desk.write("b.md", "First live, edited", NOW - timedelta(days=2), id="Cafe")
    report = desk.build()
    assert "First live, edited" in desk.page()
    assert [(p.path, p.field) for p in report.problems] == [("a.md", "id")]
    (desk.content / "b.md").unlink()
    assert desk.build().problems == []
    assert "Second live" in desk.page()


# -- pages that differ only in case or normalisation ------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("articles/Cafe/", "articles/cafe/", id="case"),
        pytest.param("articles/Caf%C3%A9/", "articles/CAFE%CC%81/index.html", id="case-and-nfd"),
    ],
)
def test_pages_that_differ_only_in_case_are_one_page(desk: Desk, first: str, second: str) -> None:
    """On a file system that ignores case (macOS, Windows mounts) one page file would
    overwrite the other: the second file is left out, naming the first."""
    desk.write("a.md", "First", NOW - timedelta(hours=2), id="a", url=BASE_URL + first)
    desk.write("b.md", "Second", NOW - timedelta(hours=1), id="b", url=BASE_URL + second)
    report = desk.build()
    [(path, field, message)] = _where(report.problems)
    assert (path, field) == ("b.md", "url")
    assert message == f"its page {BASE_URL + second} is already that of a.md; left out"
    assert _where(desk.check()) == _where(report.problems)
    assert desk.titles() == {"a": "First"}
    pages = sorted(p.relative_to(desk.out).as_posix() for p in desk.out.glob("articles/*/*"))
    assert len(pages) == 1 and "First" in (desk.out / pages[0]).read_text(encoding="utf-8")


def test_an_edit_of_the_file_left_out_keeps_the_owners_page(desk: Desk) -> None:
    """The page the left-out file would have had is the owner's: its edit must not delete it."""
    desk.write("a.md", "Owner", NOW - timedelta(hours=2), id="Cafe")
    desk.write("b.md", "Left out", NOW - timedelta(hours=1), id="cafe")
    desk.build()
    desk.write("b.md", "Left out, edited", NOW - timedelta(hours=1), id="cafe")
    report = desk.build()
    assert [(p.path, p.field) for p in report.problems] == [("b.md", "id")]
    assert "Owner" in desk.page()
