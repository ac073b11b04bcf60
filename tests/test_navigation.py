"""The sitemap's parts (made as the URLs are read, split at the protocol's limit), and the
names feeds are listed under."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from newsbot.build.navigation import SITEMAP_LIMIT, Site, neighbours, sitemaps
from newsbot.settings import StateSettings
from newsbot.state.navigation import Month, feed_names
from support.stores import make_settings, opened

BASE = "https://news.example/"
SITE = Site(BASE, "News", "All the news", "en", {})
NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _locs(data: bytes) -> list[str]:
    return [e.text or "" for e in etree.fromstring(data).iter(f"{NS}loc")]


def test_a_large_site_gets_an_index_of_full_parts_in_order() -> None:
    pages = [BASE + "tags/a/", BASE + "archive/"]
    count = 2 * SITEMAP_LIMIT + 3 - len(pages)
    articles = ((f"{BASE}{n}/", 1_600_000_000 - n) for n in range(count))
    files = sitemaps(SITE, pages, articles)
    assert sorted(files) == ["sitemap-1.xml", "sitemap-2.xml", "sitemap-3.xml", "sitemap.xml"]
    assert _locs(files["sitemap.xml"]) == [f"{BASE}sitemap-{n}.xml" for n in (1, 2, 3)]
    parts = [_locs(files[f"sitemap-{n}.xml"]) for n in (1, 2, 3)]
    assert [len(p) for p in parts] == [SITEMAP_LIMIT, SITEMAP_LIMIT, 3]
    assert [url for part in parts for url in part] == pages + [f"{BASE}{n}/" for n in range(count)]
    assert b"<lastmod>2020-09-13</lastmod>" in files["sitemap-1.xml"]


def test_a_site_of_exactly_one_part_gets_no_index() -> None:
    articles = [(f"{BASE}{n}/", 0) for n in range(SITEMAP_LIMIT - 1)]
    files = sitemaps(SITE, [BASE + "archive/"], articles)
    assert list(files) == ["sitemap.xml"]
    assert len(_locs(files["sitemap.xml"])) == SITEMAP_LIMIT


def test_links_outside_the_site_are_left_out_and_an_empty_site_has_an_empty_sitemap() -> None:
    files = sitemaps(SITE, [], [("https://elsewhere.example/a", 0)])
    assert list(files) == ["sitemap.xml"]
    assert _locs(files["sitemap.xml"]) == []


def _tagged(path: Path, tag: str, section: str, draft: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\nid: {path.stem}\ntitle: Story {path.stem}\ndate: 2025-01-0{path.stem[-1]}\n"
        f"tags: [{tag}]\nsection: {section}\ndraft: {str(draft).lower()}\n---\n\nBody.\n",
        encoding="utf-8",
    )


def test_a_feed_is_named_as_its_first_visible_article_writes_it(
    tmp_path: Path, database_url: str
) -> None:
    """Tags and sections are shown as written by their first visible article by path,
    on SQLite and PostgreSQL; a feed no visible article names keeps its slug."""
    content = tmp_path / "content"
    _tagged(content / "a" / "s1.md", "Covid-19", "World News", draft=True)
    _tagged(content / "b" / "s2.md", "COVID-19", "world news")
    _tagged(content / "c" / "s3.md", "covid-19", "World news")
    settings = make_settings(tmp_path, content)
    state = StateSettings(data_dir=tmp_path / "data", database_url=database_url)
    with opened(settings.model_copy(update={"state": state})) as app:
        assert app.builder.build(datetime(2026, 1, 1, tzinfo=UTC)).problems == []
        keys = [("site", ""), ("tag", "covid-19"), ("section", "world-news"), ("tag", "none")]
        with app.engine.connect() as conn:
            names = feed_names(conn, keys)
    assert names == {
        ("tag", "covid-19"): "COVID-19",
        ("section", "world-news"): "world news",
        ("tag", "none"): "none",
    }


@pytest.mark.parametrize(
    ("months", "ordered", "written"),
    [
        ([(2018, 2)], [(2018, 1), (2018, 2), (2018, 3)], {(2018, 1), (2018, 2), (2018, 3)}),
        ([(2018, 1)], [(2018, 1), (2018, 2)], {(2018, 1), (2018, 2)}),
        ([(2018, 2)], [(2018, 1), (2018, 3), (2018, 4)], {(2018, 1), (2018, 3)}),  # emptied
        ([(2019, 1)], [(2018, 1)], {(2018, 1)}),
        ([], [(2018, 1)], set()),
    ],
)
def test_a_month_is_written_with_the_months_beside_it(
    months: list[Month], ordered: list[Month], written: set[Month]
) -> None:
    assert neighbours(months, ordered) == written


def test_an_archive_built_step_by_step_is_the_archive_built_at_once(tmp_path: Path) -> None:
    """A new article in a month of its own changes the links of the months beside it."""
    content = tmp_path / "content"
    for name, day in (("jan", "2018-01-10"), ("mar", "2018-03-10")):
        _dated(content / f"{name}.md", day)  # unrelated to each other: no list changes
    settings = make_settings(tmp_path / "steps", content)
    with opened(settings) as app:
        app.builder.build(NOW)
    _dated(content / "feb.md", "2018-02-10")
    with opened(settings) as app:
        app.builder.build(NOW)
    at_once = make_settings(tmp_path / "once", content)
    with opened(at_once) as app:
        app.builder.build(NOW)
    for month in ("01", "02", "03"):
        step = (settings.feeds.output_dir / f"archive/2018/{month}/index.html").read_bytes()
        once = (at_once.feeds.output_dir / f"archive/2018/{month}/index.html").read_bytes()
        assert step == once, month
    january = (settings.feeds.output_dir / "archive/2018/01/index.html").read_text()
    assert "archive/2018/02/" in january and "archive/2018/03/" not in january


TOPICS = {
    "jan": ("Harbour dredging finished", "Tugboats cleared silt from the quay."),
    "feb": ("Orchestra tours abroad", "Violinists performed symphonies nightly."),
    "mar": ("Glacier measurements published", "Researchers drilled cores through ice."),
}


def _dated(path: Path, day: str) -> None:
    title, body = TOPICS[path.stem]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\nid: {path.stem}\ntitle: {title}\ndate: {day}\n---\n\n{body}\n")
