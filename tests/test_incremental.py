"""Incremental builds: a build reads and writes what changed, and nothing else.

Each test builds a small store with the real `Builder` on a real SQLite file,
changes the store, builds again and compares. That no article file is opened
is proven by a spy on `Path.open` (what `Path.read_bytes` uses; running as
root, permissions would prove nothing) and one on the reader itself.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import newsbot.build.site
import newsbot.state.navigation
import newsbot.store.reader
from newsbot.build.builder import BuildReport
from newsbot.build.check import check_store
from newsbot.settings import Settings, StateSettings
from newsbot.state.index import StoreIndex
from newsbot.store.reader import Parsed
from support.stores import (
    ID_PREFIX,
    Written,
    changed,
    make_settings,
    opened,
    rss_items,
    snapshot,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FEED_FILES = ("rss.xml", "atom.xml", "feed.json", "index.html")


def _article(
    id: str, title: str, date: str, tags: str = "", section: str = "", body: str = "Body."
) -> str:
    lines = ["---", f"id: {id}", f"title: {title}", f"date: {date}"]
    lines += [f"tags: {tags}"] if tags else []
    lines += [f"section: {section}"] if section else []
    return "\n".join([*lines, "---", "", body, ""])


STORE = {
    "2015/calais.md": _article(
        "calais", "Calais agreement signed", "2015-08-20", "France, Migration", "Europe"
    ),
    "2016/budget.md": _article(
        "budget", "Parliament passes the budget", "2016-03-01", "Politics, Economy", "Politics"
    ),
    "2017/election.md": _article(
        "election", "Election called", "2017-05-07", "Politics", "Politics"
    ),
    "2018/storm.md": _article("storm", "Storm hits the coast", "2018-01-03", "Weather", "Europe"),
    "page.txt": """\
france 24 Europe

Scraped page headline

Text by FRANCE 24

The scraped page has a body paragraph.

