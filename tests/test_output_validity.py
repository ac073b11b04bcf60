"""The feeds a real build writes, from the sample store and the broken-input store.

Every feed file is checked against the validator's rules (`feedcheck`), then
read by real readers: Newsboat fetches each RSS and Atom feed from a loopback
HTTP server and must show every item with the title, link, date and id the
build meant; sfeed and feedparser must agree with it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fixtures.make_broken import make_store
from newsbot.layout import FILES, MEDIA_TYPES, FeedPlace
from newsbot.render.feeds import item_id
from newsbot.settings import Settings
from support.feedcheck import check_atom, check_json, check_rss
from support.readers import Resource, feedparser_items, loopback_server, newsboat_items, sfeed_items
from support.stores import BASE_URL, make_settings, opened, without_newsbot_environment

SAMPLE = Path(__file__).parent.parent / "content"
NOW = datetime(2026, 11, 28, tzinfo=UTC)
CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json}


@dataclass(frozen=True)
class Expected:
    """What the build meant one item to say."""

    title: str
    link: str
    date: datetime


@dataclass
class Built:
    """A built output folder and, per feed file, the items it should hold."""

    settings: Settings
    expected: dict[str, dict[str, Expected]]  # feed file -> guid -> item

    @property
    def out(self) -> Path:
        return self.settings.feeds.output_dir


def _build(tmp: Path, content: Path) -> Built:
    settings = make_settings(tmp, content)
    expected: dict[str, dict[str, Expected]] = {}
    with opened(settings) as app:
        app.builder.build(NOW)
        for key in app.index.feed_keys():
            place = FeedPlace(*key)
            items = {
                item_id(settings.site.id_prefix + s.article.id): Expected(
                    s.article.title, s.article.url, s.article.published
                )
                for s in app.index.newest(key, NOW, settings.feeds.items)
            }
            for fmt in FILES:
                expected[place.file(fmt)] = items
    return Built(settings, expected)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        without_newsbot_environment(monkeypatch)
        yield _build(tmp_path_factory.mktemp("sample"), SAMPLE)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    tmp = tmp_path_factory.mktemp("broken-out")
    store = make_store(tmp / "content")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            without_newsbot_environment(monkeypatch)
            yield _build(tmp, store.root)
    finally:
        store.pwned.unlink(missing_ok=True)


def _feeds(built: Built, fmt: str) -> list[str]:
    return sorted(name for name in built.expected if name.endswith(FILES[fmt]))


def _format(name: str) -> str:
    return next(fmt for fmt, file in FILES.items() if name.endswith(file))


# -- the validator's rules, on every file --------------------------------------------------


def test_the_sample_store_has_many_feeds(sample: Built) -> None:
    assert len(sample.expected) >= 3 * 20  # site, 8 sections, dozens of tags
    assert len(sample.expected["rss.xml"]) == 36


@pytest.mark.parametrize("which", ["sample", "broken"])
def test_every_feed_file_is_valid(which: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(which)
    problems = {}
    for name in built.expected:
        found = CHECKS[_format(name)]((built.out / name).read_bytes(), BASE_URL + name)
        if found:
            problems[name] = found
    assert problems == {}


@pytest.mark.parametrize("which", ["sample", "broken"])
def test_ids_are_unique_and_complete(which: str, request: pytest.FixtureRequest) -> None:
    built: Built = request.getfixturevalue(which)
    for name in _feeds(built, "rss"):
        items = feedparser_items((built.out / name).read_bytes())
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids))
        assert set(ids) == set(built.expected[name])


# -- real readers -----------------------------------------------------------------------------


@pytest.mark.readers
@pytest.mark.parametrize("which", ["sample", "broken"])
def test_newsboat_shows_every_item_of_every_feed(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    built: Built = request.getfixturevalue(which)
    names = _feeds(built, "rss") + _feeds(built, "atom")
    resources = {
        "/" + name: Resource((built.out / name).read_bytes(), MEDIA_TYPES[_format(name)])
        for name in names
    }
    with loopback_server(resources) as server:
        for number, name in enumerate(names):
            items = newsboat_items(server.url("/" + name), tmp_path / str(number))
            seen = {
                item["id"]: Expected(item["title"], item["link"], item["date"]) for item in items
            }
            assert seen == built.expected[name], name


@pytest.mark.readers
def test_sfeed_and_feedparser_agree_with_the_build(sample: Built) -> None:
    for name in _feeds(sample, "rss") + _feeds(sample, "atom"):
        data = (sample.out / name).read_bytes()
        by_feedparser = {
            item["id"]: Expected(item["title"], item["link"], item["date"])
            for item in feedparser_items(data)
        }
        assert by_feedparser == sample.expected[name], name
        by_sfeed = {item["id"]: (item["title"], item["link"]) for item in sfeed_items(data)}
        expected = {guid: (e.title, e.link) for guid, e in sample.expected[name].items()}
        assert by_sfeed == expected, name


def test_article_pages_describe_articles_as_the_feed_does(sample: Built) -> None:
    from lxml import etree, html

    channel = etree.parse(str(sample.out / "rss.xml")).getroot().find("channel")
    assert channel is not None
    for item in channel.iter("item"):
        link = item.findtext("link") or ""
        page = html.parse(str(sample.out / link.removeprefix(BASE_URL) / "index.html"))
        described = page.getroot().xpath("string(//meta[@property='og:description']/@content)")
        assert described == item.findtext("description"), link


# -- a revision date still to come -----------------------------------------------------------


def _problems(out: Path) -> dict[str, list[str]]:
    """The validator's complaints about every feed file under ``out``."""
    found = {}
    for path in sorted(out.rglob("*")):
        if path.name in FILES.values():
            name = path.relative_to(out).as_posix()
            if problems := CHECKS[_format(name)](path.read_bytes(), BASE_URL + name):
                found[name] = problems
    return found


def test_a_revision_date_to_come_is_in_no_feed_until_it_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose newest article gives an ``updated`` a day after the build: every feed is
    valid when checked at that build's time (the validator calls future dates implausible),
    and the build after the revision date gives it, valid at its own time."""
    from support import feedcheck
    from support.posting import write_article

    content = tmp_path / "content"
    shutil.copytree(SAMPLE / "2015", content / "2015")
    revised = NOW + timedelta(days=1)
    write_article(
        content, "2026/revised.md", "Revised tomorrow", NOW - timedelta(hours=1),
        updated=revised.isoformat(), tags=["Calais"], section="Europe",
    )  # fmt: skip
    settings = make_settings(tmp_path, content)
    out = settings.feeds.output_dir
    with opened(settings) as app:
        app.builder.build(NOW)
        monkeypatch.setattr(feedcheck, "_now", lambda: NOW)
        assert _problems(out) == {}
        feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
        assert feed["items"][0]["date_modified"] == feed["items"][0]["date_published"]
        app.builder.build(revised)
        monkeypatch.setattr(feedcheck, "_now", lambda: revised)
        assert _problems(out) == {}
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert feed["items"][0]["date_modified"] == "2026-11-29T00:00:00Z"
    for name in ("tags/calais/atom.xml", "sections/europe/atom.xml"):
        assert "<updated>2026-11-29T00:00:00+00:00</updated>" in (out / name).read_text()
