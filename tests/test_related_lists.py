"""Stored related lists, and where readers see them: pages, feeds, navigation files.

Every test builds a copy of the sample store with the real builder into a real
SQLite file, then reads what a reader would get: the written pages and feeds.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from lxml import etree
from sqlalchemy import func, select

from newsbot.app import App
from newsbot.settings import Settings, StateSettings
from newsbot.state.related_lists import KINDS, RelatedLists
from newsbot.state.schema import related_links
from support.stores import make_settings

SAMPLE = Path(__file__).resolve().parents[1] / "content"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ATOM = "{http://www.w3.org/2005/Atom}"
SOLEIMANI = "2020/united-states-military-kills-qasem-soleimani.md"
STORY = {
    "wikinews-en:Iraqi_Parliament_votes_for_expulsion_of_United_States_troops",
    "wikinews-en:Stampede_during_funeral_procession_of_Qasem_Soleimani_causes_deaths,_delays_burial",
    "wikinews-en:Iran_admits_downing_Ukrainian_jet,_cites_'human_error'",
    "wikinews-en:Iran_issues_arrest_warrants_for_36_people,_including_US_President_Trump;_seeks_Interpol's_aid",
}
FOLLOW_UP = """---
id: follow-up
title: Iraq mourns Qasem Soleimani as Quds Force names his successor
date: 2020-01-07 09:30
tags: [Iran, Qasem Soleimani]
section: World
---
Iraq held a day of mourning for Qasem Soleimani, the Quds Force commander killed by a
United States airstrike at Baghdad International Airport, and for Abu Mahdi al-Muhandis.
Iran named Esmail Qaani to lead the Quds Force. Crowds in Baghdad and Karbala followed
the coffins of Soleimani and al-Muhandis; Iran's Supreme Leader Ali Khamenei vowed revenge.
"""


@pytest.fixture
def site(tmp_path: Path) -> Settings:
    content = tmp_path / "content"
    shutil.copytree(SAMPLE, content)
    return make_settings(tmp_path, content)


def build(settings: Settings) -> App:
    app = _open(settings)
    report = app.builder.build(NOW)
    assert not [p for p in report.problems if not p.warning]
    return app


def _open(settings: Settings) -> App:
    from newsbot.app import create_app

    return create_app(settings)


def page(settings: Settings, article_url: str) -> lxml.html.HtmlElement:
    rel = article_url.removeprefix(str(settings.site.base_url))
    return lxml.html.parse(str(settings.feeds.output_dir / rel / "index.html")).getroot()


def related_on_page(document: lxml.html.HtmlElement) -> list[str]:
    return [a.get("href") for a in document.cssselect("aside.related li a")]


def stored_ids(app: App, path: str) -> set[str]:
    article = next(a for a in app.index.articles() if a.path == path)
    return {a.id for a in app.builder.related.related(article, 10, NOW)}


def test_each_article_gets_its_list_at_build_time_and_pages_show_it(site: Settings) -> None:
    app = build(site)
    with app.engine.connect() as conn:
        marks = conn.execute(
            select(func.count()).where(related_links.c.kind == "computed")
        ).scalar()
    assert marks == app.index.count()  # one stored list per article, even an empty one
    found = stored_ids(app, SOLEIMANI)
    assert found and found <= STORY  # only the story's own articles pass the floor
    soleimani = next(a for a in app.index.articles() if a.path == SOLEIMANI)
    document = page(site, soleimani.url)
    links = related_on_page(document)
    by_url = {a.url: a for a in app.index.articles()}
    assert links and {by_url[url].id for url in links} <= STORY
    item = document.cssselect("aside.related li")[0]
    assert by_url[links[0]].published.strftime("%Y-%m-%d") in item.text_content()
    assert "World" in item.text_content()  # the section
    assert [a.text for a in document.cssselect("a.section")] == ["World"]
    tags = {a.text: a.get("href") for a in document.cssselect(".tags a")}
    assert tags["Qasem Soleimani"] == f"{site.site.base_url}tags/qasem-soleimani/"
    assert "00:00" not in document.cssselect("p.meta")[1].text_content()  # date without time
    app.close()


def test_feeds_carry_the_stored_list(site: Settings) -> None:
    app = build(site)
    soleimani = next(a for a in app.index.articles() if a.path == SOLEIMANI)
    related = app.builder.related.related(soleimani, 3, NOW)
    urls = [a.url for a in related]
    assert urls
    out = site.feeds.output_dir
    atom = etree.parse(str(out / "atom.xml"))
    entry = next(
        e
        for e in atom.iterfind(f"{ATOM}entry")
        if e.find(f"{ATOM}link[@rel='alternate']").get("href") == soleimani.url
    )
    assert [link.get("href") for link in entry.iterfind(f"{ATOM}link[@rel='related']")] == urls
    assert [link.get("title") for link in entry.iterfind(f"{ATOM}link[@rel='related']")] == [
        a.title for a in related
    ]
    rss = etree.parse(str(out / "rss.xml"))
    item = next(i for i in rss.iterfind("channel/item") if i.findtext("link") == soleimani.url)
    content = item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")
    tail = lxml.html.fragment_fromstring(content, create_parent="div")
    assert tail.cssselect("h2")[-1].text == "Related"
    assert [a.get("href") for a in tail.cssselect("h2 ~ ul")[-1].cssselect("a")] == urls
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    item_json = next(i for i in feed["items"] if i["url"] == soleimani.url)
    assert item_json["content_html"].endswith(
        "<h2>Related</h2><ul>"
        + "".join(f'<li><a href="{a.url}">{a.title}</a></li>' for a in related)
        + "</ul>"
    )
    app.close()


def test_a_new_article_enters_the_stored_lists_it_belongs_to_then_leaves(
    site: Settings,
) -> None:
    build(site).close()
    (site.store.content_dir / "2020" / "follow-up.md").write_text(FOLLOW_UP, encoding="utf-8")
    app = _open(site)
    report = app.builder.build(NOW)
    assert report.read == 1
    assert "follow-up" in stored_ids(app, SOLEIMANI)  # offered, no search of the old one
    soleimani = next(a for a in app.index.articles() if a.path == SOLEIMANI)
    follow = next(a for a in app.index.articles() if a.id == "follow-up")
    assert follow.url in related_on_page(page(site, soleimani.url))  # its page was rewritten
    assert stored_ids(app, "2020/follow-up.md") & STORY
    app.close()
    (site.store.content_dir / "2020" / "follow-up.md").unlink()
    app = _open(site)
    app.builder.build(NOW)
    assert "follow-up" not in stored_ids(app, SOLEIMANI)
    assert follow.url not in related_on_page(page(site, soleimani.url))
    app.close()


def test_an_editors_reference_is_resolved_when_its_article_arrives(site: Settings) -> None:
    seed = "2015/france-uk-calais-agreement.txt"
    app = build(site)
    with app.engine.connect() as conn:
        unresolved = conn.execute(
            select(func.count()).where(
                related_links.c.path == seed, related_links.c.kind == "unresolved"
            )
        ).scalar()
    assert unresolved == 3
    assert stored_ids(app, seed) == set()  # never guessed
    app.close()
    (site.store.content_dir / "2015" / "sign.md").write_text(
        "---\nid: sign\ntitle: France and Britain to sign Calais security agreement\n"
        "date: 2015-08-19\n---\nThe interior ministers meet in Calais on Thursday.\n",
        encoding="utf-8",
    )
    app = _open(site)
    app.builder.build(NOW)
    seed_article = next(a for a in app.index.articles() if a.path == seed)
    assert [a.id for a in app.builder.related.related(seed_article, 3, NOW, "editors")] == ["sign"]
    assert "sign" in {
        a.get("href").rstrip("/").rsplit("/", 1)[-1]
        for a in page(site, seed_article.url).cssselect("aside.related li a")
    }
    app.close()


@pytest.mark.parametrize("policy", sorted(KINDS))
def test_policy_editors_computed_or_both(site: Settings, policy: str) -> None:
    """The Iraqi vote names the Soleimani article as related; the rest is computed."""
    app = build(site)
    article = next(a for a in app.index.articles() if "Iraqi" in a.title)
    found = app.builder.related.related(article, 3, NOW, policy)  # type: ignore[arg-type]
    picked = "wikinews-en:United_States_military_kills_Qasem_Soleimani"
    ids = [a.id for a in found]
    if policy == "editors":
        assert ids == [picked]
    elif policy == "computed":
        assert ids and set(ids) <= STORY | {picked}
    else:
        assert ids[0] == picked and set(ids) <= STORY | {picked}
    app.close()


def test_navigation_files(site: Settings) -> None:
    app = build(site)
    out = site.feeds.output_dir
    base = str(site.site.base_url)
    index = lxml.html.parse(str(out / "index.html")).getroot()
    nav = {a.text: a.get("href") for a in index.cssselect("nav a")}
    assert nav["World"] == f"{base}sections/world/" and nav["Iran"] == f"{base}tags/iran/"
    for href in nav.values():
        assert (out / href.removeprefix(base) / "index.html").is_file()
    tag_page = lxml.html.parse(str(out / "tags" / "iran" / "index.html")).getroot()
    alternates = tag_page.cssselect("link[rel=alternate]")
    assert {a.get("href") for a in alternates} == {
        f"{base}tags/iran/{name}" for name in ("rss.xml", "atom.xml", "feed.json")
    }
    archive = lxml.html.parse(str(out / "archive" / "index.html")).getroot()
    months = [a.get("href") for a in archive.cssselect("main a")]
    newest = max(a.published for a in app.index.articles()).strftime("%Y/%m")
    assert months[0] == f"{base}archive/{newest}/" and months[-1] == f"{base}archive/2015/08/"
    listed = 0
    for month in months:
        month_page = lxml.html.parse(str(out / month.removeprefix(base) / "index.html"))
        listed += len(month_page.getroot().cssselect("ul.list li"))
    assert listed == app.index.count()
    oldest = lxml.html.parse(str(out / "archive/2015/08/index.html")).getroot()
    assert oldest.cssselect("a[rel=prev]") and not oldest.cssselect("a[rel=next]")
    sitemap = etree.parse(str(out / "sitemap.xml"))
    locs = {e.text for e in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    assert {a.url for a in app.index.articles()} <= locs and f"{base}tags/iran/" in locs
    assert (
        out / "robots.txt"
    ).read_text() == f"User-agent: *\nAllow: /\n\nSitemap: {base}sitemap.xml\n"
    opml = etree.parse(str(out / "feeds.opml"))
    feeds = [o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")]
    written = {
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.name in ("rss.xml", "atom.xml", "feed.json")
    }
    assert {f.removeprefix(base) for f in feeds} == written
    app.close()


def listed(app: App) -> int:
    """Articles with a stored list."""
    with app.engine.connect() as conn:
        return int(conn.execute(select(func.count(func.distinct(related_links.c.path)))).scalar())


def test_a_build_without_backlog_leaves_missing_lists_to_a_later_build(site: Settings) -> None:
    app = build(site)
    everyone = listed(app)
    with app.engine.begin() as conn:  # as a first build past its related budget leaves them
        conn.execute(related_links.delete())
    app.close()
    (site.store.content_dir / "2020" / "follow-up.md").write_text(FOLLOW_UP, encoding="utf-8")
    app = _open(site)
    report = app.builder.build(NOW, backlog=False)  # what a dropped file asks of the service
    assert report.read == 1
    with app.engine.connect() as conn:
        assert app.builder.related.stored(conn, "2020/follow-up.md")  # its own list
    assert everyone > 10 and listed(app) < everyone / 2
    app.builder.build(NOW)  # a scheduled build takes the backlog up
    assert listed(app) == everyone + 1
    app.close()


def test_the_service_builds_for_a_changed_file_without_backlog(site: Settings) -> None:
    from newsbot.service.runner import Service

    app = build(site)
    everyone = listed(app)
    with app.engine.begin() as conn:
        conn.execute(related_links.delete())
    (site.store.content_dir / "2020" / "follow-up.md").write_text(FOLLOW_UP, encoding="utf-8")
    service = Service(app, clock=lambda: NOW)
    try:
        service._store_changed()  # what the watcher calls; the scheduler is not started
        report = service.build()
        assert report is not None and report.read == 1
        assert listed(app) < everyone / 2
        service.build()  # a scheduled build
        assert listed(app) == everyone + 1
    finally:
        service.http.close()
        app.close()


def test_the_backlog_commits_as_it_goes(site: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build's leftover time holds the write lock for a step at a time, not the whole budget:
    what it stored is committed (seen from another connection) while it still works."""
    from newsbot.state import related_lists

    app = build(site)
    everyone = listed(app)
    with app.engine.begin() as conn:
        conn.execute(related_links.delete())
    monkeypatch.setattr(related_lists, "BACKLOG", 2)
    monkeypatch.setattr(related_lists, "ROUND", 1)
    lists = app.builder.related
    list_of = lists._list_of
    seen: list[int] = []

    def watched(conn: object, article: object) -> object:
        seen.append(listed(app))  # a connection of its own: committed lists only
        return list_of(conn, article)  # type: ignore[arg-type]

    monkeypatch.setattr(lists, "_list_of", watched)
    drained = lists.drain(app.engine, 60)
    assert drained.finished
    assert len(drained.changed) == everyone == listed(app)
    assert seen[:5] == [0, 0, 2, 2, 4]
    app.close()