Date created : 2015-09-01
""",
}
IDS = {"calais", "budget", "election", "storm", "page"}


class Newsroom:
    """A store in a temporary folder, its settings, and the build of it."""

    def __init__(self, tmp: Path) -> None:
        self.content = tmp / "content"
        self.settings = make_settings(tmp, self.content)
        self.out = self.settings.feeds.output_dir
        for rel, text in STORE.items():
            self.write(rel, text)

    def write(self, rel: str, text: str) -> None:
        """Write a store file and move its mtime a few seconds past any earlier one."""
        path = self.content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_text(text, encoding="utf-8")
        _later(path, than=before)

    def build(self, now: datetime = NOW, settings: Settings | None = None) -> BuildReport:
        with opened(settings or self.settings) as app:
            return app.builder.build(now)

    def titles(self, feed: str = "rss.xml") -> dict[str, str]:
        """Item titles of a feed by article id."""
        return {
            item.guid.removeprefix(ID_PREFIX): item.title for item in rss_items(self.out / feed)
        }

    def snapshot(self) -> dict[str, Written]:
        return snapshot(self.out)


def _later(path: Path, than: int) -> None:
    moment = max(path.stat().st_mtime_ns, than) + 5_000_000_000
    os.utime(path, ns=(moment, moment))


@pytest.fixture
def newsroom(tmp_path: Path) -> Newsroom:
    return Newsroom(tmp_path)


class Spy:
    """Counts the store files opened, by any code, and the calls of the reader."""

    def __init__(self, content: Path) -> None:
        self.content = str(content.resolve())
        self.opened: list[str] = []
        self.reads: list[str] = []

    def reset(self) -> None:
        self.opened.clear()
        self.reads.clear()


@pytest.fixture
def spy(newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch) -> Spy:
    found = Spy(newsroom.content)
    real_open = Path.open
    real_read = newsbot.store.reader.read

    def open_spy(self: Path, *args: Any, **kwargs: Any) -> Any:
        if str(self.resolve()).startswith(found.content):
            found.opened.append(self.relative_to(newsroom.content).as_posix())
        return real_open(self, *args, **kwargs)

    def os_open_spy(path: Any, *args: Any, **kwargs: Any) -> int:
        # The store's files are opened with `os.open` (no link followed, see `store.assets`).
        if isinstance(path, str | Path) and str(path).startswith(found.content + os.sep):
            found.opened.append(Path(path).relative_to(found.content).as_posix())
        return real_os_open(path, *args, **kwargs)

    def read_spy(root: Path, stat: Any, *args: Any, **kwargs: Any) -> Parsed:
        found.reads.append(stat.path)
        return real_read(root, stat, *args, **kwargs)

    real_os_open = os.open
    monkeypatch.setattr(Path, "open", open_spy)
    monkeypatch.setattr(os, "open", os_open_spy)
    monkeypatch.setattr(newsbot.store.reader, "read", read_spy)  # the build imports it late
    return found


def _feed_set(folder: str) -> set[str]:
    return {folder + name for name in FEED_FILES}


# -- reading ------------------------------------------------------------------------------


def test_a_cold_build_reads_every_file(newsroom: Newsroom, spy: Spy) -> None:
    report = newsroom.build()
    assert (report.files, report.read, report.removed) == (5, 5, 0)
    assert sorted(spy.opened) == sorted(STORE)
    assert sorted(spy.reads) == sorted(STORE)
    assert set(newsroom.titles()) == IDS
    assert report.problems == []


def test_a_rebuild_with_nothing_changed_reads_and_writes_nothing(
    newsroom: Newsroom, spy: Spy
) -> None:
    newsroom.build()
    before = newsroom.snapshot()
    spy.reset()
    report = newsroom.build()
    assert (report.files, report.read, report.removed) == (5, 0, 0)
    assert spy.opened == []
    assert spy.reads == []
    assert (report.feeds_written, report.pages_written, report.changed_feeds) == (0, 0, [])
    assert changed(before, newsroom.snapshot()) == set()


def test_a_changed_file_costs_only_itself(newsroom: Newsroom, spy: Spy) -> None:
    newsroom.build()
    before = newsroom.snapshot()
    newsroom.write(
        "2016/budget.md",
        STORE["2016/budget.md"].replace("Body.", "The vote was close: 301 to 299."),
    )
    spy.reset()
    report = newsroom.build()
    assert report.read == 1
    assert spy.opened == spy.reads == ["2016/budget.md"]
    its_feeds = _feed_set("") | _feed_set("tags/politics/") | _feed_set("tags/economy/")
    its_feeds |= _feed_set("sections/politics/")
    rewritten = changed(before, newsroom.snapshot())
    assert rewritten <= its_feeds | {"articles/budget/index.html"}
    assert {"rss.xml", "tags/economy/rss.xml", "articles/budget/index.html"} <= rewritten
    assert "tags/france/rss.xml" in before  # a feed the change must leave alone


def test_the_names_of_every_section_and_tag_are_looked_up_once_per_build(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The site's index page and the navigation files (OPML) both list every section and
    tag by name; a build looked the names up for each (hundreds of feed sets, each named
    from an article), now once, and both still show them."""
    newsroom.build()
    newsroom.write("2019/flood.md", _article("flood", "Flood", "2019-02-02", "Weather", "Europe"))
    calls: list[int] = []
    real = newsbot.state.navigation.feed_names

    def counted(conn: Any, keys: Any) -> dict[tuple[str, str], str]:
        calls.append(1)
        return real(conn, keys)

    monkeypatch.setattr(newsbot.state.navigation, "feed_names", counted)
    monkeypatch.setattr(newsbot.build.site, "feed_names", counted, raising=False)
    newsroom.build()
    assert len(calls) == 1
    assert ">Weather<" in (newsroom.out / "index.html").read_text(encoding="utf-8")
    assert ': Weather"' in (newsroom.out / "feeds.opml").read_text(encoding="utf-8")
    newsroom.build()  # nothing changed: nothing listed
    assert len(calls) == 1


