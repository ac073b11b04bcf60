"""The sitemap's parts (made as the URLs are read, split at the protocol's limit), and the
names feeds are listed under."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from newsbot.build.navigation import SITEMAP_LIMIT, Site, sitemaps
from newsbot.settings import StateSettings
from newsbot.state.navigation import feed_names
from support.stores import make_settings, opened

BASE = "https://news.example/"
SITE = Site(BASE, "News", "All the news", "en", {})
NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


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