def all_lists(app: App) -> list[tuple[object, ...]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(related_links).order_by(related_links.c.path, "position"))
        return [tuple(row) for row in rows]


def test_lists_computed_on_every_core_are_those_one_process_computes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """The build spreads related lists over forked processes (the sample store is large
    enough), SQLite or PostgreSQL; with the spread turned off, the same rows are stored, and
    the same again when the lists are drained as a build's leftovers."""
    import newsbot.build.builder
    from newsbot.build import parallel

    if parallel.processes() < 2:
        pytest.skip("one core, or no fork")
    content = tmp_path / "content"
    shutil.copytree(SAMPLE, content)
    spread = build(make_settings(tmp_path / "spread", content))
    pids = tmp_path / "pids"
    share = RelatedLists._computed

    def noted(self: RelatedLists, *args: Any, **kwargs: Any) -> Any:
        with pids.open("a") as out:  # children write here too
            out.write(f"{os.getpid()}\n")
        return share(self, *args, **kwargs)

    monkeypatch.setattr(RelatedLists, "_computed", noted)
    again_settings = make_settings(tmp_path / "again", content)
    state = StateSettings(data_dir=tmp_path / "again" / "data", database_url=database_url)
    again = build(again_settings.model_copy(update={"state": state}))
    assert len(set(pids.read_text().split())) == parallel.processes()
    pids.unlink()
    with again.engine.begin() as conn:
        conn.execute(related_links.delete())
    assert again.builder.related.drain(again.engine, 60).changed  # its rounds are spread too
    assert len(set(pids.read_text().split())) == parallel.processes()
    assert all_lists(again) == all_lists(spread)

    monkeypatch.setattr(newsbot.build.builder, "RELATED_PARALLEL_FROM", 10**9)
    one = build(make_settings(tmp_path / "one", content))
    assert len(all_lists(one)) > 3 * len(list(one.index.articles()))
    assert all_lists(one) == all_lists(spread)
    for app in (spread, again, one):
        app.close()