def test_a_touched_but_identical_file_changes_no_output(newsroom: Newsroom, spy: Spy) -> None:
    newsroom.build()
    before = newsroom.snapshot()
    path = newsroom.content / "2016/budget.md"
    _later(path, than=path.stat().st_mtime_ns)
    spy.reset()
    report = newsroom.build()
    assert report.read == 1  # the stat changed: it is hashed, found identical
    assert (report.feeds_written, report.pages_written, report.changed_feeds) == (0, 0, [])
    assert changed(before, newsroom.snapshot()) == set()
    spy.reset()
    assert newsroom.build().read == 0  # the new stat was remembered
    assert spy.opened == []


def test_a_removed_file_leaves_the_feeds_and_its_page_is_deleted(newsroom: Newsroom) -> None:
    newsroom.build()
    assert (newsroom.out / "articles/budget/index.html").is_file()
    (newsroom.content / "2016/budget.md").unlink()
    report = newsroom.build()
    assert (report.files, report.read, report.removed) == (4, 0, 1)
    assert "budget" not in newsroom.titles()
    assert "budget" not in newsroom.titles("tags/politics/rss.xml")
    assert not (newsroom.out / "articles/budget/index.html").exists()
    assert not (newsroom.out / "tags/economy/rss.xml").exists()  # its only article is gone
    assert set(newsroom.titles()) == IDS - {"budget"}


# -- ids used twice -----------------------------------------------------------------------

COPY = _article("calais", "A copy that wants the Calais id", "2019-01-01")


def _page_title(newsroom: Newsroom, article_id: str) -> str:
    page = (newsroom.out / "articles" / article_id / "index.html").read_text(encoding="utf-8")
    return page.split("<title>", 1)[1].split("</title>", 1)[0]


def _dup_problems(report_or_list: BuildReport | list[Any]) -> list[tuple[str, str]]:
    problems = (
        report_or_list.problems if isinstance(report_or_list, BuildReport) else report_or_list
    )
    return [(p.path, p.message) for p in problems if p.field == "id"]


def test_a_new_file_does_not_steal_the_id_of_an_older_one(newsroom: Newsroom) -> None:
    newsroom.build()
    newsroom.write("0000-copy.md", COPY)  # sorts before the owner: age decides, not the path
    report = newsroom.build()
    assert newsroom.titles()["calais"] == "Calais agreement signed"
    assert "Calais agreement signed" in _page_title(newsroom, "calais")
    assert _dup_problems(report) == [
        ("0000-copy.md", "id 'calais' is already used by 2015/calais.md; left out")
    ]


def test_an_edited_owner_keeps_its_id(newsroom: Newsroom) -> None:
    newsroom.build()
    newsroom.write("0000-copy.md", COPY)
    newsroom.build()
    newsroom.write("2015/calais.md", STORE["2015/calais.md"].replace("signed", "signed at last"))
    report = newsroom.build()
    assert newsroom.titles()["calais"] == "Calais agreement signed at last"
    assert "signed at last" in _page_title(newsroom, "calais")
    assert _dup_problems(report) == [
        ("0000-copy.md", "id 'calais' is already used by 2015/calais.md; left out")
    ]
    with opened(newsroom.settings) as app:  # `check` agrees with the build
        assert _dup_problems(check_store(newsroom.settings, app.index)) == _dup_problems(report)


def test_check_before_the_build_names_the_same_owner(newsroom: Newsroom) -> None:
    newsroom.build()
    newsroom.write("0000-copy.md", COPY)
    newsroom.build()
    newsroom.write("2015/calais.md", STORE["2015/calais.md"].replace("signed", "signed at last"))
    with opened(newsroom.settings) as app:  # the edit is not built yet: check reads it
        before = _dup_problems(check_store(newsroom.settings, app.index))
    assert before == _dup_problems(newsroom.build())
    assert before == [("0000-copy.md", "id 'calais' is already used by 2015/calais.md; left out")]


