"""The sitemap's parts: made as the URLs are read, split at the protocol's limit."""

from __future__ import annotations

from lxml import etree

from newsbot.build.navigation import SITEMAP_LIMIT, Site, sitemaps

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