def test_the_copy_takes_the_id_and_the_page_when_the_owner_goes(newsroom: Newsroom) -> None:
    newsroom.build()
    newsroom.write("0000-copy.md", COPY)
    newsroom.build()
    (newsroom.content / "2015/calais.md").unlink()
    report = newsroom.build()
    assert newsroom.titles()["calais"] == "A copy that wants the Calais id"
    assert "A copy that wants the Calais id" in _page_title(newsroom, "calais")
    assert _dup_problems(report) == []


# -- pages claimed twice ------------------------------------------------------------------

# Another id, one page: ``Calais`` makes the slug ``calais`` too.
SAME_PAGE = _article("Calais", "A copy whose id makes the Calais page", "2019-01-01")
CALAIS_URL = "https://news.example.org/articles/calais/"
TAKEN = "its page https://news.example.org/articles/calais/ is already that of 2015/calais.md"


def _with_url(text: str, url: str) -> str:
    """``text`` (see `_article`) with a ``url`` in its front matter."""
    return text.replace("\n---\n\n", f"\nurl: {url}\n---\n\n", 1)


def _page_problems(report_or_list: BuildReport | list[Any]) -> list[tuple[str, str | None, str]]:
    problems = (
        report_or_list.problems if isinstance(report_or_list, BuildReport) else report_or_list
    )
    return [(p.path, p.field, p.message) for p in problems if "its page" in p.message]


def test_a_new_file_does_not_take_the_page_of_an_older_one(newsroom: Newsroom) -> None:
    newsroom.build()
    newsroom.write("0000-copy.md", SAME_PAGE)  # sorts before the owner: age decides
    report = newsroom.build()
    assert "Calais agreement signed" in _page_title(newsroom, "calais")
    titles = newsroom.titles()
    assert titles["calais"] == "Calais agreement signed" and "Calais" not in titles
    assert _page_problems(report) == [("0000-copy.md", "id", TAKEN + "; left out")]
    with opened(newsroom.settings) as app:  # `check` agrees with the build
        assert _page_problems(check_store(newsroom.settings, app.index)) == _page_problems(report)


def test_a_url_that_names_another_page_is_left_out(newsroom: Newsroom) -> None:
    newsroom.build()
    text = _article("copy", "A copy linked to the Calais page", "2019-01-01")
    newsroom.write("0000-copy.md", _with_url(text, CALAIS_URL))
    with opened(newsroom.settings) as app:  # check before the build names the same owner
        before = _page_problems(check_store(newsroom.settings, app.index))
    report = newsroom.build()
    assert before == _page_problems(report) == [("0000-copy.md", "url", TAKEN + "; left out")]
    assert "Calais agreement signed" in _page_title(newsroom, "calais")
    assert "copy" not in newsroom.titles()


def test_the_copy_takes_the_page_when_the_owner_goes(newsroom: Newsroom) -> None:
    newsroom.build()
    newsroom.write("0000-copy.md", SAME_PAGE)
    newsroom.build()
    (newsroom.content / "2015/calais.md").unlink()
    report = newsroom.build()
    assert "A copy whose id makes the Calais page" in _page_title(newsroom, "calais")
    assert newsroom.titles()["Calais"] == "A copy whose id makes the Calais page"
    assert _page_problems(report) == []


def test_a_file_left_out_for_its_id_claims_no_page(newsroom: Newsroom) -> None:
    """Only a file that owns its id claims a page: one left out writes none, so it keeps
    no other file from its page."""
    newsroom.build()
    page = "https://news.example.org/articles/p/"
    newsroom.write("a.md", _with_url(_article("storm", "Loses its id", "2019-01-01"), page))
    newsroom.write("b.md", _with_url(_article("other", "Owns the page", "2019-01-02"), page))
    report = newsroom.build()
    assert [(p.path, p.field) for p in report.problems] == [("a.md", "id")]
    assert "Owns the page" in _page_title(newsroom, "p")
    assert newsroom.titles()["other"] == "Owns the page"


# -- settings and time --------------------------------------------------------------------


def test_a_new_base_url_rebuilds_everything(newsroom: Newsroom, tmp_path: Path) -> None:
    newsroom.build()
    before = newsroom.snapshot()
    moved = make_settings(tmp_path, newsroom.content, base_url="https://moved.example.net/news/")
    report = newsroom.build(settings=moved)
    assert report.read == report.files == 5
    links = [item.link for item in rss_items(newsroom.out / "rss.xml")]
    assert len(links) == 5
    assert all(link.startswith("https://moved.example.net/news/") for link in links)
    after = newsroom.snapshot()
    feeds_and_pages = {name for name in before if name.endswith((".xml", ".json", ".html"))}
    assert feeds_and_pages <= changed(before, after)


def test_a_full_build_keeps_who_owns_an_id(newsroom: Newsroom, tmp_path: Path) -> None:
    """A full build (new settings, or new code after an upgrade) reads every file again,
    but the file stored first keeps its id: the copy does not take it by sorting first."""
    newsroom.build()
    newsroom.write("0000-copy.md", COPY)
    newsroom.build()
    other = make_settings(tmp_path, newsroom.content, max_file_bytes=100_000)
    with opened(other) as app:  # `check` predicts the same owner
        before = _dup_problems(check_store(other, app.index))
    report = newsroom.build(settings=other)
    assert report.read == report.files == 6
    assert newsroom.titles()["calais"] == "Calais agreement signed"
    assert (
        before
        == _dup_problems(report)
        == [("0000-copy.md", "id 'calais' is already used by 2015/calais.md; left out")]
    )


def test_a_full_build_keeps_an_article_the_new_rules_refuse_published(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    """A published article the new settings or code cannot read stays as last read, as after
    a broken edit: its post is not deleted as withdrawn; a problem says why."""
    newsroom.write("2016/budget.md", STORE["2016/budget.md"].replace("Body.", "Body " * 80))
    newsroom.build()
    stricter = make_settings(tmp_path, newsroom.content, max_file_bytes=300)
    report = newsroom.build(settings=stricter)
    assert set(newsroom.titles()) == IDS
    messages = [p.message for p in report.problems if p.path == "2016/budget.md"]
    assert any("over the 300 limit" in m for m in messages)
    assert any("last readable version stays published" in m for m in messages)
    stats, vectors = _terms(stricter)
    assert ("", 5) in stats  # the article kept as last read is indexed again
    assert any(path == "2016/budget.md" for _, path, _ in vectors)


def _terms(settings: Settings) -> tuple[list[Any], list[Any]]:
    """The term index of a state file: document frequencies, and each article's vector."""
    with sqlite3.connect(settings.state.sqlite_file) as db:
        stats = db.execute("SELECT term, df FROM term_stats WHERE df > 0 ORDER BY term").fetchall()
        vectors = db.execute(
            "SELECT term, path, round(weight, 9) FROM article_terms ORDER BY term, path"
        ).fetchall()
    return stats, vectors


def test_a_full_build_makes_the_term_index_a_cold_build_makes(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    """The term index is made again, not amended: the code that counted the stored terms
    may not be the code running (an upgrade), and amending it cost most of the build."""
    newsroom.build()
    newsroom.write("2018/storm.md", STORE["2018/storm.md"].replace("Body.", "Storm body words."))
    newsroom.build()
    with sqlite3.connect(newsroom.settings.state.sqlite_file) as db:  # counted by other code
        db.execute("UPDATE term_stats SET df = df + 7")
        db.execute("INSERT INTO article_terms VALUES ('oldtoken', '2016/budget.md', 0.5)")
    other = make_settings(tmp_path, newsroom.content, max_file_bytes=100_000)
    newsroom.build(settings=other)
    cold = make_settings(tmp_path / "cold", newsroom.content, max_file_bytes=100_000)
    newsroom.build(settings=cold)
    stats, vectors = _terms(other)
    assert (stats, vectors) == _terms(cold)
    assert ("", 5) in stats  # every article counted once


def test_check_does_not_trust_an_index_built_with_other_settings(
    newsroom: Newsroom, tmp_path: Path
) -> None:
    newsroom.build()
    stricter = make_settings(tmp_path, newsroom.content, max_file_bytes=50)
    with opened(stricter) as app:
        problems = check_store(stricter, app.index)
    assert sorted(p.path for p in problems if "over the 50 limit" in p.message) == sorted(STORE)


def test_a_future_article_appears_once_its_date_has_passed(newsroom: Newsroom, spy: Spy) -> None:
    newsroom.write(
        "2030/future.md", _article("future", "News from the future", "2030-01-01T08:00:00Z")
    )
    report = newsroom.build(now=datetime(2029, 12, 31, tzinfo=UTC))
    assert report.read == 6
    assert "future" not in newsroom.titles()
    assert not (newsroom.out / "articles/future/index.html").exists()
    spy.reset()
    report = newsroom.build(now=datetime(2030, 1, 1, 8, 0, 1, tzinfo=UTC))
    assert report.read == 0
    assert spy.opened == []
    assert "future" in newsroom.titles()
    assert (newsroom.out / "articles/future/index.html").is_file()


def test_a_revision_date_to_come_is_shown_once_it_has_passed(
    newsroom: Newsroom, spy: Spy, database_url: str
) -> None:
    """An ``updated`` later than the build: feeds and page give the article's date, and
    builds before the revision date write nothing new, whenever they run; the first build
    after it shows it without reading a file. ``newsbot check`` warns meanwhile, naming the
    line. On SQLite and PostgreSQL."""
    state = StateSettings(data_dir=newsroom.settings.state.data_dir, database_url=database_url)
    settings = newsroom.settings.model_copy(update={"state": state})
    revised = STORE["2018/storm.md"].replace(
        "date: 2018-01-03", "date: 2018-01-03\nupdated: 2026-01-02T06:00:00Z"
    )
    newsroom.write("2018/storm.md", revised)
    newsroom.build(settings=settings)
    before = newsroom.snapshot()
    for name in ("atom.xml", "feed.json", "sections/europe/atom.xml", "articles/storm/index.html"):
        assert "2026-01-02" not in (newsroom.out / name).read_text(encoding="utf-8"), name
    with opened(settings) as app:
        warned = [p for p in check_store(settings, app.index, NOW) if p.field == "updated"]
        assert [(p.path, p.line, p.warning) for p in warned] == [("2018/storm.md", 5, True)]
        assert "2026-01-02T06:00:00+00:00 is still to come" in warned[0].message
    spy.reset()
    report = newsroom.build(datetime(2026, 1, 2, 5, 59, 59, tzinfo=UTC), settings)
    assert (report.read, report.feeds_written, report.pages_written) == (0, 0, 0)
    assert changed(before, newsroom.snapshot()) == set()
    report = newsroom.build(datetime(2026, 1, 2, 6, 0, 1, tzinfo=UTC), settings)
    assert report.read == 0
    assert spy.opened == []
    atom = (newsroom.out / "atom.xml").read_text(encoding="utf-8")
    assert "<updated>2026-01-02T06:00:00+00:00</updated>" in atom
    json_feed = (newsroom.out / "sections/europe/feed.json").read_text(encoding="utf-8")
    assert '"date_modified":"2026-01-02T06:00:00Z"' in json_feed.replace(" ", "")
    page = (newsroom.out / "articles/storm/index.html").read_text(encoding="utf-8")
    assert 'content="2026-01-02T06:00:00+00:00"' in page
    with opened(settings) as app:
        later = datetime(2026, 1, 2, 6, 0, 1, tzinfo=UTC)
        assert [p for p in check_store(settings, app.index, later) if p.field == "updated"] == []


# -- a published article whose file breaks -------------------------------------------------


def test_a_broken_edit_keeps_the_last_readable_version_published(newsroom: Newsroom) -> None:
    newsroom.build()
    good = STORE["2016/budget.md"]
    newsroom.write("2016/budget.md", good.replace("---\n", "---\ntitle: [unclosed\n", 1))
    report = newsroom.build()
    assert "budget" in newsroom.titles()
    assert (newsroom.out / "articles/budget/index.html").is_file()
    messages = [p.message for p in report.problems if p.path == "2016/budget.md"]
    assert any("invalid YAML" in m for m in messages)
    assert any("last readable version stays published" in m for m in messages)
    newsroom.write("2016/budget.md", good.replace("Body.", "Fixed body."))
    report = newsroom.build()
    assert [p for p in report.problems if p.path == "2016/budget.md"] == []
    page = (newsroom.out / "articles/budget/index.html").read_text(encoding="utf-8")
    assert "Fixed body." in page


def test_a_changed_related_list_renders_only_the_feeds_that_show_its_article(
    newsroom: Newsroom, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """An arrival enters an older article's related list: that article is one entry of the
    feeds that show it among their newest items, and only those (and the arrival's own) are
    rendered again; writing every feed set again afterwards changes none of their bytes.
    On SQLite and PostgreSQL."""
    feeds = newsroom.settings.feeds.model_copy(update={"items": 1})
    state = StateSettings(data_dir=newsroom.settings.state.data_dir, database_url=database_url)
    settings = newsroom.settings.model_copy(update={"feeds": feeds, "state": state})
    story = "Ferry operators in Calais and Dover signed the Channel migrants agreement."
    calais = STORE["2015/calais.md"].replace("Body.", story)
    newsroom.write("2015/calais.md", calais)
    newsroom.build(settings=settings)
    rendered: list[tuple[str, str]] = []
    real_newest = StoreIndex.newest

    def newest_spy(self: StoreIndex, key: tuple[str, str], *args: Any) -> Any:
        rendered.append(key)
        return real_newest(self, key, *args)

    monkeypatch.setattr(StoreIndex, "newest", newest_spy)
    newsroom.write(
        "2019/calais-again.md",
        _article(
            "calais-again",
            "Calais agreement signed again",
            "2019-02-01",
            "Ports",
            "Trade",
            "Dover port expects fewer migrants in Calais after the Channel agreement.",
        ),
    )
    report = newsroom.build(settings=settings)
    assert report.read == 1
    assert "/articles/calais-again/" in _page_text(newsroom, "calais")  # in its list now
    # Calais is the newest (the only) article of its tags, not of its section nor the site.
    assert {("tag", "france"), ("tag", "migration")} <= set(rendered)
    assert ("section", "europe") not in rendered
    assert set(rendered) <= {
        ("site", ""), ("section", "trade"), ("tag", "ports"), ("tag", "france"),
        ("tag", "migration"),
    }  # fmt: skip
    monkeypatch.setattr(StoreIndex, "newest", real_newest)
    before = newsroom.snapshot()
    (newsroom.out / "index.html").unlink()  # the next build writes every feed and page again
    newsroom.build(settings=settings)
    after = newsroom.snapshot()
    feed_sets = {name for name in after if name.rpartition("/")[2] in FEED_FILES}
    feed_sets -= {name for name in feed_sets if name.startswith("archive/")}
    assert {("tags/france/rss.xml"), "sections/europe/rss.xml", "rss.xml"} <= feed_sets
    assert {name: after[name].data for name in feed_sets} == {
        name: before[name].data for name in feed_sets
    }


def _page_text(newsroom: Newsroom, article_id: str) -> str:
    return (newsroom.out / "articles" / article_id / "index.html").read_text(encoding="utf-8")
